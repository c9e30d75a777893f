"""Tracker, latest-frame queue and the run loop, driven by FaultySource and friends."""

import _thread
import os
import sys
import threading
import time
import types

import numpy as np
import pytest
from edge_fixtures import ArraySource, FakeRealSense, FaultySource, RecordingSink, person_depth, tiny_model  # noqa: F401

from kerasdance.camera import KINECT_V1
from kerasdance.data import preprocess as pp
from kerasdance_edge.interpreter import EdgeModel
from kerasdance_edge.sinks import JsonlSink
from kerasdance_edge.smoothing import OneEuroFilter
from kerasdance_edge.sources import Frame, RealSenseSource
from kerasdance_edge.tracker import LatestFrameQueue, Tracker, run


@pytest.fixture(scope="module")
def model(tiny_model):  # noqa: F811
    return EdgeModel(tiny_model.path)


@pytest.fixture(scope="module")
def depth():
    return person_depth(40)


def test_warmup_then_tracking_matches_the_shared_preprocessing(model, depth):
    tracker = Tracker(model)
    assert tracker.window_frames == 8 and tracker.warmup_frames == 8  # T / 15 s at 15 fps
    results = [tracker.update(Frame(d, i * 66_667, i)) for i, d in enumerate(depth[:12])]
    assert [r.state for r in results] == ["warmup"] * 7 + ["tracking"] * 5
    # Key-points from the first frame (the window made of the frames there are); the move once it is full.
    assert all(r.joints_m is not None and r.joints_m.shape == (20, 3) and r.move == "" and r.confidence == 0
               for r in results[:7])
    assert all(r.joints_ready and not r.move_ready for r in results[:7])
    assert all(r.joints_ready and r.move_ready for r in results[7:])
    # The newest frame's result, recomputed by hand from the shared preprocessing.
    cfg = model.data_config
    window = depth[4:12]
    stats = np.array([pp.frame_stats(d, cfg) for d in window])
    crop = pp.crop_from_stats(stats, KINECT_V1, cfg)
    crops = pp.crop_frames(window[pp.resample_indices(8, 8)], crop, cfg).astype(pp.CROP_DTYPE)  # as training's cache
    kp, probs = model.predict(pp.add_motion(crops, cfg))
    last = results[-1]
    np.testing.assert_allclose(last.joints_m, pp.crop_to_camera(kp[-1], crop, KINECT_V1, cfg), atol=1e-5)
    assert last.move == model.class_names[int(np.argmax(probs))]
    assert last.confidence == pytest.approx(float(probs.max()))
    assert last.joints_m.shape == (20, 3) and np.all(np.isfinite(last.joints_m))
    assert last.latency_ms > 0 and last.index == 11 and last.timestamp_us == 11 * 66_667


def test_first_frame_gives_keypoints_from_that_frame_alone(model, depth):
    tracker = Tracker(model)
    first = tracker.update(Frame(depth[5], 0, 0))
    assert first.state == "warmup" and first.joints_ready and not first.move_ready
    cfg = model.data_config
    crop = pp.crop_from_stats(np.array([pp.frame_stats(depth[5], cfg)]), KINECT_V1, cfg)
    x = pp.make_window(depth[5:6], np.zeros(cfg.frames, np.int64), cfg, crop=crop)  # that frame, T times
    assert np.all(x[..., 1] == 0)  # no motion yet
    kp, _ = model.predict(x)
    np.testing.assert_allclose(first.joints_m, pp.crop_to_camera(kp[-1], crop, KINECT_V1, cfg), atol=1e-5)
    # nobody in the next frame: no key-points, and none invented
    empty = tracker.update(Frame(np.zeros_like(depth[0]), 66_667, 1))
    assert empty.state == "no-person" and not empty.joints_ready


