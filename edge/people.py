"""Several dancers in a room: find each in the full frame, follow each with a stable ID, one tracker per person.

``PeopleTracker`` sits where a ``Tracker`` sits (``run(source, people_tracker, sinks)``). Each frame:

1. ``kerasdance.scene.Segmenter`` finds the plausible person blobs (floor plane, background model learned over
   the first seconds or loaded from ``kerasdance-edge calibrate``'s room file, connected 3-D blobs);
2. blobs are associated with the live tracks on their 3-D centroid (ground-plane distance to each track's
   constant-velocity prediction) and height: the assignment of least total cost
   (``scipy.optimize.linear_sum_assignment``), pairs farther apart than the gate left unmatched. The gate
   widens while a track is unseen (``gate_m + max_speed_m_s * unseen time``);
3. each matched track's own ``Tracker`` (its window, key-points and move) gets the frame with everything but
   its person set to 0, the depth the model was trained on;
4. a track that was not matched coasts (state ``no-person``, its window kept) for ``coast_seconds``, so a short
   occlusion or a dancer stepping out of view and back keeps the ID; then it ends. Blobs left over start new
   tracks, best first by the segmenter's ``pick`` rule, while fewer than ``max_people`` are live. IDs count up
   from 1 and are never reused.

With ``max_people == 1`` ``update`` returns one ``TrackResult`` per frame with ``person`` None (the single-dancer
output of ``Tracker``, now found in a room); with more it returns a list: one result per live track
(``person`` = its ID), or one ``no-person`` result with ``person`` None when nobody is tracked.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.scene import Person, Room, SceneConfig, Segmenter
from kerasdance_edge.sources import MSR_FPS, DepthSource, Frame, resample_nearest
from kerasdance_edge.tracker import NO_PERSON, Faults, Tracker, TrackResult, _RateLimitedLog, admit

log = logging.getLogger("kerasdance.edge")

#: Extra blobs the segmenter returns beyond ``max_people``, so that a tracked dancer is still matched when a
#: bigger (or nearer) passer-by comes into view.
_SPARE_BLOBS = 4


@dataclasses.dataclass
class Track:
    """One followed person."""

    id: int
    tracker: Tracker
    centroid_m: np.ndarray
    height_m: float
    timestamp_us: int
    index: int
    velocity_m_s: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))
    unseen_s: float = 0.0
    hits: int = 1

    def predict(self, timestamp_us: int) -> np.ndarray:
        """The constant-velocity position at ``timestamp_us``."""
        return self.centroid_m + self.velocity_m_s * max(timestamp_us - self.timestamp_us, 0) / 1e6


def associate(tracks: list[Track], people: list[Person], timestamp_us: int, gate_m: float = 0.6,
              max_speed_m_s: float = 2.0, height_weight: float = 0.5) -> list[tuple[int, int]]:
    """Pairs ``(track index, person index)`` of least total cost within each track's gate.

    Cost: the ground-plane (x, z) distance between the track's predicted centroid and the person's, plus
    ``height_weight`` times their height difference. A track's gate is ``gate_m + max_speed_m_s`` times the
    time since it was last seen (capped at 3 m).
    """
    if not tracks or not people:
        return []
    from scipy.optimize import linear_sum_assignment

    pred = np.array([t.predict(timestamp_us) for t in tracks])
    cent = np.array([p.centroid_m for p in people])
    d = np.hypot(pred[:, None, 0] - cent[None, :, 0], pred[:, None, 2] - cent[None, :, 2])
    cost = d + height_weight * np.abs(np.array([t.height_m for t in tracks])[:, None]
                                      - np.array([p.height_m for p in people])[None, :])
    gates = np.minimum(gate_m + max_speed_m_s * np.array([t.unseen_s for t in tracks]), 3.0)
    big = 1e6
    rows, cols = linear_sum_assignment(np.where(cost <= gates[:, None], cost, big))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] <= gates[r]]


class PeopleTracker:
    """Finds and follows up to ``max_people`` dancers, each with its own ``Tracker`` (see the module docstring).

    Args:
        tracker_factory: ``() -> Tracker``, a new tracker for a new person (its own smoothing filter).
        max_people: how many dancers are followed at once (1: ``update`` returns one result, as ``Tracker``).
        room: an empty-room capture (``kerasdance-edge calibrate``); None: the background is learned over the
            first ``scene.learn_frames`` frames.
        scene: how people are found (its ``max_people`` is set from ``max_people``).
        coast_seconds: how long an unseen track is kept.
        gate_m, max_speed_m_s: the association gate (see ``associate``).
        fps, intrinsics: the source's (``bind`` takes them from the source).
    """

    def __init__(self, tracker_factory: Callable[[], Tracker], max_people: int = 1, room: Room | None = None,
                 scene: SceneConfig | None = None, coast_seconds: float = 1.0, gate_m: float = 0.6,
                 max_speed_m_s: float = 2.0, fps: float = MSR_FPS, intrinsics: Intrinsics | None = None):
        if max_people < 1:
            raise ValueError(f"max_people must be >= 1. Received: max_people={max_people!r}")
        if coast_seconds < 0:
            raise ValueError(f"coast_seconds must be >= 0. Received: coast_seconds={coast_seconds!r}")
        self.tracker_factory = tracker_factory
        self.max_people = int(max_people)
        self.room = room
        scene = scene or SceneConfig()
        self.scene = dataclasses.replace(scene, max_people=self.max_people + _SPARE_BLOBS)
        self.coast_seconds = float(coast_seconds)
        self.gate_m, self.max_speed_m_s = float(gate_m), float(max_speed_m_s)
        self.faults = Faults()
        self._warn = _RateLimitedLog()
        self.segmenter: Segmenter | None = None
        self.tracks: list[Track] = []
        self._next_id = 1
        probe = tracker_factory()
        self.configure(fps, intrinsics or probe.intrinsics)

    @property
    def single(self) -> bool:
        return self.max_people == 1

    def bind(self, source: DepthSource) -> None:
        """Take the frame rate and camera of an open source (and start afresh)."""
        self.configure(source.fps, source.intrinsics)

    def configure(self, fps: float, intrinsics: Intrinsics) -> None:
        """Set the frame rate and camera; the tracks end. The learned room is kept when the camera is the same."""
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive. Received: fps={fps!r}")
        self.fps = float(fps)
        if self.segmenter is None or self.segmenter.intrinsics != intrinsics:
            self.segmenter = Segmenter(intrinsics, self.scene, room=self.room)
            if self.room is None:
                log.info("no room file: learning the background over the first %.1f s (%d frames); until then "
                         "everything above the floor counts (kerasdance-edge calibrate makes a room file)",
                         self.scene.learn_frames / self.fps, self.scene.learn_frames)
        self.intrinsics = intrinsics
        self.reset()

    def reset(self) -> None:
        """End every track (IDs go on counting up)."""
        self.tracks = []
        self._last_index: int | None = None

    # --- per frame ------------------------------------------------------------------------------------------
    def _new_track(self, person: Person, frame: Frame) -> Track:
        tracker = self.tracker_factory()
        tracker.configure(self.fps, self.intrinsics)
        tracker.faults = self.faults
        track = Track(self._next_id, tracker, np.asarray(person.centroid_m, np.float64), person.height_m,
                      int(frame.timestamp_us), int(frame.index))
        self._next_id += 1
        log.info("person %d found at x %.2f m, z %.2f m (%.2f m tall)", track.id, track.centroid_m[0],
                 track.centroid_m[2], person.height_m)
        return track

    def _feed(self, track: Track, person: Person, depth: np.ndarray, frame: Frame, t_in: float) -> TrackResult:
        dt = (frame.timestamp_us - track.timestamp_us) / 1e6
        c = np.asarray(person.centroid_m, np.float64)
        if dt > 0 and track.hits > 0:
            track.velocity_m_s = 0.5 * track.velocity_m_s + 0.5 * (c - track.centroid_m) / dt
        track.centroid_m, track.height_m = c, 0.8 * track.height_m + 0.2 * person.height_m
        skipped = max(frame.index - track.index - 1, 0)  # frames this track did not see: not dropped by the source
        track.timestamp_us, track.index, track.unseen_s = int(frame.timestamp_us), int(frame.index), 0.0
        track.hits += 1
        masked = self.segmenter.masked_depth(depth, person)
        res = track.tracker.update(Frame(masked, frame.timestamp_us, frame.index), t_in, skipped)
        return res._replace(person=None if self.single else track.id)

    def _no_person(self, frame: Frame, t_in: float, person: int | None = None) -> TrackResult:
        return TrackResult(int(frame.index), int(frame.timestamp_us), None, "", 0.0,
                           (time.perf_counter() - t_in) * 1000.0, NO_PERSON, person)

    def update(self, frame: Frame, arrived_s: float | None = None,
               skipped: int = 0) -> TrackResult | list[TrackResult] | None:
        """Add one frame.

        Returns:
            ``max_people == 1``: one ``TrackResult`` (``person`` None); else a list of them, one per live track,
            ordered by ID; None when the frame was skipped (another aspect ratio).
        """
        t_in = time.perf_counter() if arrived_s is None else arrived_s
        depth = admit(frame, skipped, self._last_index, self.intrinsics, self.faults, self._warn)
        self._last_index = frame.index
        if depth is None:
            return None
        people = self.segmenter.update(depth) if depth.any() else []
        ts = int(frame.timestamp_us)
        for t in self.tracks:
            t.unseen_s = max(ts - t.timestamp_us, 0) / 1e6
        pairs = associate(self.tracks, people, ts, self.gate_m, self.max_speed_m_s)
        if self.single and self.tracks and people and not pairs:
            # One dancer: whoever the pick rule puts first is the dancer, wherever they are now (a jump, a cut in
            # a replay), and keeps the window; the gate is for telling several dancers apart.
            pairs = [(0, 0)]
        results: dict[int, TrackResult] = {}
        matched_t, matched_p = {r for r, _ in pairs}, {c for _, c in pairs}
        for r, c in pairs:
            results[self.tracks[r].id] = self._feed(self.tracks[r], people[c], depth, frame, t_in)
        kept = []
        for i, t in enumerate(self.tracks):
            if i in matched_t:
                kept.append(t)
            elif t.unseen_s <= self.coast_seconds:
                kept.append(t)
                results[t.id] = self._no_person(frame, t_in, None if self.single else t.id)
            else:
                log.info("person %d lost (unseen for %.1f s)", t.id, t.unseen_s)
        self.tracks = kept
        for c, person in enumerate(people):  # people are ranked by the pick rule: best first
            if c in matched_p or len(self.tracks) >= self.max_people:
                continue
            track = self._new_track(person, frame)
            self.tracks.append(track)
            track.hits = 0
            results[track.id] = self._feed(track, person, depth, frame, t_in)
        if self.single:
            return next(iter(results.values())) if results else self._no_person(frame, t_in)
        if not results:
            return [self._no_person(frame, t_in)]
        return [results[k] for k in sorted(results)]


def capture_room(source: DepthSource, seconds: float = 3.0, config: SceneConfig | None = None) -> tuple[Room, int]:
    """Read ``seconds`` of an empty room from ``source`` (opened and closed here) and learn it.

    Returns:
        ``(room, frames read)``.

    Raises:
        ValueError: non-positive ``seconds``, or the source gave no frame with depth.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive. Received: seconds={seconds!r}")
    frames = []
    with source:
        want = max(1, int(np.ceil(seconds * source.fps)))
        intr = source.intrinsics
        for frame in source.frames():
            depth = np.asarray(frame.depth_mm)
            if depth.shape != (intr.height, intr.width):
                depth = resample_nearest(depth, intr.height, intr.width)
            if depth.any():
                frames.append(depth.astype(np.uint16, copy=False))
            if len(frames) >= want:
                break
    if not frames:
        raise ValueError("the source gave no frame with depth: nothing to learn the room from")
    if len(frames) < want:
        log.warning("the source ended after %d frames (%.1f s asked for): the room is learned from those",
                    len(frames), seconds)
    return Room.from_frames(np.stack(frames), intr, config), len(frames)
