"""Continuous synthetic performances with per-frame labels, and fps / frame_labels in the generic layout."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.cli import cli
from kerasdance.data import msr
from kerasdance.data import synthetic as S
from kerasdance.data.dataset import Dataset, write_generic
from kerasdance.data.types import Sequence
from kerasdance.errors import DataFormatError

SMALL = KINECT_V1.scaled(80, 60)  # the same camera at a quarter of the resolution: fast to render


def runs(labels):
    """``[(label, start, stop), ...]`` of the runs of equal values."""
    change = np.flatnonzero(np.diff(labels)) + 1
    starts, stops = np.r_[0, change], np.r_[change, len(labels)]
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops)]


@pytest.mark.parametrize("set_name, subject", [("dance11", 3), ("msr20", 4)])  # msr20 subject 4: left-handed
def test_frame_labels_switch_where_the_moves_do(set_name, subject):
    seq = S.generate_performance(set_name, subject, 1, seed=2, moves=3, intrinsics=SMALL)
    segs = S.performance_segments(set_name, subject, 1, seed=2, moves=3)
    fl = seq.frame_labels
    assert fl.dtype == np.int64 and fl.shape == (seq.num_frames,)
    assert seq.num_frames == round(segs[-1].end_s * 15) and seq.joints_m.shape == (seq.num_frames, 20, 3)
    expected = np.full(seq.num_frames, -1)
    for seg in segs:
        assert seg.end_s > seg.start_s and (seg.label >= 0) == (seg.kind == "move")
        expected[round(seg.start_s * 15) : round(seg.end_s * 15)] = seg.label
    np.testing.assert_array_equal(fl, expected)
    moves = [seg for seg in segs if seg.kind == "move"]
    assert len(moves) == 3 and len({m.label for m in moves}) == 3
    labelled = [r for r in runs(fl) if r[0] >= 0]
    assert [r[0] for r in labelled] == [m.label for m in moves]  # one run per move, in the generator's order
    for (_, a, b), move in zip(labelled, moves):
        assert b - a >= 2 and abs((b - a) - (move.end_s - move.start_s) * 15) <= 1
        assert fl[a - 1] == -1 and fl[b] == -1  # a transition before and after every move
    kinds = [seg.kind for seg in segs]
    for i, kind in enumerate(kinds):
        if kind == "move":
            assert kinds[i - 1] == kinds[i + 1] == "transition"
    assert kinds[0] == kinds[-1] == "pause"  # the take starts and ends standing
    people = (seq.depth_mm > 0).reshape(seq.num_frames, -1).sum(axis=1)
    assert (people[seq.depth_valid] > 100).all() and seq.depth_valid.mean() > 0.95
    assert (seq.name, seq.label, seq.subject, seq.episode, seq.fps) == (f"perf_s{subject:02d}_t01", None, subject,
                                                                       1, 15.0)


def test_same_arguments_same_take_and_other_takes_differ():
    a = S.generate_performance("dance11", 2, 1, seed=1, moves=2, intrinsics=SMALL)
    b = S.generate_performance("dance11", 2, 1, seed=1, moves=2, intrinsics=SMALL)
    np.testing.assert_array_equal(a.depth_mm, b.depth_mm)
    np.testing.assert_array_equal(a.joints_m, b.joints_m)
    np.testing.assert_array_equal(a.frame_labels, b.frame_labels)
    c = S.performance_segments("dance11", 2, 2, seed=1, moves=2)
    assert c != S.performance_segments("dance11", 2, 1, seed=1, moves=2)
    with pytest.raises(ValueError, match="fps"):
        S.generate_performance("dance11", 2, 1, fps=0.0)
    with pytest.raises(ValueError, match="moves"):
        S.generate_performance("dance11", 2, 1, moves=0)
    with pytest.raises(ValueError, match="Unknown synthetic set"):
        S.generate_performance("ballet", 2, 1)


def test_motion_is_timed_in_seconds():
    a = S.generate_performance("dance11", 5, 2, moves=2, fps=15, intrinsics=SMALL)
    b = S.generate_performance("dance11", 5, 2, moves=2, fps=30, intrinsics=SMALL)
    assert abs(b.num_frames - 2 * a.num_frames) <= 1 and b.fps == 30.0
    ra, rb = runs(a.frame_labels), runs(b.frame_labels)
    assert [r[0] for r in ra] == [r[0] for r in rb]
    assert all(abs((r2[2] - r2[1]) - 2 * (r1[2] - r1[1])) <= 2 for r1, r2 in zip(ra, rb))
    n = min(a.num_frames, (b.num_frames + 1) // 2)
    dist = np.linalg.norm(b.joints_m[::2][:n] - a.joints_m[:n], axis=-1)  # the same instants
    assert np.nanmedian(dist) < 0.045  # tracker jitter (1.2-2.4 cm per axis, twice) apart, not motion apart


def test_write_performances_round_trip(tmp_path):
    calls = []
    n = S.write_performances("dance11", tmp_path, seed=3, subjects=[2], takes=2, fps=10, moves=1,
                             progress=lambda i, k: calls.append((i, k)), intrinsics=SMALL)
    assert n == 2 and calls == [(0, 2), (1, 2)]
    meta = json.loads((tmp_path / "dataset.json").read_text())
    assert meta["fps"] == 10.0 and meta["version"] == 1 and meta["class_names"] == list(S.class_names("dance11"))
    assert meta["sequences"][0] == {"file": "perf_s02_t01.npz", "label": None, "subject": 2, "episode": 1}
    ds = Dataset.open(tmp_path)
    assert ds.layout == "generic" and ds.fps == 10.0 and ds.intrinsics == SMALL
    assert [(r.name, r.label, r.subject, r.episode) for r in ds] == [("perf_s02_t01", None, 2, 1),
                                                                     ("perf_s02_t02", None, 2, 2)]
    for r in ds:
        got = ds.load(r)
        want = S.generate_performance("dance11", 2, r.episode, seed=3, fps=10, moves=1, intrinsics=SMALL)
        np.testing.assert_array_equal(got.depth_mm, want.depth_mm)
        np.testing.assert_array_equal(got.joints_m, want.joints_m)
        np.testing.assert_array_equal(got.frame_labels, want.frame_labels)
        assert got.frame_labels.dtype == np.int64 and got.fps == 10.0 and (got.frame_labels >= 0).any()


H, W = 6, 8
CAM = Intrinsics(10.0, 10.0, W / 2, H / 2, W, H)


def tiny_folder(root, frame_labels=None, fps=15.0):
    depth = np.full((5, H, W), 2000, np.uint16)
    seq = Sequence("take", depth, None, None, 1, 1, CAM, fps=fps, frame_labels=frame_labels)
    return write_generic(root, [seq], ["plie", "releve"], CAM, fps=fps)


@pytest.mark.parametrize("bad, match", [
    (np.array([0, 0, 1, 1]), "4 frames but the sequence has 5"),
    (np.array([0.0, 0, 1, 1, 1]), "integer"),
    (np.zeros((5, 1), np.int64), "integer"),
    (np.array([0, 0, 2, 1, -1]), r"-1 \.\. 1"),
    (np.array([0, -2, 1, 1, -1]), r"-1 \.\. 1"),
])  # fmt: skip
def test_invalid_frame_labels_name_the_file(tmp_path, bad, match):
    tiny_folder(tmp_path, np.array([0, 0, -1, 1, 1]))
    ds = Dataset.open(tmp_path)
    np.testing.assert_array_equal(ds.load(ds.refs[0]).frame_labels, [0, 0, -1, 1, 1])
    np.savez(tmp_path / "take.npz", depth_mm=np.full((5, H, W), 2000, np.uint16), frame_labels=bad)
    with pytest.raises(DataFormatError, match=match) as e:
        ds.load(ds.refs[0])
    assert "take.npz" in str(e.value) and "frame_labels" in str(e.value)
    with pytest.raises(ValueError, match=match):  # and write_generic refuses to write them
        tiny_folder(tmp_path / "again", bad)


def test_old_dataset_json_without_fps_opens_at_15(tmp_path):
    tiny_folder(tmp_path)
    meta = json.loads((tmp_path / "dataset.json").read_text())
    del meta["fps"]
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    ds = Dataset.open(tmp_path)
    seq = ds.load(ds.refs[0])
    assert ds.fps == 15.0 and seq.fps == 15.0 and seq.frame_labels is None
    for bad in (0, -30, "30", True, None, float("inf")):
        meta["fps"] = bad
        (tmp_path / "dataset.json").write_text(json.dumps(meta))
        with pytest.raises(DataFormatError, match="fps") as e:
            Dataset.open(tmp_path)
        assert "dataset.json" in str(e.value)
    meta["fps"] = 30
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    assert Dataset.open(tmp_path).fps == 30.0
    with pytest.raises(ValueError, match="frame rate"):  # a sequence at another rate than the folder's
        write_generic(tmp_path / "x", [Sequence("s", np.ones((2, H, W), np.uint16), intrinsics=CAM, fps=30.0)],
                      ["a"], CAM, fps=15.0)
    msr.write_msr_sequence(tmp_path / "msr", Sequence("a01_s01_e01", np.ones((2, H, W), np.uint16), None, 0, 1, 1))
    ds = Dataset.open(tmp_path / "msr")
    assert ds.fps == 15.0 and ds.load(ds.refs[0]).fps == 15.0


def test_cli_synth_continuous_and_inspect(tmp_path):
    runner = CliRunner()
    out = tmp_path / "perf"
    res = runner.invoke(cli, ["synth", "--set", "dance11", "--continuous", "--out", str(out), "--fps", "5",
                              "--takes", "1", "--moves", "1"])
    assert res.exit_code == 0, res.output
    assert "wrote 9 performances" in res.output
    ds = Dataset.open(out)
    assert ds.layout == "generic" and ds.fps == 5.0 and len(ds) == 9
    assert ds.load(ds.refs[0]).frame_labels is not None
    res = runner.invoke(cli, ["data", "inspect", str(out)])
    assert res.exit_code == 0, res.output
    # a recording with per-frame labels is not "unlabelled": its moves are counted per class
    assert "continuous 9 recordings with per-frame labels at 5 fps" in res.output and "(unlabelled)" not in res.output
    from kerasdance.data.inspect import inspect

    summary = inspect(ds)
    moves = summary["continuous"]["moves_per_class"]
    want = [int(lab) for k in range(9) for lab, *_ in runs(ds.load(ds.refs[k]).frame_labels) if lab >= 0]
    assert sum(moves.values()) == len(want) == 9 and summary["unlabelled"] == 0
    assert moves == {c: want.count(i) for i, c in enumerate(ds.class_names)}
    res = runner.invoke(cli, ["synth", "--out", str(tmp_path / "clips"), "--fps", "30"])
    assert res.exit_code == 2 and "--continuous" in res.output
    res = runner.invoke(cli, ["synth", "-h"])
    assert "--continuous" in res.output and "--moves" in res.output
