"""Dataset index (MSR and generic layouts), protocols, labelled fraction, conversion and inspect."""

import json
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.data import msr
from kerasdance.data.dataset import Dataset, SequenceRef, convert_msr_to_generic, write_generic
from kerasdance.data.inspect import format_inspect, inspect
from kerasdance.data.splits import labelled_mask, split
from kerasdance.data.types import Sequence
from kerasdance.errors import DataFormatError
from kerasdance.skeleton import JOINT_NAMES

H, W = 6, 8


def make_seq(action=1, subject=1, episode=1, frames=4, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.integers(500, 4000, (frames, H, W)).astype(np.uint16)
    joints = np.stack([rng.uniform(-0.8, 0.8, (frames, 20)), rng.uniform(-0.8, 0.8, (frames, 20)),
                       rng.uniform(1.5, 3.5, (frames, 20))], axis=-1).astype(np.float32)
    return Sequence(msr.format_name(action, subject, episode, ""), depth, joints, label=action - 1,
                    subject=subject, episode=episode)


def msr_folder(root, actions=(1, 2, 6), subjects=(1, 2, 3), frames=4):
    for i, (a, s) in enumerate((a, s) for a in actions for s in subjects):
        msr.write_msr_sequence(root, make_seq(a, s, 1, frames, seed=i))
    return root


def ref(label, subject=1, name="x"):
    return SequenceRef(name, label, subject, 1, ("skeleton",), {})


# --- MSR layout ----------------------------------------------------------------------------------------------
def test_open_msr_folder(tmp_path):
    ds = Dataset.open(msr_folder(tmp_path))
    assert ds.layout == "msr" and len(ds) == 9 and ds.class_names == msr.MSR_ACTIONS
    assert ds.joint_names == JOINT_NAMES and ds.intrinsics == KINECT_V1
    assert [r.name for r in ds] == sorted(r.name for r in ds.refs)
    r = ds.refs[0]
    assert (r.name, r.label, r.subject, r.episode, r.modalities) == ("a01_s01_e01", 0, 1, 1, ("depth", "skeleton"))
    assert set(r.paths) == set(msr.KIND_SUFFIXES)
    seq = ds.load(ds.refs[-1])
    assert seq.name == "a06_s03_e01" and seq.label == 5 and seq.depth_mm.shape == (4, H, W)


def test_open_msr_subfolders_one_level_down(tmp_path):
    msr_folder(tmp_path / "all", actions=(3,), subjects=(1, 2))
    (tmp_path / "root" / "Depth").mkdir(parents=True)
    (tmp_path / "root" / "Skeleton").mkdir()
    for p in (tmp_path / "all").iterdir():
        sub = "Depth" if p.name.endswith(".bin") else "Skeleton"
        p.rename(tmp_path / "root" / sub / p.name)
    ds = Dataset.open(tmp_path / "root")
    assert len(ds) == 2 and all(r.modalities == ("depth", "skeleton") for r in ds)
    assert ds.load(ds.refs[1]).joints_m.shape == (4, 20, 3)


def test_classes_txt_and_labels_beyond_classes(tmp_path):
    msr_folder(tmp_path, actions=(1, 2), subjects=(1,))
    (tmp_path / "classes.txt").write_text("plie\r\n\nrelevé\n")
    ds = Dataset.open(tmp_path)
    assert ds.class_names == ("plie", "relevé") and len(ds) == 2
    msr.write_msr_sequence(tmp_path, make_seq(action=3))
    with pytest.raises(DataFormatError, match="action 3 .*2 class names"):
        Dataset.open(tmp_path)


def test_unparseable_names_are_skipped_with_a_warning(tmp_path, caplog):
    msr_folder(tmp_path, actions=(1,), subjects=(1,))
    (tmp_path / "notes.txt").write_text("hello")
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        ds = Dataset.open(tmp_path)
    assert len(ds) == 1 and "notes.txt" in caplog.text


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Dataset.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="empty"):
        Dataset.open(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.md").write_text("x")
    (tmp_path / "junk" / "a1_s1_e1_sdepth.bin").write_bytes(b"x")
    with pytest.raises(DataFormatError, match="junk.*2 files"):
        Dataset.open(tmp_path / "junk")


# --- protocols -----------------------------------------------------------------------------------------------
def all_msr_refs():
    return [ref(a - 1, s, msr.format_name(a, s, 1, "")) for a in range(1, 21) for s in range(1, 11)]


def test_cross_subject_split():
    refs = all_msr_refs() + [ref(0, None, "unknown_subject")]
    sp = split(refs, "cross-subject", msr.MSR_ACTIONS)
    train_s = {r.subject for r in sp.train}
    test_s = {r.subject for r in sp.test}
    assert train_s == {1, 3, 5, 7, 9, None} and test_s == {2, 4, 6, 8, 10}
    assert len(sp.train) + len(sp.test) == len(refs) and sp.class_names == msr.MSR_ACTIONS


@pytest.mark.parametrize("protocol, actions", [("as1", msr.AS1), ("as2", msr.AS2), ("AS3", msr.AS3)])
def test_action_set_splits(protocol, actions):
    refs = all_msr_refs() + [ref(None, 1, "unlabelled")]
    sp = split(refs, protocol, msr.MSR_ACTIONS)
    assert len(sp.class_names) == 8
    assert sp.class_names == tuple(msr.MSR_ACTIONS[a - 1] for a in actions)
    both = sp.train + sp.test
    assert len(both) == 8 * 10 and {r.label for r in both} == set(range(8))
    assert not {r.subject for r in sp.train} & {r.subject for r in sp.test}
    for r in both:  # labels re-indexed, names kept: aXX is the action
        assert actions[r.label] == int(r.name[1:3])
    assert refs[0].label == 0  # originals untouched


def test_split_errors():
    with pytest.raises(ValueError, match="cross-subject.*as1"):
        split([], "cross-view", msr.MSR_ACTIONS)
    with pytest.raises(ValueError, match="20 MSR"):
        split([ref(0)], "as1", ("a", "b"))


# --- labelled fraction ---------------------------------------------------------------------------------------
def test_labelled_mask_stratified_and_deterministic():
    labels = [0] * 10 + [1] * 5 + [2] * 1 + [None, -1, None]
    m = labelled_mask(labels, 0.2, seed=3)
    lab = np.array([-1 if x is None else x for x in labels])
    assert m.dtype == bool and m.shape == (len(labels),)
    assert [int(m[lab == c].sum()) for c in range(3)] == [2, 1, 1]
    assert not m[lab < 0].any()
    np.testing.assert_array_equal(m, labelled_mask(labels, 0.2, seed=3))
    masks = {tuple(labelled_mask(labels, 0.5, seed=s)) for s in range(10)}
    assert len(masks) > 1
    np.testing.assert_array_equal(labelled_mask(labels, 1.0, 0), lab >= 0)


@pytest.mark.parametrize("fraction", [0, -0.1, 1.01, float("nan"), True, "0.5"])
def test_labelled_mask_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        labelled_mask([0], fraction, 0)


@settings(max_examples=50, deadline=None)
@given(labels=st.lists(st.integers(-1, 5), max_size=60), fraction=st.floats(0.01, 1.0), seed=st.integers(0, 99))
def test_labelled_mask_properties(labels, fraction, seed):
    m = labelled_mask(labels, fraction, seed)
    lab = np.array(labels, dtype=int)
    for c in set(labels) - {-1}:
        n = int((lab == c).sum())
        k = int(m[lab == c].sum())
        assert 1 <= k <= n and abs(k - fraction * n) <= 1
    assert not m[lab == -1].any() if len(lab) else True


# --- generic layout ------------------------------------------------------------------------------------------
CAM = Intrinsics(10.0, 10.0, W / 2, H / 2, W, H)


def generic_folder(root, n=3):
    seqs = []
    for i in range(n):
        s = make_seq(frames=3 + i, seed=i)
        s.name, s.label, s.intrinsics = f"clip{i}", i % 2 if i < n - 1 else None, CAM
        s.subject, s.episode = (None, None) if i == 0 else (i, 1)
        s.joints_m[0, 4] = np.nan
        seqs.append(s)
    seqs[1].joints_m = None
    return write_generic(root, iter(seqs), ["plie", "releve"], CAM), seqs


def test_generic_round_trip(tmp_path):
    meta, seqs = generic_folder(tmp_path)
    assert meta == tmp_path / "dataset.json"
    d = json.loads(meta.read_text())
    assert d["format"] == "kerasdance-generic" and d["version"] == 1 and d["joint_names"] == list(JOINT_NAMES)
    assert d["sequences"][2] == {"file": "clip2.npz", "label": None, "subject": 2, "episode": 1}
    ds = Dataset.open(tmp_path)
    assert ds.layout == "generic" and ds.class_names == ("plie", "releve") and ds.intrinsics == CAM
    assert [r.modalities for r in ds] == [("depth", "skeleton"), ("depth",), ("depth", "skeleton")]
    for r, s in zip(ds, seqs):
        got = ds.load(r)
        assert (got.name, got.label, got.subject, got.episode) == (s.name, s.label, s.subject, s.episode)
        np.testing.assert_array_equal(got.depth_mm, s.depth_mm)
        if s.joints_m is None:
            assert got.joints_m is None
        else:
            np.testing.assert_array_equal(got.joints_m, s.joints_m)  # NaN == NaN here
        assert got.intrinsics == CAM and got.depth_valid.all()


def test_convert_msr_to_generic(tmp_path):
    msr_folder(tmp_path / "msr", actions=(2, 5), subjects=(1, 2))
    meta = convert_msr_to_generic(tmp_path / "msr", tmp_path / "gen")
    a, b = Dataset.open(tmp_path / "msr"), Dataset.open(meta)
    assert b.class_names == msr.MSR_ACTIONS and b.intrinsics == KINECT_V1.scaled(W, H)
    assert [(r.name, r.label, r.subject, r.episode) for r in a] == [(r.name, r.label, r.subject, r.episode) for r in b]
    for ra, rb in zip(a, b):
        sa, sb = a.load(ra), b.load(rb)
        np.testing.assert_array_equal(sa.depth_mm, sb.depth_mm)
        np.testing.assert_array_equal(sa.joints_m, sb.joints_m)
    with pytest.raises(DataFormatError, match="generic"):
        convert_msr_to_generic(tmp_path / "gen", tmp_path / "again")


def edit_meta(root, fn):
    meta = root / "dataset.json"
    d = json.loads(meta.read_text())
    fn(d)
    meta.write_text(json.dumps(d))


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d["sequences"][0].update(label="jete"), "unknown class name.*jete"),
    (lambda d: d["sequences"][0].update(file="gone.npz"), "gone.npz.*missing"),
    (lambda d: d["sequences"][0].update(file="../x.npz"), "relative"),
    (lambda d: d["sequences"][0].update(subject="one"), "subject"),
    (lambda d: d.update(joint_names=list(reversed(JOINT_NAMES))), "joint_names"),
    (lambda d: d["intrinsics"].pop("fx"), "intrinsics"),
    (lambda d: d["intrinsics"].update(width=-3), "intrinsics"),
    (lambda d: d.update(class_names=[]), "class_names"),
    (lambda d: d.update(sequences=[]), "sequences"),
])  # fmt: skip
def test_generic_metadata_validation(tmp_path, edit, match):
    generic_folder(tmp_path)
    edit_meta(tmp_path, edit)
    with pytest.raises(DataFormatError, match=match) as e:
        Dataset.open(tmp_path)
    assert "dataset.json" in str(e.value)


