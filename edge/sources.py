"""Depth sources: live cameras, recordings and the synthetic dancer, behind one small interface.

A ``DepthSource`` is a context manager (``with source:`` opens the device or file, leaving closes it)
with three things the tracker uses:

* ``frames()``: an iterator of ``Frame(depth_mm (H, W) uint16, timestamp_us, index)``; ``index``
  increases by one a frame, so a gap means the source dropped frames; it ends when a recording ends;
* ``intrinsics``: the ``kerasdance.camera.Intrinsics`` of the delivered frames (valid once opened);
* ``fps``: the nominal frame rate; and ``live`` (True when frames arrive at the camera's pace,
  so the tracker must keep up and skip stale frames, False when it may take every frame).

Implementations here: ``RecordingSource`` (MSR ``_sdepth.bin`` or a generic ``.npz``),
``SyntheticSource`` (procedural dancers, a camera-free live source) and ``RealSenseSource``
(Intel RealSense through ``pyrealsense2``, with reconnection). Other depth cameras (Orbbec,
Azure Kinect, OpenNI devices...) plug in by implementing the same interface: subclass
``DepthSource``, open the device in ``open``, yield ``Frame``s of millimetre depth in ``frames``
(resampled with ``resample_nearest`` to the model's training resolution when convenient), set
``intrinsics`` and ``fps``, release it in ``close``. Nothing else in the runtime changes.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.errors import DataFormatError, KerasdanceError

log = logging.getLogger("kerasdance.edge")

#: The MSR-Action3D (Kinect v1) frame rate.
MSR_FPS = 15.0


class SourceError(KerasdanceError, RuntimeError):
    """A depth source cannot deliver frames (missing driver, no camera, camera gone for good)."""


class Frame(NamedTuple):
    """One depth frame: ``(H, W)`` uint16 millimetres (0 = no reading), capture time, running index."""

    depth_mm: np.ndarray
    timestamp_us: int
    index: int


def resample_nearest(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resampling of an ``(H, W)`` image to ``(height, width)`` (pixel centres aligned)."""
    h, w = depth.shape[:2]
    if (h, w) == (height, width):
        return depth
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return depth[rows[:, None], cols[None, :]]


class DepthSource:
    """The interface of every depth source (see the module docstring)."""

    intrinsics: Intrinsics = KINECT_V1
    fps: float = MSR_FPS
    live: bool = False
    #: How many times the source lost and re-opened its device.
    reconnects: int = 0

    def open(self) -> None:
        """Acquire the device or file (called by ``__enter__``)."""

    def close(self) -> None:
        """Release it (called by ``__exit__``; must be safe to call twice)."""

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Pacer:
    """Sleeps so that frame ``i`` is delivered ``i / fps`` seconds after the first (realtime replay)."""

    def __init__(self, fps: float, realtime: bool):
        self.period = 1.0 / fps
        self.realtime = realtime
        self.t0: float | None = None

    def wait(self, i: int) -> None:
        if not self.realtime:
            return
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = now
        delay = self.t0 + i * self.period - now
        if delay > 0:
            time.sleep(delay)


