"""kerasdance_edge.recorder: `track --record` writes a generic-layout dataset in segments, off the tracker's thread."""

import json
import shutil
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from edge_fixtures import ArraySource, FaultySource, person_depth, tiny_model, write_bin  # noqa: F401

from kerasdance.data.dataset import Dataset
from kerasdance.data.inspect import inspect
from kerasdance.errors import DataFormatError
from kerasdance_edge.recorder import Recorder, RecorderBehind, RecorderError
from kerasdance_edge.tracker import NO_PERSON, TRACKING, WARMUP, Faults, TrackResult, run

CLASSES = ("sway", "spin", "jump")


class StubTracker:
    """A scripted tracker: joints from the frame index, nobody in every 10th frame, moves in turn from frame 3."""

    def __init__(self):
        self.faults = Faults()

    def bind(self, source):
        self.fps = source.fps

    @staticmethod
    def joints(i: int) -> np.ndarray:
        return (np.arange(60, dtype=np.float32).reshape(20, 3) / 100 + i).astype(np.float32)

    def update(self, frame, arrived_s=None, skipped=0):
        i = frame.index
        if i % 10 == 9:
            return TrackResult(i, frame.timestamp_us, None, "", 0.0, 1.0, NO_PERSON)
        if i < 3:
            return TrackResult(i, frame.timestamp_us, self.joints(i), "", 0.0, 1.0, WARMUP)
        return TrackResult(i, frame.timestamp_us, self.joints(i), CLASSES[(i // 5) % 3], 0.9, 1.0, TRACKING)


def expected_moves(n: int) -> np.ndarray:
    return np.array([-1 if (i % 10 == 9 or i < 3) else (i // 5) % 3 for i in range(n)])


@pytest.fixture(scope="module")
def depth():
    return person_depth(40, seed=1)


def record(out, depth, source=None, **kw):
    rec = Recorder(out, CLASSES, segment_s=1.0, take=kw.pop("take", "show"), **kw)
    stats = run(rec.tap(source or ArraySource(depth, fps=15.0)), StubTracker(), [rec])
    return rec, stats


def load_all(out):
    ds = Dataset.open(out)
    return ds, [ds.load(r) for r in ds.refs]


def test_recording_reads_back_as_a_dataset(depth, tmp_path):
    out = tmp_path / "rec"
    rec, stats = record(out, depth)
    assert stats.frames == 40 and rec.frames_written == 40 and rec.segments_written == 3  # 15 + 15 + 10
    ds, seqs = load_all(out)
    assert ds.layout == "generic" and ds.fps == 15.0 and ds.class_names == CLASSES
    assert [r.name for r in ds.refs] == ["show_0001", "show_0002", "show_0003"]
    assert all(r.label is None for r in ds.refs) and all(s.frame_labels is None for s in seqs)  # unlabelled
    assert (ds.intrinsics.width, ds.intrinsics.height) == (320, 240)
    np.testing.assert_array_equal(np.concatenate([s.depth_mm for s in seqs]), depth)
    joints = np.concatenate([s.joints_m for s in seqs])
    for i in range(40):
        if i % 10 == 9:
            assert np.isnan(joints[i]).all()
        else:
            np.testing.assert_array_equal(joints[i], StubTracker.joints(i))
    with np.load(out / "show_0002.npz") as z:
        assert list(z["frame_index"]) == list(range(15, 30))
        assert list(z["timestamp_us"]) == [int(i * 1e6 / 15) for i in range(15, 30)]
        assert list(z["state"][:5]) == ["tracking"] * 4 + ["no-person"]
        np.testing.assert_array_equal(z["move"], expected_moves(40)[15:30])
        assert z["confidence"].dtype == np.float32 and (z["person"] == -1).all()
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["recording"]["labels"] == "none" and [e["frames"] for e in meta["sequences"]] == [15, 15, 10]
    summary = inspect(ds)
    assert summary["failed"] == [] and summary["num_sequences"] == 3 and summary["unlabelled"] == 3
    assert not list(out.glob(".*tmp"))


def test_a_whole_take_exports_as_one_motion(depth, tmp_path):
    from kerasdance.motion import load_motion

    out = tmp_path / "rec"
    record(out, depth, source=FaultySource(depth, drop={20, 21}, fps=15.0))  # two frames the source lost
    m = load_motion(out)  # the folder's only take, its three segments joined
    assert m.num_frames == 40 and m.fps == 15.0
    assert np.isnan(m.joints_m[[9, 19, 20, 21, 29]]).all()  # nobody there / frames lost
    np.testing.assert_array_equal(m.joints_m[22], StubTracker.joints(22))
    np.testing.assert_allclose(m.time_s[21], 21 / 15, atol=1e-6)
    record(out, depth[:5], take="encore", append=True)
    with pytest.raises(DataFormatError, match="takes encore, show: choose one with --sequence"):
        load_motion(out)
    assert load_motion(out, sequence="encore").num_frames == 5
    assert load_motion(out, sequence="show_0002").num_frames == 15  # one segment as it is: frames 15-31 but 20, 21


def test_tracked_moves_as_frame_labels(depth, tmp_path):
    rec, _ = record(tmp_path / "rec", depth, labels="tracked")
    _, seqs = load_all(tmp_path / "rec")
    np.testing.assert_array_equal(np.concatenate([s.frame_labels for s in seqs]), expected_moves(40))


def test_refuses_a_non_empty_folder_and_appends_a_take(depth, tmp_path):
    out = tmp_path / "rec"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RecorderError, match="not empty.*--record-append"):
        Recorder(out, CLASSES)
    with pytest.raises(RecorderError, match="not a recording"):
        Recorder(out, CLASSES, append=True)
    assert (out / "notes.txt").read_text() == "mine"
    out2 = tmp_path / "rec2"
    record(out2, depth[:20], take="first")
    with pytest.raises(RecorderError, match="other classes"):
        Recorder(out2, ("a", "b"), append=True)
    record(out2, depth[:20], take="second", append=True)
    ds, seqs = load_all(out2)
    assert [r.name for r in ds.refs] == ["first_0001", "first_0002", "second_0001", "second_0002"]
    assert sum(s.num_frames for s in seqs) == 40
    with pytest.raises(RecorderError, match="another camera or frame rate"):  # found once the source is open
        record(out2, depth[:5], take="third", append=True, source=ArraySource(depth[:5], fps=30.0))
    assert len(Dataset.open(out2)) == 4
    rec = Recorder(out2, CLASSES, append=True)  # the default take name never reuses a name
    assert rec.take.startswith("rec_")


def test_interrupted_run_reads_back(depth, tmp_path):
    out = tmp_path / "rec"
    rec, stats = record(out, depth, source=FaultySource(depth, interrupt_at=25, fps=15.0))
    assert stats.interrupted and stats.frames == 25
    _, seqs = load_all(out)
    assert [s.num_frames for s in seqs] == [15, 10]  # Ctrl-C: the last segment written on close
    np.testing.assert_array_equal(np.concatenate([s.depth_mm for s in seqs]), depth[:25])


def _wait(cond, what):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > 60:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def test_a_crash_loses_at_most_the_open_segment(depth, tmp_path):
    """The folder as a crash (no close) leaves it: the segments already written read back."""
    out = tmp_path / "rec"
    rec = Recorder(out, CLASSES, segment_s=1.0, take="show")
    tap = rec.tap(ArraySource(depth, fps=15.0))
    tracker = StubTracker()
    with tap:
        tracker.bind(tap)
        for frame in tap.frames():
            rec.send(tracker.update(frame))
        _wait(lambda: rec._queue.empty() and rec.frames_written == 30, "the writer")  # 10 frames in the open segment
        shutil.copytree(out, tmp_path / "crashed")
    rec.close()
    _, seqs = load_all(tmp_path / "crashed")
    assert [s.num_frames for s in seqs] == [15, 15]
    assert [s.num_frames for s in load_all(out)[1]] == [15, 15, 10]


def test_a_slow_disk_drops_frames_as_faults_not_memory(depth, tmp_path):
    out = tmp_path / "rec"
    rec = Recorder(out, CLASSES, segment_s=0.01, max_queue_s=0.01, take="show")  # 1 frame a file, 2 in the queue
    gate = threading.Event()
    write = rec._write_segment
    rec._write_segment = lambda buf: (gate.wait(60), write(buf))
    tracker = StubTracker()
    tap = rec.tap(ArraySource(depth[:12], fps=15.0))
    dropped = 0
    with tap:
        tracker.bind(tap)
        for frame in tap.frames():
            try:
                rec.send(tracker.update(frame))
            except RecorderBehind:
                dropped += 1
    assert dropped == rec.dropped_frames >= 12 - 3  # the writer holds one, the queue two: the rest are dropped
    gate.set()
    rec.close()
    assert rec.frames_written + rec.dropped_frames == 12 and "dropped" in rec.summary()
    assert sum(s.num_frames for s in load_all(out)[1]) == rec.frames_written


def test_writer_failure_is_reported_and_the_show_goes_on(depth, tmp_path):
    out = tmp_path / "rec"
    rec = Recorder(out, CLASSES, segment_s=1.0, take="show")

    def broken(buf):
        raise OSError(28, "No space left on device")

    rec._write_segment = broken
    stats = run(rec.tap(ArraySource(depth, fps=15.0)), StubTracker(), [rec])
    assert stats.frames == 40 and isinstance(rec.error, OSError)  # the tracker went on
    assert "FAILED" in rec.summary() and "No space left" in rec.summary()
    with pytest.raises(RecorderError, match="the recording stopped: OSError"):  # later frames: sink errors (faults)
        rec.send(TrackResult(40, 0, None, "", 0.0, 0.0, NO_PERSON))


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="labels"):
        Recorder(tmp_path / "a", CLASSES, labels="guess")
    with pytest.raises(RecorderError, match="20 kerasdance joints"):
        Recorder(tmp_path / "a", CLASSES, joint_names=("a",))
    (tmp_path / "f").write_text("x")
    with pytest.raises(RecorderError, match="not a folder"):
        Recorder(tmp_path / "f", CLASSES)
    with pytest.raises(RecorderError, match="not started"):
        Recorder(tmp_path / "b", CLASSES).send(TrackResult(0, 0, None, "", 0.0, 0.0, NO_PERSON))


def test_cli_track_record_inspect_replay_export(tiny_model, depth, tmp_path):  # noqa: F811
    from kerasdance.cli import cli
    from kerasdance.motion import load_motion
    from kerasdance_edge.cli import main

    src = write_bin(tmp_path / "a01_s01_e01_sdepth.bin", depth[:20])
    out = tmp_path / "show"
    args = ["track", "--model", str(tiny_model.path), "--source", str(src), "--fast", "--record", str(out),
            "--record-segment-s", "1"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert f"recorded 20 frames in 2 files to {out}" in res.stderr
    ds = Dataset.open(out)
    assert [r.name.rsplit("_", 1)[1] for r in ds.refs] == ["0001", "0002"]
    seq = ds.load(ds.refs[0])
    assert seq.num_frames == 15 and seq.joints_m.shape == (15, 20, 3)
    res = CliRunner().invoke(main, args)  # the folder is no longer empty
    assert res.exit_code == 1 and "--record-append" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, args + ["--record-append", "--record-labels", "tracked"])
    assert res.exit_code == 0, res.output
    assert len(Dataset.open(out)) == 4
    res = CliRunner().invoke(cli, ["data", "inspect", str(out)])
    assert res.exit_code == 0, res.output
    first = out / f"{ds.refs[0].name}.npz"
    res = CliRunner().invoke(main, ["track", "--model", str(tiny_model.path), "--source", str(first), "--fast",
                                    "--jsonl", "-"])
    assert res.exit_code == 0, res.output
    assert len(res.stdout.splitlines()) == 15
    m = load_motion(first)
    assert m.num_frames == 15 and m.fps == 15.0
