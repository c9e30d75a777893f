"""Depth sources: recordings (.bin by hand, .npz), synthetic dancers, RealSense and OAK-D through fake drivers."""

import datetime
import json
import struct
import sys
import time
import types

import numpy as np
import pytest
from edge_fixtures import FakeRealSense, person_depth, write_bin

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.errors import DataFormatError
from kerasdance_edge.sources import (
    DepthSource,
    Frame,
    OakDSource,
    RealSenseSource,
    RecordingSource,
    SourceError,
    resample_nearest,
)


def test_msr_bin_recording(tmp_path):
    depth = person_depth(5)
    src = RecordingSource(write_bin(tmp_path / "a01_s01_e01_sdepth.bin", depth))
    assert isinstance(src, DepthSource) and not src.live and src.fps == 15.0
    with src:
        frames = list(src.frames())
    assert src.intrinsics == KINECT_V1
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp_us for f in frames] == [round(i * 1e6 / 15) for i in range(5)]
    assert all(isinstance(f, Frame) and f.depth_mm.dtype == np.uint16 for f in frames)
    np.testing.assert_array_equal(np.stack([f.depth_mm for f in frames]), depth)


def test_realtime_replay_is_paced(tmp_path):
    path = write_bin(tmp_path / "a01_s01_e01_sdepth.bin", person_depth(6))
    src = RecordingSource(path, realtime=True, fps=50.0)
    assert src.live
    t0 = time.perf_counter()
    with src:
        n = sum(1 for _ in src.frames())
    assert n == 6 and time.perf_counter() - t0 >= 5 / 50 - 0.01


def test_npz_recording_intrinsics_from_dataset_json_or_kinect(tmp_path):
    depth = person_depth(3, 480, 640)
    np.savez(tmp_path / "take.npz", depth_mm=depth)
    src = RecordingSource(tmp_path / "take.npz")
    assert src.intrinsics == KINECT_V1.scaled(640, 480)  # no dataset.json: Kinect v1 at this size
    intr = Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "kerasdance-generic", "intrinsics": intr.to_dict()}))
    src = RecordingSource(tmp_path / "take.npz")
    assert src.intrinsics == intr and len(src) == 3 and src.fps == 15.0
    with src:
        assert next(iter(src.frames())).depth_mm.shape == (480, 640)
    # a recording's own frame rate (dataset.json's fps) times its frames, unless given
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "kerasdance-generic", "intrinsics": intr.to_dict(),
                                                       "fps": 30.0}))
    src = RecordingSource(tmp_path / "take.npz")
    with src:
        assert src.fps == 30.0 and [f.timestamp_us for f in src.frames()] == [0, 33333, 66667]
    assert RecordingSource(tmp_path / "take.npz", fps=60.0).fps == 60.0


def test_recording_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such recording"):
        RecordingSource(tmp_path / "missing.bin")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="suffix"):
        RecordingSource(tmp_path / "x.txt")
    np.savez(tmp_path / "nodepth.npz", joints_m=np.zeros((2, 20, 3), np.float32))
    with pytest.raises(DataFormatError, match="no depth_mm"):
        RecordingSource(tmp_path / "nodepth.npz")
    (tmp_path / "a01_s01_e01_sdepth.bin").write_bytes(struct.pack("<3i", 10, 320, 240) + b"\0" * 100)
    with pytest.raises(DataFormatError, match="truncated"):
        RecordingSource(tmp_path / "a01_s01_e01_sdepth.bin")


def test_synthetic_source():
    synthetic = pytest.importorskip("kerasdance.data.synthetic")
    from kerasdance_edge.sources import SyntheticSource

    src = SyntheticSource(seed=0, loop=False)
    assert src.class_names == tuple(synthetic.class_names("dance11"))
    with src:
        frames = []
        for f in src.frames():
            frames.append(f)
            if len(frames) >= 40:
                break
    assert [f.index for f in frames] == list(range(len(frames)))
    assert all(f.depth_mm.shape == (src.intrinsics.height, src.intrinsics.width) for f in frames)
    assert all(f.depth_mm.dtype == np.uint16 and f.depth_mm.any() for f in frames)