def test_the_device_window_is_the_training_window(model, depth, tmp_path):
    """A recording of exactly T frames: the tracker's window at its last frame is the evaluation window that
    training's pipeline (``prepare`` -> cache -> ``WindowSampler``) builds for the same recording, value for value."""
    from kerasdance.data import pipeline
    from kerasdance.data.dataset import Dataset, write_generic
    from kerasdance.data.types import Sequence

    cfg = model.data_config
    rec = depth[:cfg.frames]
    write_generic(tmp_path, [Sequence("take", rec, None, label=0)], model.class_names, KINECT_V1)
    ds = Dataset.open(tmp_path)
    train_x = pipeline.WindowSampler(pipeline.prepare(ds, ds.refs, cfg), cfg, augment=None).eval_windows()["x"][0]
    seen = []
    tracker = Tracker(model)
    tracker.model = types.SimpleNamespace(predict=lambda x: (seen.append(x), model.predict(x))[1],
                                          class_names=model.class_names)
    results = [tracker.update(Frame(d, i * 66_667, i)) for i, d in enumerate(rec)]
    assert results[-1].state == "tracking" and len(seen) == cfg.frames  # one window per frame, warm-up included
    assert seen[-1].dtype == train_x.dtype == np.float32
    np.testing.assert_array_equal(seen[-1], train_x)


def test_window_is_a_span_of_time_when_frames_are_skipped(model, depth):
    """Only every third frame reaches the tracker (a slow device): the window still covers T / 15 s, not 3x."""
    tracker = Tracker(model)
    results = [tracker.update(Frame(depth[i], i * 66_667, i), skipped=2 if i else 0) for i in range(0, 31, 3)]
    assert results[-1].state == "tracking" and tracker.faults.dropped_frames == 0
    cfg = model.data_config
    window = depth[[24, 27, 30]]  # the frames of the last (8 - 1) / 15 s
    crop = pp.crop_from_stats(np.array([pp.frame_stats(d, cfg) for d in window]), KINECT_V1, cfg)
    pick = np.round(np.linspace(0, 2, 8)).astype(int)  # nearest to 8 evenly spaced times
    kp, _ = model.predict(pp.add_motion(pp.crop_frames(window[pick], crop, cfg).astype(pp.CROP_DTYPE), cfg))
    np.testing.assert_allclose(results[-1].joints_m, pp.crop_to_camera(kp[-1], crop, KINECT_V1, cfg), atol=1e-5)


def test_window_follows_fps_and_smoothing_applies(model, depth):
    tracker = Tracker(model, window_seconds=1.0, smoothing=OneEuroFilter(min_cutoff=0.5, beta=0.0), fps=30.0)
    assert tracker.window_frames == 30 and tracker.warmup_frames == 8
    raw = Tracker(model, window_seconds=1.0, fps=30.0)
    out = [(tracker.update(Frame(d, i * 33_333, i)), raw.update(Frame(d, i * 33_333, i))) for i, d in enumerate(depth)]
    assert out[7][0].state == "tracking"
    smooth, plain = out[-1]
    assert np.all(np.isfinite(smooth.joints_m)) and not np.allclose(smooth.joints_m, plain.joints_m)
    # Smoothing reduces frame-to-frame jitter.
    jit = lambda k: np.mean([np.abs(out[i][k].joints_m - out[i - 1][k].joints_m).mean() for i in range(9, 40)])  # noqa: E731
    assert jit(0) < jit(1)


def test_tracker_refuses_a_skeleton_model():
    with pytest.raises(ValueError, match="depth models"):
        Tracker(types.SimpleNamespace(input_mode="skeleton", path="skel.tflite"))


def test_faults_are_counted_logged_and_survived(model, depth, caplog):
    src = FaultySource(depth, drop={10, 11}, wrong_size={12, 20}, garbage={13}, zero={15, 16})
    sink = RecordingSink()
    stats = run(src, Tracker(model), [sink])
    f = stats.faults
    assert f.dropped_frames == 2 and f.wrong_size == 3 and f.skipped_frames == 1 and f.empty_frames == 2
    by_index = {r.index: r for r in sink.results}
    assert 13 not in by_index and 10 not in by_index  # skipped garbage, dropped frames
    assert by_index[12].state == "tracking"  # 640x480 resampled to 320x240
    assert by_index[15].state == by_index[16].state == "no-person" and by_index[15].joints_m is None
    assert by_index[39].state == "tracking"  # recovered
    assert len(sink.results) == 40 - 3 and stats.frames == 37
    assert src.closed and sink.closed
    text = caplog.text
    assert "dropped" in text and "resampled" in text and "skipped" in text and "all zero" in text