def test_generic_bad_json_and_bad_arrays(tmp_path):
    generic_folder(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DataFormatError, match="JSON"):
        Dataset.open(tmp_path)
    generic_folder(tmp_path)
    np.savez(tmp_path / "clip0.npz", depth_mm=np.zeros((3, H, W), np.float32))
    ds = Dataset.open(tmp_path)
    with pytest.raises(DataFormatError, match="clip0.npz.*uint16"):
        ds.load(ds.refs[0])
    np.savez(tmp_path / "clip0.npz", depth_mm=np.zeros((3, H, W + 1), np.uint16))
    with pytest.raises(DataFormatError, match="clip0.npz"):
        ds.load(ds.refs[0])
    np.savez(tmp_path / "clip0.npz", depth_mm=np.zeros((3, H, W), np.uint16), joints_m=np.zeros((3, 15, 3)))
    with pytest.raises(DataFormatError, match="joints_m"):
        ds.load(ds.refs[0])
    np.savez(tmp_path / "clip0.npz", depth_mm=np.zeros((3, H, W), np.uint16), joints_m=np.zeros((4, 20, 3)))
    with pytest.raises(DataFormatError, match="frames"):
        ds.load(ds.refs[0])
    (tmp_path / "clip0.npz").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="clip0.npz"):
        Dataset.open(tmp_path)