@pytest.fixture
def fake_rs(monkeypatch):
    def install(**kwargs):
        fake = FakeRealSense(**kwargs)
        monkeypatch.setitem(sys.modules, "pyrealsense2", fake)
        return fake

    return install


def _take(src, n):
    out = []
    for f in src.frames():
        out.append(f)
        if len(out) == n:
            break
    return out


def test_realsense_depth_scale_resampling_and_intrinsics(fake_rs):
    fake = fake_rs(depth_units_m=0.0001)  # 0.1 mm units (raw = 10 x mm)
    with RealSenseSource(target=KINECT_V1, serial="123") as src:
        frames = _take(src, 3)
        assert src.live
    assert fake.serial == "123" and fake.enabled == [("depth", 640, 480, "z16", 30)]
    native = Intrinsics(571.26, 571.26, 320.0, 240.0, 640, 480)
    assert src.native_intrinsics == native and src.intrinsics == native.scaled(320, 240)
    for k, f in enumerate(frames):
        assert f.depth_mm.shape == (240, 320) and f.depth_mm.dtype == np.uint16
        expected = resample_nearest(fake.frames_mm[k], 240, 320).astype(np.int32)
        assert np.abs(f.depth_mm.astype(np.int32) - expected).max() <= 1
        assert f.timestamp_us == round(33.3 * k * 1000)
    assert [f.index for f in frames] == [0, 1, 2]
    assert fake.stops == 1  # closed on exit


def test_realsense_unplug_and_replug_reconnects_with_backoff(fake_rs, caplog):
    fake = fake_rs(unplug_after=4, failed_starts=2)
    with RealSenseSource(backoff_s=0.001, max_backoff_s=0.004) as src:
        frames = _take(src, 10)
    assert src.reconnects == 1
    assert fake.starts == 1 + 3  # the first start, two failed attempts, the successful one
    idx = [f.index for f in frames]
    assert idx == sorted(set(idx)) and len(idx) == 10  # indices keep increasing across the reconnection
    assert any("lost" in r.getMessage() for r in caplog.records)
    assert any("reconnected" in r.getMessage() for r in caplog.records)


def test_realsense_gives_up_after_reconnect_timeout(fake_rs):
    fake_rs(unplug_after=1, failed_starts=10**6)
    with RealSenseSource(backoff_s=0.001, max_backoff_s=0.002, reconnect_timeout_s=0.05) as src:
        with pytest.raises(SourceError, match="did not come back"):
            _take(src, 5)


def test_realsense_without_driver_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # import fails
    with pytest.raises(SourceError, match=r"pip install kerasdance\[camera\]"):
        with RealSenseSource():
            pass


def test_realsense_native_resolution_in_millimetres_is_a_copy(fake_rs):
    fake = fake_rs(depth_units_m=0.001)
    with RealSenseSource() as src:
        (frame,) = _take(src, 1)
    assert src.intrinsics == src.native_intrinsics and frame.depth_mm.shape == (480, 640)
    np.testing.assert_array_equal(frame.depth_mm, fake.frames_mm[0])
    assert not np.shares_memory(frame.depth_mm, fake.frames_mm[0])


def test_synthetic_source_chains_sequences(monkeypatch):
    """Against the generator's API (``class_names``, ``generate_sequence``) with a stand-in module."""
    import types

    from kerasdance.data.types import Sequence
    from kerasdance_edge.sources import SyntheticSource

    calls = []

    def generate_sequence(set_name, label, subject, episode, seed=0):
        calls.append((set_name, label, subject, episode, seed))
        return Sequence(f"s{label}", person_depth(5, seed=label), None, label, subject, episode, KINECT_V1)

    fake = types.SimpleNamespace(class_names=lambda set_name: ("a", "b", "c"), generate_sequence=generate_sequence)
    import kerasdance.data

    monkeypatch.setitem(sys.modules, "kerasdance.data.synthetic", fake)
    monkeypatch.setattr(kerasdance.data, "synthetic", fake, raising=False)  # once the real one was imported
    src = SyntheticSource("dance11", seed=3, loop=False)
    with src:
        frames = list(src.frames())
    assert len(frames) == 15 and [f.index for f in frames] == list(range(15))
    assert [c[1] for c in calls] == [0, 1, 2] and all(c[0] == "dance11" and c[4] == 3 for c in calls)
    assert src.current_move == "c" and src.intrinsics == KINECT_V1
    looping = SyntheticSource("dance11", loop=True)
    with looping:
        assert len(_take(looping, 40)) == 40  # goes on past the last class


