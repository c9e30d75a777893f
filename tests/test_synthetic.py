import numpy as np
import pytest

from kerasdance.camera import KINECT_V1
from kerasdance.data import synthetic as S
from kerasdance.skeleton import BONES
from kerasdance.skeleton import Joint as J


def test_set_sizes_and_class_names():
    assert S.count_sequences("msr20") == 567 and S.count_sequences("dance11") == 99
    assert len(S.class_names("msr20")) == 20 and S.class_names("msr20")[6:9] == ("draw x", "draw tick", "draw circle")
    assert len(S.class_names("dance11")) == 11
    with pytest.raises(ValueError, match="Unknown synthetic set"):
        S.class_names("msr21")


def test_sequence_shapes_and_determinism():
    a = S.generate_sequence("msr20", 3, 2, 1, seed=5)
    b = S.generate_sequence("msr20", 3, 2, 1, seed=5)
    c = S.generate_sequence("msr20", 3, 2, 1, seed=6)
    assert a.depth_mm.dtype == np.uint16 and a.depth_mm.shape[1:] == (240, 320)
    assert a.joints_m.shape == (a.num_frames, 20, 3) and 13 <= a.num_frames <= 100
    assert a.name == "a04_s02_e01" and a.label == 3
    np.testing.assert_array_equal(a.depth_mm, b.depth_mm)
    assert not np.array_equal(a.depth_mm[:5], c.depth_mm[:5])


def test_depth_matches_joints_and_background_is_zero():
    seq = S.generate_sequence("msr20", 12, 3, 1)
    uvz = KINECT_V1.project(seq.joints_m)
    f = seq.num_frames // 2
    u, v, z = uvz[f, J.SPINE]
    assert 0 <= u < 320 and 0 <= v < 240
    patch = seq.depth_mm[f, int(v) - 2 : int(v) + 3, int(u) - 2 : int(u) + 3].astype(float)
    patch = patch[patch > 0]
    assert patch.size and abs(np.median(patch) / 1000 - z) < 0.25  # within a torso radius (+ jitter)
    assert seq.depth_mm[f, 0, 0] == 0 and seq.depth_mm[f, 0, -1] == 0
    bg = S.generate_sequence("msr20", 12, 3, 1, background=True)
    assert bg.depth_mm[f, 0, 0] > 0 and bg.depth_mm[f, -1, 160] > 0  # wall and floor


def test_left_is_smaller_x_at_rest():
    seq = S.generate_sequence("msr20", 12, 1, 1)  # bend starts from standing
    j = seq.joints_m[0]
    assert j[J.SHOULDER_LEFT, 0] < j[J.SHOULDER_RIGHT, 0] and j[J.HIP_LEFT, 0] < j[J.HIP_RIGHT, 0]


def test_bone_lengths_fixed_per_subject_and_differ_across_subjects():
    subj = S._subject("msr20", 1, 0)
    p = np.linspace(0, 1, 30)
    body = S._forward_kinematics(S.MOTIONS["msr20"](15, p, 2.0), subj["bones"])
    lengths = np.array([[np.linalg.norm(f[a] - f[b]) for a, b in BONES] for f in body])
    assert np.ptp(lengths, axis=0).max() < 1e-9
    other = S._subject("msr20", 2, 0)
    assert subj["bones"]["thigh"] != other["bones"]["thigh"]


def test_draw_moves_share_arm_and_region_but_differ():
    p = np.linspace(0, 1, 40)
    hands = [S._forward_kinematics(S.MOTIONS["msr20"](k, p, 2.0), S._BONES)[:, J.HAND_RIGHT] for k in (6, 7, 8)]
    centres = np.array([h.mean(axis=0) for h in hands])
    assert np.abs(centres - centres.mean(axis=0)).max() < 0.12
    assert np.abs(hands[0] - hands[2]).max() > 0.05 and np.abs(hands[0] - hands[1]).max() > 0.05


def test_limit_per_class_keeps_both_split_sides(tmp_path):
    from kerasdance.data.dataset import Dataset
    from kerasdance.data.splits import split

    n = S.write_set("dance11", tmp_path, limit_per_class=2)
    assert n == 22
    ds = Dataset.open(tmp_path)
    assert ds.class_names == S.class_names("dance11")
    sp = split(ds.refs, "cross-subject", ds.class_names)
    assert {r.label for r in sp.train} == {r.label for r in sp.test} == set(range(11))