def test_write_generic_errors(tmp_path):
    s = make_seq()
    with pytest.raises(ValueError, match="intrinsics"):
        write_generic(tmp_path, [s], msr.MSR_ACTIONS, CAM)
    s.intrinsics, s.label = CAM, 3
    with pytest.raises(ValueError, match="label"):
        write_generic(tmp_path, [s], ["only"], CAM)
    with pytest.raises(ValueError, match="distinct"):
        write_generic(tmp_path, [s, s], msr.MSR_ACTIONS, CAM)


# --- inspect -------------------------------------------------------------------------------------------------
def test_inspect_small_folder(tmp_path):
    msr_folder(tmp_path, actions=(1, 2), subjects=(1, 2), frames=4)
    seq = make_seq(action=3, subject=4, frames=5)
    seq.depth_mm[1] = 0
    seq.joints_m[2, 7] = np.nan
    msr.write_msr_sequence(tmp_path, seq)
    (tmp_path / "a04_s01_e01_sdepth.bin").write_bytes(b"\x01\x00")  # corrupt: a problem, not a crash
    summary = inspect(Dataset.open(tmp_path))
    json.dumps(summary)
    assert summary["num_sequences"] == 6
    assert summary["per_class"]["high arm wave"] == 2 and summary["per_class"]["hammer"] == 1
    assert summary["per_class"]["hand catch"] == 1 and summary["per_subject"] == {"1": 3, "2": 2, "4": 1}
    assert summary["frames"] == {"min": 4, "median": 4.0, "max": 5}
    assert 500 <= summary["depth_mm"]["min"] and summary["depth_mm"]["max"] < 4000
    assert summary["zero_frames"] == 1 and summary["zero_sequences"] == 0
    assert summary["invalid_joint_rows"] == 1
    assert summary["modalities"] == {"depth": 6, "skeleton": 5}  # files present, loadable or not
    problems = "\n".join(summary["problems"])
    assert "a04_s01_e01" in problems and "a03_s04_e01_sdepth.bin" in problems
    text = format_inspect(summary)
    assert "high arm wave" in text and "problems" in text and "a04_s01_e01" in text
    assert summary["sides"] is not None and "sides" in text  # five sequences with skeletons


