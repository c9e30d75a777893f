"""Live tracking: a sliding window of depth frames -> the newest frame's joints and the current move.

Every incoming frame is located once (``frame_stats``) and kept with its statistics in a ring of
the last ``N = round(window_seconds * fps)`` frames. Each frame in which a person is found gives one
model window exactly as in training: one crop over the window's frames (``crop_from_stats``), ``T``
frames picked by time (``window_indices``) and assembled by ``preprocess.make_window``, the window
assembly of training and evaluation; the key-points of the newest frame go back to camera metres
(``crop_to_camera``). Key-points flow from the first frame a person is seen: until ``T`` frames are
there the window is made of the frames there are (repeated to ``T``), the state is ``"warmup"`` and
the move is withheld; from then on the state is ``"tracking"`` with the move. The window is a span
of time: when frames were skipped, older frames are left out and the T frames are picked by
timestamp, so a slow device sees the same motion span as training, only sampled more coarsely.

``run`` ties a source, a tracker and sinks together. A live source is read in its own thread and
handed over through a ``LatestFrameQueue`` (latest frame wins), so latency never grows when the
model is slower than the camera: stale frames are skipped and counted.

Faults are counted in ``Faults`` and logged (rate-limited) as warnings, never raised: index gaps
(dropped frames), frames of the wrong size (resampled when the aspect ratio matches, else
skipped), all-zero frames (state ``no-person``), camera reconnections (by the source), sinks
whose receiver is gone. Ctrl-C ends ``run`` cleanly with the source and the sinks closed.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.data import preprocess as pp
from kerasdance_edge.interpreter import EdgeModel
from kerasdance_edge.smoothing import OneEuroFilter
from kerasdance_edge.sources import MSR_FPS, DepthSource, Frame, resample_nearest

log = logging.getLogger("kerasdance.edge")

WARMUP, TRACKING, NO_PERSON = "warmup", "tracking", "no-person"
STATES = (WARMUP, TRACKING, NO_PERSON)


class TrackResult(NamedTuple):
    """What the tracker says about one frame.

    Attributes:
        index: the frame's source index.
        timestamp_us: the frame's capture time.
        joints_m: ``(J, 3)`` joints of this frame in camera metres (x right, y up, z away); None when nobody is
            seen (``"no-person"``).
        move: the current move's class name ("" unless tracking).
        confidence: its softmax probability (0 unless tracking).
        latency_ms: from the frame's arrival to this result (queue wait included).
        state: ``"warmup"`` (key-points ready, the move not yet: the window is not full), ``"tracking"`` (both
            ready) or ``"no-person"`` (neither).
        person: the performer's track ID when several people are tracked; None for the single-person tracker.
    """

    @property
    def joints_ready(self) -> bool:
        return self.joints_m is not None

    @property
    def move_ready(self) -> bool:
        return self.state == TRACKING

    index: int
    timestamp_us: int
    joints_m: np.ndarray | None
    move: str
    confidence: float
    latency_ms: float
    state: str
    person: int | None = None


@dataclasses.dataclass
class Faults:
    """Counts of everything the runtime survived."""

    dropped_frames: int = 0  # index gaps: frames the source never delivered
    stale_frames: int = 0  # frames replaced in the latest-frame queue before the tracker took them
    wrong_size: int = 0  # frames of another size than the source's intrinsics (resampled or skipped)
    skipped_frames: int = 0  # of which skipped (aspect ratio differs, not 2-D)
    empty_frames: int = 0  # all-zero frames
    reconnects: int = 0  # camera lost and found again
    sink_errors: int = 0  # failed sends (receiver gone...)

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def total(self) -> int:
        return sum(v for k, v in self.to_dict().items() if k != "skipped_frames")


class _RateLimitedLog:
    """Log a warning per kind at most once every ``interval_s`` seconds, with the count of suppressed ones."""

    def __init__(self, interval_s: float = 5.0):
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: Counter = Counter()

    def warning(self, kind: str, msg: str, *args) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self._suppressed[kind] += 1
            return
        n = self._suppressed.pop(kind, 0)
        log.warning(msg + (f" (+{n} more since the last report)" if n else ""), *args)
        self._last[kind] = now


def admit(frame: Frame, skipped: int, last_index: int | None, intrinsics: Intrinsics, faults: Faults,
          warn: _RateLimitedLog) -> np.ndarray | None:
    """The checks every incoming frame passes (``Tracker`` and ``kerasdance_edge.people.PeopleTracker``).

    Counts in ``faults`` (and logs, rate-limited) the frames dropped since ``last_index`` (beyond the ``skipped``
    ones the caller left out on purpose), frames of the wrong size and all-zero frames.

    Returns:
        The depth as uint16 at the camera's size (resampled when only the size differs; all zero for a frame
        without depth, which the caller reports as no-person), or None for a frame of another aspect ratio.
    """
    if last_index is not None and frame.index > last_index + 1 + skipped:
        gap = frame.index - last_index - 1 - skipped
        faults.dropped_frames += gap
        warn.warning("gap", "%d frame(s) dropped before frame %d", gap, frame.index)
    depth = np.asarray(frame.depth_mm)
    h, w = intrinsics.height, intrinsics.width
    if depth.shape != (h, w):
        faults.wrong_size += 1
        if not (depth.ndim == 2 and depth.size and abs(depth.shape[1] / depth.shape[0] - w / h) < 0.01 * w / h):
            faults.skipped_frames += 1
            warn.warning("skip", "frame %d has shape %s, expected (%d, %d) (another aspect ratio): skipped",
                         frame.index, depth.shape, h, w)
            return None
        warn.warning("resize", "frame %d is %dx%d, expected %dx%d: resampled", frame.index, depth.shape[1],
                     depth.shape[0], w, h)
        depth = resample_nearest(depth, h, w)
    if depth.dtype != np.uint16:
        depth = np.clip(depth, 0, 65535).astype(np.uint16)
    if not depth.any():
        faults.empty_frames += 1
        warn.warning("empty", "frame %d is all zero (no depth): no-person", frame.index)
    return depth


class Tracker:
    """Turns depth frames into ``TrackResult``s with a depth-mode ``EdgeModel``.

    Args:
        model: the model (its sidecar gives T, S and the preprocessing).
        window_seconds: the span the model sees; default ``T / 15`` s, the span of T frames of the
            15 fps training recordings (MSR-Action3D).
        smoothing: a ``OneEuroFilter`` for the joints (None: raw).
        fps: the source's frame rate (``bind`` takes it from the source).
        intrinsics: the source's camera (default: the model's training camera).

    Raises:
        ValueError: a skeleton-mode model (the tracker reads depth) or a non-positive window.
    """

    def __init__(self, model: EdgeModel, window_seconds: float | None = None, smoothing: OneEuroFilter | None = None,
                 fps: float = MSR_FPS, intrinsics: Intrinsics | None = None):
        if model.input_mode != "depth":
            raise ValueError(f"the tracker runs depth models; {model.path} is a {model.input_mode!r} model")
        self.model = model
        self.cfg = model.data_config
        self.frames = self.cfg.frames
        self.window_seconds = self.frames / MSR_FPS if window_seconds is None else float(window_seconds)
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive. Received: window_seconds={window_seconds!r}")
        self.smoothing = smoothing
        self.faults = Faults()
        self._warn = _RateLimitedLog()
        self.configure(fps, intrinsics or model.intrinsics)

    # --- set-up ---------------------------------------------------------------------------------------------
    def bind(self, source: DepthSource) -> None:
        """Take the frame rate and camera of an open source (and start afresh)."""
        self.configure(source.fps, source.intrinsics)

    def configure(self, fps: float, intrinsics: Intrinsics) -> None:
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive. Received: fps={fps!r}")
        self.fps, self.intrinsics = float(fps), intrinsics
        self.window_frames = max(2, int(round(self.window_seconds * self.fps)))
        self.warmup_frames = min(self.frames, self.window_frames)
        self.reset()

    def reset(self) -> None:
        """Forget the window (e.g. after a reconnection)."""
        h, w = self.intrinsics.height, self.intrinsics.width
        self._depth = np.zeros((self.window_frames, h, w), np.uint16)
        self._stats = np.full((self.window_frames, 3), np.nan)
        self._ts = np.zeros(self.window_frames, np.float64)
        self._count = self._pos = 0
        self._last_index: int | None = None
        if self.smoothing is not None:
            self.smoothing.reset()

    # --- per frame ------------------------------------------------------------------------------------------
    def _result(self, frame: Frame, t_in: float, state: str, joints=None, move="", confidence=0.0) -> TrackResult:
        if joints is None and self.smoothing is not None:
            self.smoothing.reset()
        latency = (time.perf_counter() - t_in) * 1000.0
        return TrackResult(int(frame.index), int(frame.timestamp_us), joints, move, float(confidence), latency, state)

    def update(self, frame: Frame, arrived_s: float | None = None, skipped: int = 0) -> TrackResult | None:
        """Add one frame; returns its result, or None when the frame was skipped.

        Args:
            frame: the new frame.
            arrived_s: ``time.perf_counter()`` when the frame arrived (latency is measured from it); default now.
            skipped: frames the caller skipped on purpose since the last update (the latest-frame queue):
                not counted as dropped by the source.
        """
        t_in = time.perf_counter() if arrived_s is None else arrived_s
        depth = admit(frame, skipped, self._last_index, self.intrinsics, self.faults, self._warn)
        self._last_index = frame.index
        if depth is None:
            return None
        if not depth.any():
            return self._result(frame, t_in, NO_PERSON)
        stats = pp.frame_stats(depth, self.cfg)
        self._depth[self._pos] = depth
        self._stats[self._pos] = stats
        self._ts[self._pos] = frame.timestamp_us
        self._pos = (self._pos + 1) % self.window_frames
        self._count = min(self._count + 1, self.window_frames)
        if not np.all(np.isfinite(stats)):
            return self._result(frame, t_in, NO_PERSON)
        order = (self._pos - self._count + np.arange(self._count)) % self.window_frames  # oldest -> newest
        order, pick = self._window(order)
        try:
            crop = pp.crop_from_stats(self._stats[order], self.intrinsics, self.cfg)
        except ValueError:
            return self._result(frame, t_in, NO_PERSON)
        x = pp.make_window(self._depth, order[pick], self.cfg, crop=crop)
        keypoints, probs = self.model.predict(x)
        joints = pp.crop_to_camera(keypoints[-1], crop, self.intrinsics, self.cfg)
        if self.smoothing is not None:
            joints = self.smoothing(joints, frame.timestamp_us / 1e6)
        joints = joints.astype(np.float32)
        if self._count < self.warmup_frames:  # key-points from the frames there are; the move once the window is full
            return self._result(frame, t_in, WARMUP, joints)
        k = int(np.argmax(probs))
        return self._result(frame, t_in, TRACKING, joints, self.model.class_names[k], probs[k])


    def _window(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ring frames ``order`` (oldest -> newest) that fall in the window, and which T of them to feed.

        The window is a span of time, as in training (T frames of a 15 fps recording): when frames were
        skipped (a slow device, the latest-frame queue) the ring holds frames from longer ago, so frames
        older than the span are left out and the T model frames are picked nearest to T evenly spaced
        times. Without skips (evenly spaced timestamps) this is exactly ``window_indices``. Timestamps
        that do not increase (a camera reset) fall back to the frame order.
        """
        ts = self._ts[order]
        if order.size < 2 or np.any(np.diff(ts) <= 0):
            return order, pp.window_indices(order.size, self.cfg)
        span_us = (self.window_frames - 1) / self.fps * 1e6
        start = ts[-1] - span_us
        keep = ts >= start - 0.5e6 / self.fps  # half a frame of slack for timestamp jitter
        order, ts = order[keep], ts[keep]
        if order.size < 2:
            return order, np.zeros(self.frames, np.int64)
        if order.size == self.window_frames:  # nothing skipped: the training resampling, exactly
            return order, pp.window_indices(order.size, self.cfg)
        targets = np.linspace(max(start, ts[0]), ts[-1], self.frames)
        pos = np.interp(targets, ts, np.arange(ts.size))
        return order, np.clip(np.round(pos), 0, ts.size - 1).astype(np.int64)


