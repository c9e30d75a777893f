"""Depth sources: live cameras, recordings and the synthetic dancer, behind one small interface.

A ``DepthSource`` is a context manager (``with source:`` opens the device or file, leaving closes it)
with three things the tracker uses:

* ``frames()``: an iterator of ``Frame(depth_mm (H, W) uint16, timestamp_us, index)``; ``index``
  increases by one a frame, so a gap means the source dropped frames; it ends when a recording ends;
* ``intrinsics``: the ``kerasdance.camera.Intrinsics`` of the delivered frames (valid once opened);
* ``fps``: the nominal frame rate; and ``live`` (True when frames arrive at the camera's pace,
  so the tracker must keep up and skip stale frames, False when it may take every frame).

Implementations here: ``RecordingSource`` (MSR ``_sdepth.bin`` or a generic ``.npz``),
``SyntheticSource`` (procedural dancers, a camera-free live source), ``RealSenseSource``
(Intel RealSense through ``pyrealsense2``) and ``OakDSource`` (Luxonis OAK-D stereo depth through
``depthai`` 3), both with reconnection. Other depth cameras (Orbbec,
Azure Kinect, OpenNI devices...) plug in by implementing the same interface: subclass
``DepthSource``, open the device in ``open``, yield ``Frame``s of millimetre depth in ``frames``
(resampled with ``resample_nearest`` to the model's training resolution when convenient), set
``intrinsics`` and ``fps``, release it in ``close``. Nothing else in the runtime changes.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.data.dataset import recording_meta
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


class RecordingSource(DepthSource):
    """Replays a recording: an MSR ``*_sdepth.bin`` or a generic-layout ``.npz`` (key ``depth_mm``).

    Args:
        path: the file. A ``.npz`` takes its intrinsics and frame rate from a sibling ``dataset.json`` when there
            is one, else Kinect v1 at 15 fps (as MSR files).
        realtime: deliver frames at ``fps`` (a rehearsal of the live show); False: as fast as they are taken.
        fps: the recording's frame rate; None: the recording's own (``dataset.json``'s ``fps``; MSR-Action3D: 15).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: the file cannot be read.
        ValueError: neither ``.bin`` nor ``.npz``.
    """

    def __init__(self, path: str | Path, realtime: bool = False, fps: float | None = None):
        self.path = Path(path)
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive. Received: fps={fps!r}")
        self.realtime, self.live = realtime, realtime
        own_fps = MSR_FPS
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
            intr, own_fps = recording_meta(self.path)
        else:
            raise ValueError(f"{self.path}: a recording is an MSR *_sdepth.bin or a .npz with depth_mm. "
                             f"Received suffix: {suffix!r}")
        self.fps = float(own_fps if fps is None else fps)
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


class _LiveCamera(DepthSource):
    """What the live cameras share: open with a clear error, reconnection with exponential backoff, frame indices
    that keep increasing across reconnections, millimetre frames resampled to ``target``.

    A subclass sets ``_name`` and ``_errors`` (the driver's exceptions that mean "camera lost") and implements
    ``_import`` (the driver module, or ``SourceError`` naming what to install), ``_start`` (open the device and set
    ``intrinsics``; raise one of ``_errors`` when it cannot), ``_stop`` (release it; never raises) and ``_read``
    (the next ``(depth_mm, device_frame_number, timestamp_us)``; raise one of ``_errors`` when the camera is gone).
    """

    live = True
    _name = "camera"
    _errors: tuple[type[BaseException], ...] = (RuntimeError,)

    def __init__(self, target: Intrinsics | None, backoff_s: float, max_backoff_s: float,
                 reconnect_timeout_s: float | None):
        if backoff_s <= 0 or max_backoff_s < backoff_s:
            raise ValueError(f"need 0 < backoff_s <= max_backoff_s. Received: backoff_s={backoff_s!r}, "
                             f"max_backoff_s={max_backoff_s!r}")
        self.target = target
        self.backoff_s, self.max_backoff_s, self.reconnect_timeout_s = backoff_s, max_backoff_s, reconnect_timeout_s
        self.reconnects = 0
        self._next_index = 0
        self._first_number: int | None = None
        self._base = 0
        self._closed = False
        self._running = False

    def _who(self) -> str:
        return self._name

    def _import(self):
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _read(self) -> tuple[np.ndarray, int, int] | None:
        raise NotImplementedError

    def _deliver_intrinsics(self, native: Intrinsics) -> None:
        """Set ``native_intrinsics`` and ``intrinsics`` (``native`` scaled to ``target``'s resolution)."""
        self.native_intrinsics = native
        self.intrinsics = native if self.target is None else native.scaled(self.target.width, self.target.height)
        self._first_number = None
        self._base = self._next_index

    def open(self) -> None:
        self._driver = self._import()
        self._closed = False
        try:
            self._start()
        except self._errors as e:
            self._stop()
            raise SourceError(f"cannot open the {self._who()}: {e}") from None
        self._running = True

    def close(self) -> None:
        self._closed = True
        self._running = False
        self._stop()

    def _reconnect(self, error: BaseException) -> None:
        log.warning("%s lost (%s): reconnecting", self._who(), error)
        self._running = False
        self._stop()
        wait, t0 = self.backoff_s, time.monotonic()
        while not self._closed:
            time.sleep(wait)
            if self._closed:
                return
            try:
                self._start()
            except self._errors as e:
                self._stop()
                if self.reconnect_timeout_s is not None and time.monotonic() - t0 > self.reconnect_timeout_s:
                    raise SourceError(f"the {self._who()} did not come back within "
                                      f"{self.reconnect_timeout_s:g} s ({e})") from None
                log.info("%s not back yet (%s); next try in %.1f s", self._who(), e, wait)
                wait = min(wait * 2.0, self.max_backoff_s)
                continue
            self._running = True
            self.reconnects += 1
            log.warning("%s reconnected (reconnection %d)", self._who(), self.reconnects)
            return

    def frames(self) -> Iterator[Frame]:
        if not self._running:
            raise SourceError(f"{type(self).__name__}.frames() needs an open source: "
                              f"use `with {type(self).__name__}(...) as s:`")
        while not self._closed:
            try:
                got = self._read()
            except self._errors as e:
                if self._closed:
                    return
                self._reconnect(e)
                continue
            if got is None:  # nothing this time (an empty frameset): ask again
                continue
            depth, number, timestamp_us = got
            if self._first_number is None:
                self._first_number = number
            index = self._base + max(number - self._first_number, 0)
            if index < self._next_index:  # the camera restarted its counter without us noticing
                self._base += self._next_index - index
                index = self._next_index
            self._next_index = index + 1
            yield Frame(resample_nearest(depth, self.intrinsics.height, self.intrinsics.width), timestamp_us, index)


class RealSenseSource(_LiveCamera):
    """An Intel RealSense depth camera (D4xx / L5xx) through ``pyrealsense2``.

    Streams z16 depth, converts it to millimetres with the device's depth scale and resamples it
    (nearest) to ``target``'s resolution, the model's training resolution, with the camera's own
    intrinsics scaled to it (``Intrinsics.scaled``): the person crop is metric, so a different
    focal length is fine. When the camera disappears (``wait_for_frames`` raises) the source
    re-opens it with exponential backoff and goes on; indices keep increasing across reconnections.

    ``pyrealsense2`` has wheels on PyPI for x86_64 Linux and Windows only (``pip install kerasdance[realsense]``);
    on a Raspberry Pi or Jetson build librealsense and its Python bindings with ``tools/install_realsense.sh``.

    Args:
        width, height, fps: the depth stream to request.
        serial: the device's serial number (None: the first camera).
        target: the resolution to deliver (``width``/``height`` of these intrinsics); None: native.
        backoff_s: first wait before reconnecting; doubled after every failed attempt.
        max_backoff_s: the longest wait between attempts.
        reconnect_timeout_s: give up (``SourceError``) after this long without a camera; None: never.
        timeout_ms: ``wait_for_frames`` timeout.
    """

    _name = "RealSense camera"

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, serial: str | None = None,
                 target: Intrinsics | None = None, backoff_s: float = 0.5, max_backoff_s: float = 8.0,
                 reconnect_timeout_s: float | None = None, timeout_ms: int = 2000):
        super().__init__(target, backoff_s, max_backoff_s, reconnect_timeout_s)
        self.width, self.height, self.fps, self.serial = int(width), int(height), fps, serial
        self.timeout_ms = timeout_ms
        self._pipeline = None
        self._depth_scale_mm = 1.0

    def _who(self) -> str:
        return f"{self._name}{' ' + self.serial if self.serial else ''}"

    def _import(self):
        try:
            import pyrealsense2 as rs
        except ImportError:
            raise SourceError("the RealSense source needs pyrealsense2: pip install kerasdance[camera] (x86_64; on "
                              "a Raspberry Pi or Jetson build it with tools/install_realsense.sh)") from None
        return rs

    def _start(self) -> None:
        rs = self._driver
        pipeline = rs.pipeline()
        config = rs.config()
        if self.serial:
            config.enable_device(self.serial)
        config.enable_stream(rs.stream.depth, self.width, self.height, rs.format.z16, self.fps)
        profile = pipeline.start(config)
        self._pipeline = pipeline
        self._depth_scale_mm = float(profile.get_device().first_depth_sensor().get_depth_scale()) * 1000.0
        ri = profile.get_stream(rs.stream.depth).as_video_stream_profile().get_intrinsics()
        self._deliver_intrinsics(Intrinsics(float(ri.fx), float(ri.fy), float(ri.ppx), float(ri.ppy),
                                            int(ri.width), int(ri.height)))
        native = self.native_intrinsics
        log.info("%s: %dx%d @ %s fps, depth scale %.3f mm, delivering %dx%d", self._who(), native.width,
                 native.height, self.fps, self._depth_scale_mm, self.intrinsics.width, self.intrinsics.height)

    def _stop(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass
            self._pipeline = None

    def _convert(self, raw: np.ndarray) -> np.ndarray:
        # Always a copy: librealsense reuses the frame's buffer once the frame is released.
        if abs(self._depth_scale_mm - 1.0) < 1e-6:  # D400 default: 1 mm units
            return np.array(raw, dtype=np.uint16)
        return np.clip(np.round(np.asarray(raw, np.float32) * self._depth_scale_mm), 0, 65535).astype(np.uint16)

    def _read(self) -> tuple[np.ndarray, int, int] | None:
        frameset = self._pipeline.wait_for_frames(self.timeout_ms)
        depth = frameset.get_depth_frame()
        if not depth:
            return None
        number = int(depth.get_frame_number())
        raw = np.asanyarray(depth.get_data())
        timestamp_us = int(round(float(depth.get_timestamp()) * 1000.0))
        return self._convert(raw), number, timestamp_us


#: ``OakDSource(align=...)``: the camera the depth is aligned to.
OAKD_ALIGNS = ("rgb", "left")


class OakDSource(_LiveCamera):
    """A Luxonis OAK-D stereo depth camera (OAK-D, OAK-D Lite, OAK-D Pro...) through ``depthai``.

    Written against the **depthai v3** API (``dai.Pipeline(device)``, ``pipeline.create(dai.node.Camera).build(
    socket)``, ``camera.requestOutput(size)``, ``dai.node.StereoDepth.build(left, right)``,
    ``output.createOutputQueue()``, ``pipeline.start()``); the v2 API (``MonoCamera``, ``XLinkOut``,
    ``dai.Device(pipeline)``, ``getOutputQueue``) is not supported: ``pip install "depthai>=3"``.

    Depth comes from the two mono cameras (``CAM_B`` left, ``CAM_C`` right) with the left-right check on, in
    millimetres (uint16, 0 = no reading: depthai's default depth unit), aligned either to the colour camera in the
    centre (``align="rgb"``, ``CAM_A``: the depth is reprojected into a ``width x height`` colour output, centre
    crop of the sensor; the mono pair runs at 640x400) or to the rectified left camera (``align="left"``: the
    mono pair runs at ``width x height``). The frames are resampled (nearest) to ``target``'s resolution with the
    intrinsics scaled to it, like ``RealSenseSource``.

    Intrinsics: from the first depth frame's own transformation (``ImgFrame.getTransformation()
    .getIntrinsicMatrix()``, which depthai derives from the device calibration for exactly this output:
    alignment, crop and scale); from the calibration itself (``device.readCalibration().getCameraIntrinsics(
    socket, width, height)``) when the frame carries none. When the camera disappears (a closed queue, an XLink
    error, no frame within ``timeout_ms``) the source re-opens it with exponential backoff, as the RealSense source.

    Args:
        width, height: the depth frame size (and the colour or mono output requested for it).
        fps: the camera frame rate.
        device_id: the device's ID (MxID), USB port name or IP address (None: the first OAK found).
        align: ``"rgb"`` (the colour / centre camera) or ``"left"`` (the rectified left camera).
        target: the resolution to deliver (``width``/``height`` of these intrinsics); None: native.
        backoff_s, max_backoff_s, reconnect_timeout_s: reconnection, as ``RealSenseSource``.
        timeout_ms: how long to wait for a depth frame before calling the camera lost.

    Raises:
        ValueError: ``align`` is not one of ``OAKD_ALIGNS``.
    """

    _name = "OAK-D camera"
    #: The mono pair's resolution when the depth is aligned to the colour camera (OAK-D's 400p stereo).
    STEREO_SIZE = (640, 400)

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, device_id: str | None = None,
                 align: str = "rgb", target: Intrinsics | None = None, backoff_s: float = 0.5,
                 max_backoff_s: float = 8.0, reconnect_timeout_s: float | None = None, timeout_ms: int = 2000):
        if align not in OAKD_ALIGNS:
            raise ValueError(f"align must be one of {OAKD_ALIGNS}. Received: align={align!r}")
        if not (int(width) > 0 and int(height) > 0 and fps > 0):
            raise ValueError(f"width, height and fps must be positive. Received: width={width!r}, "
                             f"height={height!r}, fps={fps!r}")
        super().__init__(target, backoff_s, max_backoff_s, reconnect_timeout_s)
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.device_id, self.align, self.timeout_ms = device_id, align, int(timeout_ms)
        self._device = self._pipeline = self._queue = None
        self._pending: tuple[np.ndarray, int, int] | None = None

    def _who(self) -> str:
        return f"{self._name}{' ' + self.device_id if self.device_id else ''}"

    def _import(self):
        try:
            import depthai as dai
        except ImportError:
            raise SourceError("the OAK-D source needs depthai 3: pip install kerasdance[oakd]") from None
        if not hasattr(dai, "node") or not hasattr(dai.node, "Camera") or not hasattr(dai.node, "StereoDepth"):
            raise SourceError(f"the OAK-D source needs the depthai 3 API (node.Camera); this depthai is "
                              f"{getattr(dai, '__version__', '?')}: pip install 'depthai>=3'")
        queue_error = getattr(getattr(dai, "MessageQueue", None), "QueueException", RuntimeError)
        self._errors = (RuntimeError, queue_error)
        return dai

    def _start(self) -> None:
        dai = self._driver
        self._device = dai.Device(dai.DeviceInfo(self.device_id)) if self.device_id else dai.Device()
        if hasattr(self._device, "setMaxReconnectionAttempts"):
            self._device.setMaxReconnectionAttempts(0)  # one reconnection mechanism: ours
        pipeline = dai.Pipeline(self._device)
        self._pipeline = pipeline
        size = (self.width, self.height)
        mono = self.STEREO_SIZE if self.align == "rgb" else size
        left = pipeline.create(dai.node.Camera).build(dai.CameraBoardSocket.CAM_B, sensorFps=self.fps)
        right = pipeline.create(dai.node.Camera).build(dai.CameraBoardSocket.CAM_C, sensorFps=self.fps)
        stereo = pipeline.create(dai.node.StereoDepth).build(left.requestOutput(mono, fps=self.fps),
                                                             right.requestOutput(mono, fps=self.fps))
        stereo.setLeftRightCheck(True)  # needed for the alignment, and it removes occlusion artefacts
        depth_out = stereo.depth
        if self.align == "rgb":
            socket = dai.CameraBoardSocket.CAM_A
            colour = pipeline.create(dai.node.Camera).build(socket, sensorFps=self.fps)
            colour_out = colour.requestOutput(size, fps=self.fps)
            if self._device.getPlatform() == dai.Platform.RVC4:  # OAK 4: alignment is a node of its own
                aligner = pipeline.create(dai.node.ImageAlign)
                depth_out.link(aligner.input)
                colour_out.link(aligner.inputAlignTo)
                depth_out = aligner.outputAligned
            else:  # OAK-D (RVC2): the stereo node aligns
                colour_out.link(stereo.inputAlignTo)
        else:
            socket = dai.CameraBoardSocket.CAM_B
            stereo.setDepthAlign(dai.StereoDepthConfig.AlgorithmControl.DepthAlign.RECTIFIED_LEFT)
        self._queue = depth_out.createOutputQueue(maxSize=4, blocking=False)
        pipeline.start()
        first = self._queue.get(datetime.timedelta(milliseconds=self.timeout_ms))
        if first is None:
            raise RuntimeError(f"no depth frame within {self.timeout_ms} ms")
        depth = self._depth_of(first)
        h, w = depth.shape
        native = self._frame_intrinsics(first, w, h)
        if native is None:
            k = self._device.readCalibration().getCameraIntrinsics(socket, w, h)
            native = Intrinsics(float(k[0][0]), float(k[1][1]), float(k[0][2]), float(k[1][2]), w, h)
            source = "calibration"
        else:
            source = "frame transformation"
        self._deliver_intrinsics(native)
        self._pending = (depth, int(first.getSequenceNum()), self._timestamp_us(first))
        log.info("%s: depth aligned to %s, %dx%d @ %g fps (intrinsics from the %s: fx %.1f fy %.1f), delivering "
                 "%dx%d", self._who(), "the colour camera" if self.align == "rgb" else "the rectified left camera",
                 w, h, self.fps, source, native.fx, native.fy, self.intrinsics.width, self.intrinsics.height)

    @staticmethod
    def _frame_intrinsics(frame, width: int, height: int) -> Intrinsics | None:
        try:
            transformation = frame.getTransformation()
            if not transformation.isValid() or tuple(transformation.getSize()) != (width, height):
                return None
            k = transformation.getIntrinsicMatrix()
            return Intrinsics(float(k[0][0]), float(k[1][1]), float(k[0][2]), float(k[1][2]), width, height)
        except (AttributeError, RuntimeError, ValueError, TypeError, IndexError):
            return None

    @staticmethod
    def _depth_of(frame) -> np.ndarray:
        # Always a copy, in uint16 millimetres (the depth output's default unit).
        depth = np.array(frame.getFrame(), dtype=np.uint16)
        if depth.ndim != 2:
            raise RuntimeError(f"expected a 2-D depth frame. Received shape {depth.shape}")
        return depth

    @staticmethod
    def _timestamp_us(frame) -> int:
        return int(round(frame.getTimestamp() / datetime.timedelta(microseconds=1)))

    def _stop(self) -> None:
        self._queue = None
        self._pending = None
        for thing, method in ((self._pipeline, "stop"), (self._device, "close")):
            if thing is not None:
                try:
                    getattr(thing, method)()
                except Exception:  # noqa: BLE001 - releasing a device that is already gone
                    pass
        self._pipeline = self._device = None

    def _read(self) -> tuple[np.ndarray, int, int] | None:
        if self._pending is not None:
            got, self._pending = self._pending, None
            return got
        frame = self._queue.get(datetime.timedelta(milliseconds=self.timeout_ms))
        if frame is None:
            raise RuntimeError(f"no depth frame within {self.timeout_ms} ms")
        return self._depth_of(frame), int(frame.getSequenceNum()), self._timestamp_us(frame)