def _waving(side: str, frames: int = 30) -> np.ndarray:
    """A still skeleton whose right (or left) elbow, wrist and hand swing sideways, with tracker jitter."""
    from kerasdance.skeleton import Joint as J

    rng = np.random.default_rng(0)
    j = np.tile(rng.normal(0, 0.3, (1, 20, 3)), (frames, 1, 1)) + rng.normal(0, 0.01, (frames, 20, 3))
    arm = (J.ELBOW_RIGHT, J.WRIST_RIGHT, J.HAND_RIGHT) if side == "right" else (J.ELBOW_LEFT, J.WRIST_LEFT,
                                                                                  J.HAND_LEFT)
    j[:, list(arm), 0] += 0.3 * np.sin(np.linspace(0, 6, frames))[:, None]
    return j


def test_side_balance_tells_the_moving_side():
    from kerasdance.skeleton import mirror_joints, side_balance

    right = _waving("right")
    assert side_balance(right) > 0.5 and side_balance(_waving("left")) < -0.5
    assert side_balance(mirror_joints(right)) == pytest.approx(-side_balance(right))
    assert np.isnan(side_balance(np.ones((10, 20, 3))))  # nothing moves
    assert np.isnan(side_balance(np.full((10, 20, 3), np.nan)))  # no valid frame


def test_side_summary_advises_mirror_only_where_a_class_is_done_on_both_sides():
    from kerasdance.data.inspect import side_summary

    names = ["wave", "kick", "bow"]
    # Subjects 1-4 wave with the right arm, subject 5 with the left (twice); kicks are all left; bows symmetric.
    items = [(0, s, 0.6) for s in (1, 2, 3, 4) for _ in range(2)] + [(0, 5, -0.6), (0, 5, -0.5)]
    items += [(1, s, -0.7) for s in (1, 2, 3, 4, 5)] + [(2, s, 0.05) for s in (1, 2, 3, 4, 5)]
    summary = side_summary(items + [(2, 1, float("nan"))], names)
    assert (summary["right"], summary["left"], summary["symmetric"]) == (8, 7, 5)  # the NaN one is left out
    assert summary["lateral_classes"] == ["wave", "kick"] and summary["both_sides_classes"] == ["wave"]
    assert summary["mirror"] and summary["minority_side"] == "left" and summary["minority_subjects"] == [5]
    one_sided = side_summary([it for it in items if it[1] != 5], names)  # without the left-handed subject
    assert not one_sided["mirror"] and one_sided["both_sides_classes"] == []
    assert side_summary([(0, 1, float("nan"))], names) is None
    text = format_inspect({"root": "r", "layout": "msr", "num_sequences": 0, "modalities": {"depth": 0, "skeleton": 0},
                           "frames": {"min": None}, "depth_mm": None, "zero_frames": 0, "zero_sequences": 0,
                           "invalid_joint_rows": 0, "per_class": {}, "per_subject": {}, "problems": [],
                           "sides": summary})
    assert "done on both sides: 1 of 2" in text and "--mirror" in text
    unlabelled = side_summary([(None, s, x) for _, s, x in items], names)
    assert unlabelled["lateral_classes"] == [] and not unlabelled["mirror"]