def test_frame_of_another_aspect_ratio_is_skipped(model, depth):
    tracker = Tracker(model)
    assert tracker.update(Frame(np.full((100, 100), 2500, np.uint16), 0, 0)) is None
    assert tracker.faults.skipped_frames == 1 and tracker.faults.wrong_size == 1


def test_sink_errors_are_counted_and_the_show_goes_on(model, depth):
    failing = RecordingSink(fail=5)
    r, w = os.pipe()
    os.close(r)  # the receiver is gone: writes raise BrokenPipeError
    broken = JsonlSink(os.fdopen(w, "w"))
    good = RecordingSink()
    stats = run(ArraySource(depth[:20]), Tracker(model), [failing, broken, good])
    assert stats.faults.sink_errors == 5 + 20
    assert len(good.results) == 20 and len(failing.results) == 15


@pytest.mark.parametrize("live", [False, True])
def test_keyboard_interrupt_from_the_source_stops_cleanly(model, depth, live):
    src = FaultySource(depth, interrupt_at=12)
    src.live = live
    sink = RecordingSink()
    stats = run(src, Tracker(model), [sink])
    assert stats.interrupted and src.closed and sink.closed
    assert 0 < len(sink.results) <= 12


def test_real_ctrl_c_during_a_live_run_stops_cleanly(model):
    import signal

    # Another library imported earlier in the session may have replaced Python's SIGINT handler, which
    # _thread.interrupt_main() goes through: Ctrl-C must raise KeyboardInterrupt here, as in a plain process.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _run_and_interrupt(model)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_and_interrupt(model):
    n = 600
    src = FaultySource(person_depth(n), delay_s=0.02)
    src.live = True
    sink = RecordingSink()

    def interrupt_once_tracking():  # not a fixed delay: a loaded machine must not make the test flaky
        deadline = time.time() + 60
        while not sink.results and time.time() < deadline:
            time.sleep(0.01)
        _thread.interrupt_main()

    timer = threading.Thread(target=interrupt_once_tracking)
    timer.start()
    try:
        stats = run(src, Tracker(model), [sink])
    finally:
        timer.join()
    assert stats.interrupted and src.closed and sink.closed and 0 < len(sink.results) < n


def test_ctrl_c_while_sending_stops_cleanly(model, depth):
    src = ArraySource(depth)
    sink = RecordingSink(interrupt_after=10)
    stats = run(src, Tracker(model), [sink])
    assert stats.interrupted and src.closed and sink.closed and len(sink.results) == 10


def test_latest_frame_queue():
    q = LatestFrameQueue()
    assert q.put(1) and q.put(2) and q.put(3)
    assert q.get() == 3 and q.dropped == 2
    with pytest.raises(TimeoutError):
        q.get(timeout=0.05)
    q.put(4)
    q.close()
    assert q.get() == 4 and q.get() is None and not q.put(5)


def test_live_source_latest_frame_wins_so_latency_stays_bounded(model):
    src = FaultySource(person_depth(120))
    src.live = True

    class SlowSink(RecordingSink):
        def send(self, result):
            time.sleep(0.01)
            super().send(result)

    sink = SlowSink()
    stats = run(src, Tracker(model), [sink])
    assert stats.faults.stale_frames > 0
    assert stats.frames + stats.faults.stale_frames == 120  # every frame was either tracked or skipped as stale
    assert stats.faults.dropped_frames == 0  # frames the queue skipped are not frames the source dropped
    assert max(stats.latencies_ms) < 200


def test_camera_unplugged_and_replugged_during_a_run(model, monkeypatch):
    fake = FakeRealSense(unplug_after=12, failed_starts=2)
    monkeypatch.setitem(sys.modules, "pyrealsense2", fake)
    src = RealSenseSource(target=model.intrinsics, backoff_s=0.001, max_backoff_s=0.004)
    sink = RecordingSink()
    stats = run(src, Tracker(model), [sink], max_frames=25)
    assert stats.faults.reconnects == 1 and stats.frames == 25
    assert sink.results[-1].state == "tracking"
    assert fake.stops >= 2  # stopped when lost and when closed