# --- OAK-D through a fake depthai (the v3 API names: Pipeline(device), node.Camera.build, StereoDepth.build, ...) ---
class FakeDepthAI(types.ModuleType):
    """A module-like stand-in for ``depthai`` 3: an OAK-D whose depth queue delivers ``person_depth`` frames.

    ``unplug_after``: after this many delivered frames the queue raises ``MessageQueue.QueueException`` (as a
    closed queue does) and ``dai.Device()`` fails ``failed_starts`` times (RuntimeError) before the camera is back.
    ``with_transformation``: frames carry a valid ``ImgTransformation`` (else the calibration is used).
    """

    K_FRAME = ((500.0, 0.0, 320.0), (0.0, 501.0, 241.0), (0.0, 0.0, 1.0))
    K_CALIB = ((450.0, 0.0, 322.0), (0.0, 451.0, 238.0), (0.0, 0.0, 1.0))

    def __init__(self, unplug_after=None, failed_starts=0, with_transformation=True, platform="RVC2"):
        super().__init__("depthai")
        self.__version__ = "3.12.0"
        self.unplug_after, self.failed_starts = unplug_after, failed_starts
        self.with_transformation = with_transformation
        self.delivered, self.devices, self.closed_devices, self.stopped = 0, [], 0, 0
        self.unplugged = False
        self.calls: list = []
        self.frames_mm: np.ndarray | None = None
        fake = self

        class QueueException(Exception):
            pass

        self.MessageQueue = type("MessageQueue", (), {"QueueException": QueueException})
        self.CameraBoardSocket = types.SimpleNamespace(CAM_A="CAM_A", CAM_B="CAM_B", CAM_C="CAM_C")
        self.Platform = types.SimpleNamespace(RVC2="RVC2", RVC4="RVC4")
        self.StereoDepthConfig = types.SimpleNamespace(AlgorithmControl=types.SimpleNamespace(
            DepthAlign=types.SimpleNamespace(RECTIFIED_LEFT="RECTIFIED_LEFT", CENTER="CENTER")))

        class DeviceInfo:
            def __init__(self, name):
                self.name = name

        class Device:
            def __init__(self, info=None):
                if fake.unplugged and fake.failed_starts > 0:
                    fake.failed_starts -= 1
                    raise RuntimeError("No available devices")
                fake.unplugged = False
                fake.devices.append(info.name if info is not None else None)

            def setMaxReconnectionAttempts(self, n):
                fake.calls.append(("max_reconnection_attempts", n))

            def getPlatform(self):
                return platform

            def readCalibration(self):
                def intrinsics(socket, w, h):
                    fake.calls.append(("calibration", socket, w, h))
                    return [list(r) for r in FakeDepthAI.K_CALIB]

                return types.SimpleNamespace(getCameraIntrinsics=intrinsics)

            def close(self):
                fake.closed_devices += 1

        class Output:
            def __init__(self, name):
                self.name = name

            def link(self, other):
                fake.calls.append(("link", self.name, other))

            def createOutputQueue(self, maxSize=16, blocking=False):
                fake.calls.append(("queue", self.name, maxSize, blocking))
                return Queue(self.name)

        class Camera:
            def build(self, socket, sensorFps=None):
                self.socket = socket
                fake.calls.append(("camera", socket, sensorFps))
                return self

            def requestOutput(self, size, fps=None):
                fake.calls.append(("output", self.socket, tuple(size), fps))
                return Output(f"{self.socket}.out")

        class StereoDepth:
            inputAlignTo = "stereo.inputAlignTo"

            def __init__(self):
                self.depth = Output("stereo.depth")

            def build(self, left, right):
                fake.calls.append(("stereo", left.name, right.name))
                return self

            def setLeftRightCheck(self, on):
                fake.calls.append(("lr_check", on))

            def setDepthAlign(self, align):
                fake.calls.append(("depth_align", align))

        class ImageAlign:
            input, inputAlignTo = "align.input", "align.inputAlignTo"

            def __init__(self):
                self.outputAligned = Output("align.outputAligned")

        self.node = types.SimpleNamespace(Camera=Camera, StereoDepth=StereoDepth, ImageAlign=ImageAlign)

        class Pipeline:
            def __init__(self, device):
                self.device = device

            def create(self, kind):
                return kind()

            def start(self):
                fake.calls.append(("start",))

            def stop(self):
                fake.stopped += 1

        class Queue:
            def __init__(self, name):
                self.name = name

            def get(self, timeout):
                assert isinstance(timeout, datetime.timedelta)
                if fake.unplug_after is not None and fake.delivered == fake.unplug_after and not fake.unplugged:
                    fake.unplugged, fake.unplug_after = True, None
                if fake.unplugged:
                    raise QueueException("MessageQueue was closed")
                k = fake.delivered
                fake.delivered += 1
                return ImgFrame(fake.frames_mm[k % len(fake.frames_mm)], k)

        class ImgFrame:
            def __init__(self, depth, k):
                self.depth, self.k = depth, k

            def getFrame(self):
                return self.depth

            def getSequenceNum(self):
                return 500 + self.k

            def getTimestamp(self):
                return datetime.timedelta(milliseconds=1000 + 33 * self.k)

            def getTransformation(self):
                h, w = self.depth.shape
                return types.SimpleNamespace(isValid=lambda: fake.with_transformation, getSize=lambda: (w, h),
                                             getIntrinsicMatrix=lambda: [list(r) for r in FakeDepthAI.K_FRAME])

        self.DeviceInfo, self.Device, self.Pipeline = DeviceInfo, Device, Pipeline


