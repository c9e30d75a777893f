"""Record a show: the depth frames with what the tracker said, as a generic-layout dataset (``track --record``).

``Recorder`` is a sink. ``Recorder.tap(source)`` wraps the depth source so that the recorder sees
every frame the tracker gets; ``send(result)`` pairs each result with its frame and hands both to a
writer thread through a bounded queue, so the tracker never waits for the disk. When the queue is
full (the disk is slower than the camera) the frame is dropped from the recording, counted in
``dropped_frames``, and ``send`` raises ``RecorderBehind``, which ``tracker.run`` counts as a sink
error (a fault) and logs; the tracker goes on.

The writer cuts the show into segments of ``segment_s`` seconds, each written as one ``.npz``
(``<take>_<NNNN>.npz``, written to a temporary file, synced, then renamed) followed by
``dataset.json`` (replaced atomically in the same way). A crash loses at most the segment being
filled and the queue (``segment_s`` + ``max_queue_s`` seconds); Ctrl-C and errors lose nothing,
as ``run`` closes its sinks and ``close`` writes the last, shorter segment.

The folder is a generic-layout dataset (``kerasdance.data.dataset``): ``Dataset.open``,
``kerasdance data inspect``, training and ``kerasdance-edge track --source DIR/<segment>.npz`` read
it. ``dataset.json`` has the model's ``class_names``, the source's ``intrinsics`` and ``fps``,
one unlabelled sequence per segment (``label``/``subject``/``episode`` null, plus ``take``,
``first_index`` and ``frames``), and a ``recording`` object (``labels``, ``segment_s``, ``states``).
Each ``.npz`` holds (F frames):

* ``depth_mm`` ``(F, H, W)`` uint16: the frames as the source delivered them (resampled to the
  source's size when a frame came at another size of the same aspect ratio);
* ``joints_m`` ``(F, 20, 3)`` float32 camera metres, NaN where the tracker had no key-points;
* ``timestamp_us`` ``(F,)`` int64 capture times; ``frame_index`` ``(F,)`` int64 source indices;
* ``state`` ``(F,)`` strings (``warmup``, ``tracking``, ``no-person``); ``move`` ``(F,)`` int16 the
  tracked move's class index (-1 unless tracking); ``confidence`` ``(F,)`` float32; ``person``
  ``(F,)`` int32 the track ID (-1 for the single-person tracker);
* ``frame_labels`` ``(F,)`` int64, only with ``labels="tracked"``: ``move`` as per-frame labels (the
  tracker's guesses, to check before training on them). Default: unlabelled.

Frames the tracker never took (stale frames a slow device skipped on a live camera) are not recorded:
``frame_index`` shows the gaps. With several performers the depth is recorded once a frame, with the
joints of the first result reported for it (``extra_results`` counts the others: use ``--jsonl`` for
everyone's joints).
Numpy only: the device never imports TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from kerasdance.camera import Intrinsics
from kerasdance.data.dataset import DATASET_JSON, GENERIC_FORMAT, GENERIC_VERSION
from kerasdance.errors import KerasdanceError
from kerasdance.skeleton import JOINT_NAMES, NUM_JOINTS
from kerasdance_edge.sinks import Sink
from kerasdance_edge.sources import DepthSource, resample_nearest
from kerasdance_edge.tracker import STATES, TRACKING, TrackResult

log = logging.getLogger("kerasdance.edge")

LABELS = ("none", "tracked")
_STOP = object()
#: Frames kept for pairing with their results (the live queue hands the tracker only the newest).
_STASH = 64


class RecorderError(KerasdanceError):
    """The recording cannot start (folder not empty, another camera or frame rate than the recording appended to)
    or cannot go on (the disk failed)."""


class RecorderBehind(RecorderError):
    """A frame was left out of the recording because the writer is behind (the queue is full)."""


def _save_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` at zlib level 1: 2.4x faster than its default level for 11% more bytes (depth frames
    of the synthetic dancers, 320x240), so that a small device's writer keeps up with the camera."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, a in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)


def _fsync_replace(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    try:  # the rename itself survives a power cut once the folder is synced (POSIX; not on every platform)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Tap(DepthSource):
    """A depth source that shows every frame it delivers to a ``Recorder`` (the rest is the wrapped source's)."""

    def __init__(self, source, recorder: Recorder):
        self._source, self._recorder = source, recorder

    def __getattr__(self, name):  # anything else the wrapped source has (e.g. SyntheticSource.current_move)
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._source, name)

    @property
    def fps(self):
        return self._source.fps

    @property
    def intrinsics(self):
        return self._source.intrinsics

    @property
    def live(self):
        return getattr(self._source, "live", False)

    @property
    def reconnects(self):
        return getattr(self._source, "reconnects", 0)

    def __enter__(self):
        self._source.__enter__()
        try:
            self._recorder.start(self._source.fps, self._source.intrinsics)
        except BaseException:
            self._source.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._source.__exit__(*exc)

    def frames(self):
        for frame in self._source.frames():
            self._recorder._stash_frame(frame)
            yield frame


