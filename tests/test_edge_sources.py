"""Depth sources: recordings (.bin written by hand, .npz), synthetic dancers, RealSense through a fake driver."""

import json
import struct
import sys
import time

import numpy as np
import pytest
from edge_fixtures import FakeRealSense, person_depth, write_bin

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.errors import DataFormatError
from kerasdance_edge.sources import DepthSource, Frame, RealSenseSource, RecordingSource, SourceError, resample_nearest


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
    assert src.intrinsics == intr and len(src) == 3
    with src:
        assert next(iter(src.frames())).depth_mm.shape == (480, 640)


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