@pytest.fixture
def fake_dai(monkeypatch):
    def install(height=480, width=640, **kwargs):
        fake = FakeDepthAI(**kwargs)
        fake.frames_mm = person_depth(4, height, width)
        monkeypatch.setitem(sys.modules, "depthai", fake)
        return fake

    return install


def test_oakd_rgb_aligned_depth_intrinsics_from_the_frame_and_resampling(fake_dai):
    fake = fake_dai()
    with OakDSource(target=KINECT_V1, device_id="1844301011B546F500") as src:
        frames = _take(src, 3)
        assert src.live
    assert fake.devices == ["1844301011B546F500"]
    # The v3 pipeline: mono pair at 640x400 into StereoDepth, left-right check, depth aligned to a 640x480 CAM_A output.
    assert ("output", "CAM_B", (640, 400), 30.0) in fake.calls and ("output", "CAM_C", (640, 400), 30.0) in fake.calls
    assert ("stereo", "CAM_B.out", "CAM_C.out") in fake.calls and ("lr_check", True) in fake.calls
    assert ("output", "CAM_A", (640, 480), 30.0) in fake.calls
    assert ("link", "CAM_A.out", "stereo.inputAlignTo") in fake.calls
    assert ("queue", "stereo.depth", 4, False) in fake.calls and ("max_reconnection_attempts", 0) in fake.calls
    native = Intrinsics(500.0, 501.0, 320.0, 241.0, 640, 480)
    assert src.native_intrinsics == native and src.intrinsics == native.scaled(320, 240)
    assert not any(c[0] == "calibration" for c in fake.calls)
    for k, f in enumerate(frames):
        assert f.depth_mm.shape == (240, 320) and f.depth_mm.dtype == np.uint16
        np.testing.assert_array_equal(f.depth_mm, resample_nearest(fake.frames_mm[k], 240, 320))
        assert f.timestamp_us == (1000 + 33 * k) * 1000
    assert [f.index for f in frames] == [0, 1, 2]
    assert fake.stopped == 1 and fake.closed_devices == 1  # released on exit