class Recorder(Sink):
    """Writes the frames and results of a tracking run to a generic-layout dataset folder.

    Use as ``run(recorder.tap(source), tracker, [recorder, ...])``: the tap shows the recorder each frame,
    ``send`` pairs it with its result.

    Args:
        out_dir: the folder. It must be missing or empty, unless ``append``.
        class_names: the model's classes (``dataset.json``'s ``class_names``; ``move`` indexes them).
        joint_names: the names of ``joints_m``'s rows: the 20 kerasdance joints.
        labels: ``"none"`` (unlabelled, the default) or ``"tracked"`` (the tracked moves as ``frame_labels``).
        append: add a new take to the recording already in ``out_dir`` (same classes, camera and frame rate).
        segment_s: seconds of frames per ``.npz`` (what a crash can lose).
        max_queue_s: seconds of frames the writer may fall behind before frames are dropped.
        take: the name of this take (segments are ``<take>_0001.npz``...); default ``rec_<date>-<time>``.

    Raises:
        RecorderError: a non-empty folder without ``append``; ``append`` to a folder that is not a recording
            with these classes; joint names other than the 20 kerasdance joints.
        ValueError: ``labels`` not in ``LABELS``; non-positive ``segment_s`` / ``max_queue_s``; a bad ``take``.
    """

    def __init__(self, out_dir: str | Path, class_names, joint_names=JOINT_NAMES, labels: str = "none",
                 append: bool = False, segment_s: float = 5.0, max_queue_s: float = 3.0, take: str | None = None):
        if labels not in LABELS:
            raise ValueError(f"labels must be one of {LABELS}. Received: labels={labels!r}")
        if not segment_s > 0 or not max_queue_s > 0:
            raise ValueError(f"segment_s and max_queue_s must be positive. Received: segment_s={segment_s!r}, "
                             f"max_queue_s={max_queue_s!r}")
        if tuple(joint_names) != JOINT_NAMES:
            raise RecorderError(f"a recording holds the {NUM_JOINTS} kerasdance joints; the model has "
                                f"{list(joint_names)}")
        if take is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", take):
            raise ValueError(f"take must be a plain name (letters, digits, _ . -). Received: take={take!r}")
        self.out_dir = Path(out_dir)
        self.class_names = [str(c) for c in class_names]
        self.labels, self.append = labels, append
        self.segment_s, self.max_queue_s = float(segment_s), float(max_queue_s)
        self._entries: list[dict] = []
        self._existing: dict | None = None
        self._check_folder()
        self.take = take or self._new_take()
        #: Frames written to disk / left out because the writer was behind / results without their frame (or of
        #: another performer in a frame already recorded) / segments written.
        self.frames_written = self.dropped_frames = self.unmatched_results = self.extra_results = 0
        self.segments_written = 0
        self.error: BaseException | None = None
        self.fps: float | None = None
        self.intrinsics: Intrinsics | None = None
        self._stash: OrderedDict = OrderedDict()
        self._stash_lock = threading.Lock()
        self._last_index: int | None = None
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- set-up ----------------------------------------------------------------------------------------------
    def _check_folder(self) -> None:
        d = self.out_dir
        if d.exists() and not d.is_dir():
            raise RecorderError(f"--record {d}: exists and is not a folder")
        if d.is_dir() and any(d.iterdir()):
            if not self.append:
                raise RecorderError(f"--record {d}: the folder is not empty. Record into a new folder, or add a "
                                    "take to the recording there with --record-append")
            meta = d / DATASET_JSON
            try:
                existing = json.loads(meta.read_text(encoding="utf-8"))
                ok = isinstance(existing, dict) and existing.get("format") == GENERIC_FORMAT
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                ok = False
            if not ok:
                raise RecorderError(f"--record-append {d}: not a recording (no readable generic-layout {DATASET_JSON})")
            if existing.get("class_names") != self.class_names:
                raise RecorderError(f"--record-append {d}: recorded with other classes {existing.get('class_names')}; "
                                    f"this model has {self.class_names}")
            self._existing = existing
            self._entries = list(existing.get("sequences") or [])
        d.mkdir(parents=True, exist_ok=True)

    def _new_take(self) -> str:
        base = time.strftime("rec_%Y%m%d-%H%M%S")
        names = {Path(str(e.get("file", ""))).stem for e in self._entries}
        take, k = base, 1
        while any(n.startswith(take + "_") for n in names) or any(self.out_dir.glob(f"{take}_*.npz")):
            k += 1
            take = f"{base}-{k}"
        return take

    def tap(self, source) -> _Tap:
        """``source`` wrapped so that this recorder sees its frames (pass the result to ``run``)."""
        return _Tap(source, self)

    def start(self, fps: float, intrinsics: Intrinsics) -> None:
        """Start the writer for frames of this rate and camera (the tap calls it once the source is open).

        Raises:
            RecorderError: appending to a recording of another camera or frame rate.
        """
        if self._thread is not None:
            return
        fps = float(fps)
        if self._existing is not None:
            have_intr, have_fps = self._existing.get("intrinsics"), float(self._existing.get("fps", 15.0))
            if have_intr != intrinsics.to_dict() or abs(have_fps - fps) > 1e-9:
                raise RecorderError(f"--record-append {self.out_dir}: recorded with another camera or frame rate "
                                    f"({have_intr}, {have_fps:g} fps); this source is {intrinsics.to_dict()}, "
                                    f"{fps:g} fps. Record into a new folder")
        self.fps, self.intrinsics = fps, intrinsics
        self._segment_frames = max(1, int(round(self.segment_s * fps)))
        self._queue = queue.Queue(maxsize=max(2, int(round(self.max_queue_s * fps))))
        self._thread = threading.Thread(target=self._write_loop, name="kerasdance-recorder", daemon=True)
        self._thread.start()
        log.info("recording to %s: take %s, %d frames (%.1f s) per file", self.out_dir, self.take,
                 self._segment_frames, self.segment_s)

    # --- per frame -------------------------------------------------------------------------------------------
    def _stash_frame(self, frame) -> None:
        with self._stash_lock:
            self._stash[frame.index] = frame.depth_mm
            while len(self._stash) > _STASH:
                self._stash.popitem(last=False)

    def _take_frame(self, index: int):
        with self._stash_lock:
            depth = self._stash.pop(index, None)
            while self._stash and next(iter(self._stash)) < index:  # older frames never got a result
                self._stash.popitem(last=False)
        return depth

    def send(self, result: TrackResult) -> None:
        """Queue the result with its frame for writing (never waits).

        Raises:
            RecorderBehind: the writer is behind; the frame is left out (and counted).
            RecorderError: the recorder is not started, or the writer failed.
        """
        if self._queue is None:
            raise RecorderError("the recorder was not started: run it on recorder.tap(source)")
        if self.error is not None:
            raise RecorderError(f"the recording stopped: {type(self.error).__name__}: {self.error}")
        if result.index == self._last_index:
            self.extra_results += 1  # another performer in a frame already recorded
            return
        depth = self._take_frame(result.index)
        if depth is None:
            self.unmatched_results += 1
            return
        self._last_index = result.index
        h, w = self.intrinsics.height, self.intrinsics.width
        depth = np.asarray(depth)
        if depth.shape != (h, w):
            if depth.ndim != 2 or not depth.size or abs(depth.shape[1] / depth.shape[0] - w / h) > 0.01 * w / h:
                self.unmatched_results += 1
                return
            depth = resample_nearest(depth, h, w)
        try:
            self._queue.put_nowait((depth, result))
        except queue.Full:
            self.dropped_frames += 1
            raise RecorderBehind(f"frame {result.index} left out of the recording: the writer is "
                                 f"{self._queue.maxsize} frames behind (a slow disk?)") from None

    # --- the writer thread -----------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        buf: list = []
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if self.error is not None:
                continue  # keep draining so that nobody waits on a full queue
            buf.append(item)
            if len(buf) >= self._segment_frames:
                self._flush(buf)
                buf = []
        if buf and self.error is None:
            self._flush(buf)

    def _flush(self, buf: list) -> None:
        try:
            self._write_segment(buf)
        except Exception as e:  # noqa: BLE001 - reported by send/close, the tracker goes on
            self.error = e
            log.error("recording to %s failed: %s: %s (the show goes on unrecorded)", self.out_dir,
                      type(e).__name__, e)

    def _arrays(self, buf: list) -> dict[str, np.ndarray]:
        results: list[TrackResult] = [r for _, r in buf]
        index = {c: i for i, c in enumerate(self.class_names)}
        joints = np.full((len(buf), NUM_JOINTS, 3), np.nan, np.float32)
        for i, r in enumerate(results):
            if r.joints_m is not None:
                joints[i] = r.joints_m
        move = np.array([index.get(r.move, -1) if r.state == TRACKING else -1 for r in results], np.int16)
        arrays = {
            "depth_mm": np.stack([d for d, _ in buf]).astype(np.uint16, copy=False),
            "joints_m": joints,
            "timestamp_us": np.array([r.timestamp_us for r in results], np.int64),
            "frame_index": np.array([r.index for r in results], np.int64),
            "state": np.array([r.state for r in results], dtype=f"<U{max(len(s) for s in STATES)}"),
            "move": move,
            "confidence": np.array([r.confidence for r in results], np.float32),
            "person": np.array([-1 if r.person is None else r.person for r in results], np.int32),
        }  # fmt: skip
        if self.labels == "tracked":
            arrays["frame_labels"] = move.astype(np.int64)
        return arrays

    def _write_segment(self, buf: list) -> None:
        arrays = self._arrays(buf)
        self.segments_written += 1
        name = f"{self.take}_{self.segments_written:04d}"
        path = self.out_dir / f"{name}.npz"
        tmp = self.out_dir / f".{name}.npz.tmp"
        with open(tmp, "wb") as f:
            _save_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        _fsync_replace(tmp, path)
        self._entries.append({"file": path.name, "label": None, "subject": None, "episode": None,
                              "take": self.take, "first_index": int(arrays["frame_index"][0]),
                              "frames": len(buf)})
        self._write_meta()
        self.frames_written += len(buf)

    def _write_meta(self) -> None:
        meta = {
            "format": GENERIC_FORMAT, "version": GENERIC_VERSION, "class_names": self.class_names,
            "joint_names": list(JOINT_NAMES), "intrinsics": self.intrinsics.to_dict(), "fps": self.fps,
            "sequences": self._entries,
            "recording": {"labels": self.labels, "segment_s": self.segment_s, "states": list(STATES)},
        }  # fmt: skip
        path = self.out_dir / DATASET_JSON
        tmp = self.out_dir / f".{DATASET_JSON}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(meta, indent=1) + "\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_replace(tmp, path)

    # --- the end ---------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Write what is queued (the last segment may be shorter) and stop the writer. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
        with self._stash_lock:
            self._stash.clear()
        if self._thread is not None:
            log.info("recorded %d frames in %d files to %s (%d dropped)", self.frames_written, self.segments_written,
                     self.out_dir, self.dropped_frames)

    def summary(self) -> str:
        """One line: what was written, and what was lost."""
        lost = f"; {self.dropped_frames} frames dropped (the writer was behind)" if self.dropped_frames else ""
        failed = f"; FAILED: {type(self.error).__name__}: {self.error}" if self.error is not None else ""
        return (f"recorded {self.frames_written} frames in {self.segments_written} files to {self.out_dir} "
                f"(take {self.take}){lost}{failed}")