def test_edge_summary_advises_edge_cuts_only_where_skeletons_leave_the_image():
    from kerasdance.data.inspect import edge_summary

    inside = [(s, 0.0) for s in (1, 2, 3)] + [(4, 0.01)]  # a stray joint is not a cut body
    summary = edge_summary(inside + [(1, float("nan"))])
    assert summary["sequences"] == 4 and summary["cut"] == 0 and not summary["edge_cuts"]
    near = edge_summary(inside + [(8, 0.2), (8, 0.25), (None, 0.1)])
    assert near["cut"] == 3 and near["cut_subjects"] == {"8": 2, "unknown": 1} and near["edge_cuts"]
    assert near["joints_outside"] == pytest.approx((0.01 + 0.2 + 0.25 + 0.1) / 7)
    assert edge_summary([]) is None
    base = {"root": "r", "layout": "msr", "num_sequences": 0, "modalities": {"depth": 0, "skeleton": 0},
            "frames": {"min": None}, "depth_mm": None, "zero_frames": 0, "zero_sequences": 0, "invalid_joint_rows": 0,
            "per_class": {}, "per_subject": {}, "problems": [], "sides": None}
    assert "--edge-cuts" in format_inspect({**base, "frame_edges": near}) and "8 (2)" in format_inspect(
        {**base, "frame_edges": near})
    assert "every skeleton inside the image" in format_inspect({**base, "frame_edges": summary})


def test_inspect_finds_a_performer_whose_feet_leave_the_image(tmp_path):
    from kerasdance.data import synthetic

    for subject in (1, 8):  # synthetic msr20 subject 8 stands 2.05 m from the camera: its ankles are below the image
        msr.write_msr_sequence(tmp_path, synthetic.generate_sequence("msr20", 0, subject, 1))
    edges = inspect(Dataset.open(tmp_path))["frame_edges"]
    assert edges["sequences"] == 2 and edges["cut_subjects"] == {"8": 1} and edges["edge_cuts"]


def test_load_uses_the_split_label(tmp_path):
    ds = Dataset.open(msr_folder(tmp_path, actions=(2, 3), subjects=(1, 2)))
    sp = split(ds.refs, "as1", ds.class_names)  # action 2 -> 0, action 3 -> 1
    seqs = [ds.load(r) for r in sp.train + sp.test]
    assert [s.label for s in seqs] == [r.label for r in sp.train + sp.test]
    assert {s.label for s in seqs} == {0, 1}


def test_inspect_counts_all_zero_sequences(tmp_path, caplog):
    seq = make_seq(action=1, subject=1, frames=3)
    seq.depth_mm[:] = 0
    msr.write_msr_sequence(tmp_path, seq)
    msr.write_msr_sequence(tmp_path, make_seq(action=2, subject=1, frames=3))
    summary = inspect(Dataset.open(tmp_path))
    assert summary["zero_sequences"] == 1 and summary["zero_frames"] == 3
    assert any("a01_s01_e01_sdepth.bin" in p and "all zero" in p for p in summary["problems"])


def test_skeleton_mode_skips_a_sequence_whose_every_joint_row_is_invalid(tmp_path, caplog):
    from kerasdance.config import DataConfig
    from kerasdance.data import pipeline

    bad = make_seq(action=1, subject=1, frames=3)
    bad.joints_m[:] = np.nan  # written with confidence 0, read back as invalid rows
    msr.write_msr_sequence(tmp_path, bad)
    msr.write_msr_sequence(tmp_path, make_seq(action=2, subject=1, frames=3))
    ds = Dataset.open(tmp_path)
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        prepared = pipeline.prepare(ds, ds.refs, DataConfig(frames=4, crop_size=16), with_depth=False)
    assert prepared.names == ["a02_s01_e01"]
    assert "skipping a01_s01_e01: every joint row of its skeleton file is invalid" in caplog.text