def _dataset_intrinsics(npz: Path) -> Intrinsics:
    meta = npz.parent / "dataset.json"
    if not meta.exists():
        return KINECT_V1
    try:
        return Intrinsics.from_dict(json.loads(meta.read_text())["intrinsics"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataFormatError(f"{meta}: cannot read its intrinsics ({e})") from None


class RecordingSource(DepthSource):
    """Replays a recording: an MSR ``*_sdepth.bin`` or a generic-layout ``.npz`` (key ``depth_mm``).

    Args:
        path: the file. A ``.npz`` takes its intrinsics from a sibling ``dataset.json`` when there is one,
            else Kinect v1 (as MSR files).
        realtime: deliver frames at ``fps`` (a rehearsal of the live show); False: as fast as they are taken.
        fps: the recording's frame rate (MSR-Action3D: 15).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: the file cannot be read.
        ValueError: neither ``.bin`` nor ``.npz``.
    """

    def __init__(self, path: str | Path, realtime: bool = False, fps: float = MSR_FPS):
        self.path = Path(path)
        if fps <= 0:
            raise ValueError(f"fps must be positive. Received: fps={fps!r}")
        self.fps, self.realtime, self.live = float(fps), realtime, realtime
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such recording")
        suffix = self.path.suffix.lower()
        if suffix == ".bin":
            from kerasdance.data.msr import read_depth_bin

            self.depth_mm = read_depth_bin(self.path)
            intr = KINECT_V1
        elif suffix == ".npz":
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    depth = z["depth_mm"]
            except KeyError:
                raise DataFormatError(f"{self.path}: no depth_mm array in this .npz") from None
            except (ValueError, OSError, EOFError) as e:
                raise DataFormatError(f"{self.path}: cannot be read as .npz ({str(e)[:100]})") from None
            if depth.ndim != 3 or len(depth) == 0 or depth.dtype.kind not in "ui":
                raise DataFormatError(f"{self.path}: depth_mm must be (frames, height, width) integers. "
                                      f"Received: shape={depth.shape}, dtype={depth.dtype}")
            self.depth_mm = np.clip(depth, 0, 65535).astype(np.uint16)
            intr = _dataset_intrinsics(self.path)
        else:
            raise ValueError(f"{self.path}: a recording is an MSR *_sdepth.bin or a .npz with depth_mm. "
                             f"Received suffix: {suffix!r}")
        h, w = self.depth_mm.shape[1:]
        self.intrinsics = intr if (intr.height, intr.width) == (h, w) else intr.scaled(w, h)

    def __len__(self) -> int:
        return len(self.depth_mm)

    def frames(self) -> Iterator[Frame]:
        pacer = _Pacer(self.fps, self.realtime)
        for i, depth in enumerate(self.depth_mm):
            pacer.wait(i)
            yield Frame(depth, int(round(i * 1e6 / self.fps)), i)


class SyntheticSource(DepthSource):
    """Generated dancers (``kerasdance.data.synthetic``), one sequence after another: a camera-free live source.

    Args:
        set_name: the synthetic set (its classes are the moves performed, in turn).
        seed: generator seed.
        loop: keep going forever; False: one sequence of each class, then stop.
        realtime: deliver frames at ``fps``.
    """

    def __init__(self, set_name: str = "dance11", seed: int = 0, loop: bool = True, realtime: bool = False):
        from kerasdance.data import synthetic

        self._synthetic = synthetic
        self.set_name, self.seed, self.loop, self.realtime, self.live = set_name, seed, loop, realtime, realtime
        self.class_names = tuple(synthetic.class_names(set_name))
        self.fps = MSR_FPS
        first = self._sequence(0)
        self._first = first
        self.intrinsics = first.intrinsics
        #: The class name of the sequence being delivered (the ground truth of the current move).
        self.current_move = self.class_names[0]

    def _sequence(self, k: int):
        n = len(self.class_names)
        label = k % n
        subject = 1 + (k // n) % 10
        episode = 1 + (k // (n * 10)) % 3
        return self._synthetic.generate_sequence(self.set_name, label, subject, episode, seed=self.seed + k // (n * 30))

    def frames(self) -> Iterator[Frame]:
        pacer = _Pacer(self.fps, self.realtime)
        count = itertools.count() if self.loop else range(len(self.class_names))
        i = 0
        for k in count:
            seq = self._first if k == 0 else self._sequence(k)
            self.current_move = self.class_names[k % len(self.class_names)]
            for depth in seq.depth_mm:
                pacer.wait(i)
                yield Frame(depth, int(round(i * 1e6 / self.fps)), i)
                i += 1


class RealSenseSource(DepthSource):
    """An Intel RealSense depth camera (D4xx / L5xx) through ``pyrealsense2``.

    Streams z16 depth, converts it to millimetres with the device's depth scale and resamples it
    (nearest) to ``target``'s resolution, the model's training resolution, with the camera's own
    intrinsics scaled to it (``Intrinsics.scaled``): the person crop is metric, so a different
    focal length is fine. When the camera disappears (``wait_for_frames`` raises) the source
    re-opens it with exponential backoff and goes on; indices keep increasing across reconnections.

    Args:
        width, height, fps: the depth stream to request.
        serial: the device's serial number (None: the first camera).
        target: the resolution to deliver (``width``/``height`` of these intrinsics); None: native.
        backoff_s: first wait before reconnecting; doubled after every failed attempt.
        max_backoff_s: the longest wait between attempts.
        reconnect_timeout_s: give up (``SourceError``) after this long without a camera; None: never.
        timeout_ms: ``wait_for_frames`` timeout.
    """

    live = True

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, serial: str | None = None,
                 target: Intrinsics | None = None, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 reconnect_timeout_s: float | None = None, timeout_ms: int = 2000):
        self.width, self.height, self.fps, self.serial = int(width), int(height), fps, serial
        self.target = target
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.reconnect_timeout_s, self.timeout_ms = reconnect_timeout_s, timeout_ms
        self.reconnects = 0
        self._rs = self._pipeline = None
        self._depth_scale_mm = 1.0
        self._next_index = 0
        self._first_number: int | None = None
        self._base = 0
        self._closed = False

    def open(self) -> None:
        try:
            import pyrealsense2 as rs
        except ImportError:
            raise SourceError("the RealSense source needs pyrealsense2: pip install kerasdance[camera]") from None
        self._rs = rs
        self._closed = False
        try:
            self._start()
        except RuntimeError as e:
            raise SourceError(f"cannot open the RealSense camera{self._who()}: {e}") from None

    def _who(self) -> str:
        return f" {self.serial}" if self.serial else ""

    def _start(self) -> None:
        rs = self._rs
        pipeline = rs.pipeline()
        config = rs.config()
        if self.serial:
            config.enable_device(self.serial)
        config.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        profile = pipeline.start(config)
        self._pipeline = pipeline
        self._depth_scale_mm = float(profile.get_device().first_depth_sensor().get_depth_scale()) * 1000.0
        ri = profile.get_stream(rs.stream.depth).as_video_stream_profile().get_intrinsics()
        native = Intrinsics(float(ri.fx), float(ri.fy), float(ri.ppx), float(ri.ppy), int(ri.width), int(ri.height))
        self.native_intrinsics = native
        self.intrinsics = native if self.target is None else native.scaled(self.target.width, self.target.height)
        self._first_number = None
        self._base = self._next_index
        log.info("RealSense%s: %dx%d @ %s fps, depth scale %.3f mm, delivering %dx%d", self._who(), native.width,
                 native.height, self.fps, self._depth_scale_mm, self.intrinsics.width, self.intrinsics.height)

    def _stop(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass
            self._pipeline = None

    def close(self) -> None:
        self._closed = True
        self._stop()

    def _reconnect(self, error: Exception) -> None:
        log.warning("RealSense%s lost (%s): reconnecting", self._who(), error)
        self._stop()
        wait, t0 = self.backoff_s, time.monotonic()
        while not self._closed:
            time.sleep(wait)
            if self._closed:
                return
            try:
                self._start()
            except RuntimeError as e:
                if self.reconnect_timeout_s is not None and time.monotonic() - t0 > self.reconnect_timeout_s:
                    raise SourceError(f"the RealSense camera{self._who()} did not come back within "
                                      f"{self.reconnect_timeout_s:g} s ({e})") from None
                log.info("RealSense%s not back yet (%s); next try in %.1f s", self._who(), e, wait)
                wait = min(wait * 2.0, self.max_backoff_s)
                continue
            self.reconnects += 1
            log.warning("RealSense%s reconnected (reconnection %d)", self._who(), self.reconnects)
            return

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        # Always a copy: librealsense reuses the frame's buffer once the frame is released.
        if abs(self._depth_scale_mm - 1.0) < 1e-6:  # D400 default: 1 mm units
            depth = np.array(raw, dtype=np.uint16)
        else:
            depth = np.clip(np.round(np.asarray(raw, np.float32) * self._depth_scale_mm), 0, 65535).astype(np.uint16)
        return resample_nearest(depth, self.intrinsics.height, self.intrinsics.width)

    def frames(self) -> Iterator[Frame]:
        if self._pipeline is None:
            raise SourceError("RealSenseSource.frames() needs an open source: use `with RealSenseSource(...) as s:`")
        while not self._closed:
            try:
                frameset = self._pipeline.wait_for_frames(self.timeout_ms)
                depth = frameset.get_depth_frame()
                if not depth:
                    continue
                number = int(depth.get_frame_number())
                raw = np.asanyarray(depth.get_data())
                timestamp_us = int(round(float(depth.get_timestamp()) * 1000.0))
            except RuntimeError as e:
                if self._closed:
                    return
                self._reconnect(e)
                continue
            if self._first_number is None:
                self._first_number = number
            index = self._base + max(number - self._first_number, 0)
            if index < self._next_index:  # the camera restarted its counter without us noticing
                self._base += self._next_index - index
                index = self._next_index
            self._next_index = index + 1
            yield Frame(self._convert(raw), timestamp_us, index)