class LatestFrameQueue:
    """A one-slot hand-over between a producer thread and a consumer: a new item replaces an unread one.

    ``dropped`` counts the replaced items. ``get`` returns None once the queue is closed and empty.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._item = None
        self._closed = False
        self.dropped = 0

    def put(self, item) -> bool:
        """Offer an item (not None); False when the queue is closed."""
        with self._cond:
            if self._closed:
                return False
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()
            return True

    def get(self, timeout: float | None = None):
        """The newest item, waiting for one; None when closed and empty.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
        """
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._item is None:
                if self._closed:
                    return None
                wait = 0.1 if end is None else min(0.1, end - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(f"no frame within {timeout} s")
                self._cond.wait(wait)  # short waits keep Ctrl-C responsive
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


@dataclasses.dataclass
class RunStats:
    """The outcome of ``run``."""

    frames: int = 0
    tracked: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False
    faults: Faults = dataclasses.field(default_factory=Faults)
    latencies_ms: deque = dataclasses.field(default_factory=lambda: deque(maxlen=2000))
    states: Counter = dataclasses.field(default_factory=Counter)

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(list(self.latencies_ms), q)) if self.latencies_ms else float("nan")


def _send(sinks, result: TrackResult, faults: Faults, warn: _RateLimitedLog) -> None:
    for sink in sinks:
        try:
            sink.send(result)
        except Exception as e:  # noqa: BLE001 - a sink must never stop the show
            faults.sink_errors += 1
            warn.warning(f"sink{id(sink)}", "%s failed to send frame %d: %s: %s", type(sink).__name__, result.index,
                         type(e).__name__, e)


def _close_all(things) -> None:
    for thing in things:
        try:
            thing.close()
        except Exception as e:  # noqa: BLE001
            log.warning("closing %s failed: %s", type(thing).__name__, e)


def run(source: DepthSource, tracker: Tracker, sinks: Iterable = (), max_frames: int | None = None,
        on_result: Callable[[TrackResult, RunStats], None] | None = None) -> RunStats:
    """Track a source until it ends, ``max_frames`` frames were processed, or Ctrl-C.

    ``tracker``: a ``Tracker`` or anything with its ``bind``/``update``/``faults`` (``people.PeopleTracker``, whose
    ``update`` may return a list: one result per dancer, each sent; a frame counts as tracked when one is).

    Opens the source (``with source``), binds the tracker to it, sends every result to every sink
    (``sink.send(result)``) and closes the source and the sinks at the end, whatever happens.
    A live source (``source.live``) is read in a thread through a ``LatestFrameQueue``.

    Returns:
        ``RunStats`` (``interrupted`` is True after Ctrl-C, which is not re-raised).

    Raises:
        Whatever the source raises when it cannot go on (e.g. ``SourceError``); the tracker's faults
        are counted instead.
    """
    sinks = list(sinks)
    stats = RunStats(faults=tracker.faults)
    warn = _RateLimitedLog()
    stop = threading.Event()
    queue = LatestFrameQueue()
    error: list[BaseException] = []
    thread = None
    t0 = time.perf_counter()

    def produce():
        try:
            for frame in source.frames():
                if stop.is_set() or not queue.put((frame, time.perf_counter())):
                    break
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            if not stop.is_set():
                error.append(e)
        finally:
            queue.close()

    def frames():
        if not getattr(source, "live", False):
            for frame in source.frames():
                yield frame, time.perf_counter(), 0
            return
        nonlocal thread
        thread = threading.Thread(target=produce, name="kerasdance-source", daemon=True)
        thread.start()
        seen = 0
        while (item := queue.get()) is not None:
            dropped = queue.dropped  # every replacement so far happened before this (the newest) frame
            stats.faults.stale_frames = dropped
            yield (*item, dropped - seen)
            seen = dropped
        stats.faults.stale_frames = queue.dropped

    try:
        with source:
            tracker.bind(source)
            stream = frames()
            try:
                for frame, arrived, skipped in stream:
                    result = tracker.update(frame, arrived, skipped)
                    stats.faults.reconnects = getattr(source, "reconnects", 0)
                    if result is None:
                        continue
                    results = result if isinstance(result, list) else [result]  # several dancers: one each
                    stats.frames += 1
                    stats.tracked += any(r.state == TRACKING for r in results)
                    stats.latencies_ms.append(max(r.latency_ms for r in results))
                    for result in results:
                        stats.states[result.state] += 1
                        _send(sinks, result, stats.faults, warn)
                    stats.elapsed_s = time.perf_counter() - t0
                    if on_result is not None:
                        for result in results:
                            on_result(result, stats)
                    if max_frames is not None and stats.frames >= max_frames:
                        break
            finally:
                stop.set()
                queue.close()
                stream.close()
    except KeyboardInterrupt:
        stats.interrupted = True
        log.warning("interrupted (Ctrl-C): source and sinks closed")
    finally:
        stop.set()
        queue.close()
        if thread is not None:
            thread.join(timeout=2.0)
        _close_all(sinks)
        stats.elapsed_s = time.perf_counter() - t0
        stats.faults.stale_frames = queue.dropped
        stats.faults.reconnects = getattr(source, "reconnects", 0)
    if error and isinstance(error[0], KeyboardInterrupt):  # Ctrl-C raised in the source's thread
        stats.interrupted = True
        log.warning("interrupted (Ctrl-C): source and sinks closed")
    elif error and not stats.interrupted:
        raise error[0]
    return stats