def test_oakd_left_aligned_intrinsics_from_the_calibration(fake_dai):
    fake = fake_dai(height=400, width=640, with_transformation=False)
    with OakDSource(640, 400, fps=15, align="left") as src:
        (frame,) = _take(src, 1)
    assert fake.devices == [None]  # the first OAK found
    assert ("output", "CAM_B", (640, 400), 15.0) in fake.calls
    assert ("depth_align", "RECTIFIED_LEFT") in fake.calls
    assert not any(c[0] == "camera" and c[1] == "CAM_A" for c in fake.calls)  # no colour camera needed
    assert ("calibration", "CAM_B", 640, 400) in fake.calls
    assert src.intrinsics == Intrinsics(450.0, 451.0, 322.0, 238.0, 640, 400)
    np.testing.assert_array_equal(frame.depth_mm, fake.frames_mm[0])
    assert not np.shares_memory(frame.depth_mm, fake.frames_mm[0])


def test_oakd_rvc4_aligns_with_an_image_align_node(fake_dai):
    fake = fake_dai(platform="RVC4")
    with OakDSource() as src:
        _take(src, 1)
    assert ("link", "stereo.depth", "align.input") in fake.calls
    assert ("link", "CAM_A.out", "align.inputAlignTo") in fake.calls
    assert ("queue", "align.outputAligned", 4, False) in fake.calls


def test_oakd_unplug_and_replug_reconnects_with_backoff(fake_dai, caplog):
    fake = fake_dai(unplug_after=4, failed_starts=2)
    with OakDSource(backoff_s=0.001, max_backoff_s=0.004) as src:
        frames = _take(src, 10)
    assert src.reconnects == 1
    assert len(fake.devices) == 2  # the first device, then the one found again after two failed attempts
    idx = [f.index for f in frames]
    assert idx == sorted(set(idx)) and len(idx) == 10  # indices keep increasing across the reconnection
    assert any("OAK-D camera lost" in r.getMessage() for r in caplog.records)
    assert any("reconnected" in r.getMessage() for r in caplog.records)


def test_oakd_gives_up_after_reconnect_timeout(fake_dai):
    fake_dai(unplug_after=1, failed_starts=10**6)
    with OakDSource(backoff_s=0.001, max_backoff_s=0.002, reconnect_timeout_s=0.05) as src:
        with pytest.raises(SourceError, match="OAK-D camera did not come back"):
            _take(src, 5)


def test_oakd_errors_say_what_to_do(fake_dai, monkeypatch):
    monkeypatch.setitem(sys.modules, "depthai", None)
    with pytest.raises(SourceError, match=r"pip install kerasdance\[oakd\]"):
        with OakDSource():
            pass
    monkeypatch.setitem(sys.modules, "depthai", types.SimpleNamespace(__version__="2.24.0", node=types.SimpleNamespace(
        MonoCamera=object, StereoDepth=object)))
    with pytest.raises(SourceError, match="depthai 3 API.*2.24.0"):
        with OakDSource():
            pass
    fake = fake_dai(unplug_after=0, failed_starts=1)
    fake.unplugged = True  # no camera plugged in at all
    with pytest.raises(SourceError, match="cannot open the OAK-D camera: No available devices"):
        with OakDSource():
            pass
    with pytest.raises(ValueError, match="align must be one of"):
        OakDSource(align="right")
    with pytest.raises(SourceError, match="needs an open source"):
        next(OakDSource().frames())


def test_cli_source_specs_for_the_cameras(fake_dai):
    import click

    from kerasdance_edge.cli import make_source

    model = types.SimpleNamespace(intrinsics=KINECT_V1)
    oak = make_source("oakd", model, realtime=True)
    assert isinstance(oak, OakDSource) and oak.device_id is None and oak.target == KINECT_V1 and oak.align == "rgb"
    assert make_source("oakd:192.168.1.44", model, realtime=True).device_id == "192.168.1.44"
    assert isinstance(make_source("realsense", model, realtime=True), RealSenseSource)
    with pytest.raises(click.BadParameter, match="oakd:DEVICE"):
        make_source("oakd:", model, realtime=True)
    with pytest.raises(FileNotFoundError, match="nor 'oakd'"):
        make_source("kinect", model, realtime=True)
