"""Synthetic clips that vary like real recordings (``synthetic.generate_sequence(realism="varied")``)."""

import hashlib

import numpy as np
import pytest
from click.testing import CliRunner

from kerasdance.camera import KINECT_V1
from kerasdance.cli import cli
from kerasdance.data import realism as R
from kerasdance.data import synthetic as S
from kerasdance.data.dataset import Dataset
from kerasdance.skeleton import BONES
from kerasdance.skeleton import Joint as J

SMALL = KINECT_V1.scaled(80, 60)  # the same camera at a quarter of the resolution: fast to render
FEET = [J.FOOT_LEFT, J.FOOT_RIGHT, J.ANKLE_LEFT, J.ANKLE_RIGHT]


def digest(seq) -> str:
    h = hashlib.sha256()
    h.update(seq.depth_mm.tobytes())
    h.update(seq.joints_m.tobytes())
    return h.hexdigest()[:16]


def test_default_output_is_unchanged():
    # Hashes of the plain generator before the realism option existed (same code path since).
    assert digest(S.generate_sequence("msr20", 3, 2, 1, intrinsics=SMALL, background=True)) == "2e6d1ab84dc6c37c"
    assert digest(S.generate_performance("dance11", 2, 1, seed=1, moves=1, intrinsics=SMALL)) == "6400f54559e0b554"


def test_varied_is_seeded_and_differs_from_plain():
    a = S.generate_sequence("msr20", 3, 2, 1, intrinsics=SMALL, realism="varied")
    b = S.generate_sequence("msr20", 3, 2, 1, intrinsics=SMALL, realism="varied")
    c = S.generate_sequence("msr20", 3, 2, 1, seed=1, intrinsics=SMALL, realism="varied")
    plain = S.generate_sequence("msr20", 3, 2, 1, intrinsics=SMALL)
    assert digest(a) == digest(b) != digest(c)
    assert a.num_frames == plain.num_frames and a.name == plain.name and a.label == plain.label
    assert a.depth_mm.dtype == np.uint16 and a.depth_mm.shape == plain.depth_mm.shape
    assert not np.allclose(a.joints_m, plain.joints_m, equal_nan=True)
    with pytest.raises(ValueError, match="Unknown realism"):
        S.generate_sequence("msr20", 3, 2, 1, intrinsics=SMALL, realism="real")


def test_subject_looks_stay_in_range_and_differ():
    looks = [R.subject_look(0, s, 0) for s in range(1, 11)]
    cams = np.array([[lk.camera.height_m, lk.camera.tilt_deg, lk.camera.roll_deg] for lk in looks])
    assert ((cams[:, 0] >= 0.8) & (cams[:, 0] <= 1.8)).all() and np.ptp(cams[:, 0]) > 0.3
    assert ((cams[:, 1] >= 0) & (cams[:, 1] <= 10)).all() and (np.abs(cams[:, 2]) <= 3).all()
    widths = {round(lk.body.torso_width, 6) for lk in looks}
    assert len(widths) == 10 and min(widths) >= 0.85 and max(widths) <= 1.25
    assert R.subject_look(0, 3, 0) == looks[2] and R.subject_look(0, 3, 1) != looks[2]
    rng = np.random.default_rng(0)
    for lk in looks:
        cam = R.clip_camera(lk, rng)
        assert abs(cam.height_m - lk.camera.height_m) <= 0.03 + 1e-9 and abs(cam.tilt_deg - lk.camera.tilt_deg) <= 1
        assert abs(cam.roll_deg - lk.camera.roll_deg) <= 0.5 + 1e-9


def test_loose_clothes_and_wider_torso_cover_more_pixels():
    subj = S._subject("msr20", 1, 0)
    body = S._forward_kinematics(S._pose(np.zeros(1)), subj["bones"])[0] + [0.0, 0.0, 2.5]
    look = R.subject_look(0, 1, 0).body
    tight = R.BodyShape({k: 1.0 for k in look.segments}, 1.0, 1.0, dict.fromkeys(look.clothing_m, 0.0), "tight",
                        "tight")
    loose = R.BodyShape(tight.segments, 1.2, 1.0, {"torso": 0.03, "upper_arm": 0.015, "thigh": 0.06, "shin": 0.0},
                        "loose", "skirt")
    parts = S._capsule_parts(subj["girth"])
    plain = np.isfinite(S.render_frame(body, KINECT_V1, subj["girth"])).sum()
    same = np.isfinite(S.render_frame(body, KINECT_V1, subj["girth"], capsules=tight.capsules(parts))).sum()
    wide = np.isfinite(S.render_frame(body, KINECT_V1, subj["girth"], capsules=loose.capsules(parts))).sum()
    assert same == plain  # no variation and no clothes: the plain body
    assert wide > 1.15 * plain


def test_thin_parts_lose_pixels():
    body = np.zeros((40, 40), bool)
    body[5:30, 5:25] = True  # a torso
    body[10, 25:38] = True  # a one-pixel arm
    thin = R.thin_parts(body, 5)
    assert thin[10, 26:38].all() and not thin[12:25, 8:22].any()
    assert not R.thin_parts(body, 0).any()
    z = np.where(body, 2.0, np.inf)
    depth = R.sense(z, body, KINECT_V1.scaled(40, 40), np.random.default_rng(0))
    assert (depth[10, 27:38] == 0).mean() > 0.2 and (depth[12:25, 8:22] > 0).mean() > 0.95


def test_floor_in_the_depth_matches_the_camera_height_and_pitch():
    intr = KINECT_V1.scaled(160, 120)
    cam = R.CameraPose(1.5, 8.0, -2.5)
    subj = S._subject("msr20", 2, 0)
    leg = subj["bones"]["thigh"] + subj["bones"]["shin"] + 0.05
    body = S._forward_kinematics(S._pose(np.zeros(2)), subj["bones"]) + [0.0, leg, 3.0]
    look = R.subject_look(0, 2, 0).body
    joints, depth = S._render_varied(body, cam, look, subj["girth"], intr, True, np.random.default_rng(1))
    plane = R.floor_plane(cam)
    assert np.isclose(np.linalg.norm(plane[:3]), 1) and np.isclose(plane[3], 1.5)
    assert np.degrees(np.arccos(plane[:3] @ [0, 1, 0])) == pytest.approx(np.hypot(8.0, 2.5), abs=0.2)
    feet = joints[0, FEET] @ plane[:3] + plane[3]
    assert (np.abs(feet - 0.03) < 0.12).all()  # the camera-frame feet stand on the floor of the camera's pose
    v, u = np.nonzero(depth[0] > 0)
    z = depth[0, v, u] / 1000.0
    pts = np.stack([(u - intr.cx) / intr.fx * z, (intr.cy - v) / intr.fy * z, z], -1)
    low = pts[v > 0.85 * intr.height]  # the lowest rows see the floor in front of the dancer
    assert len(low) > 100
    height = low @ plane[:3] + plane[3]
    assert np.median(np.abs(height)) < 0.03  # the floor the sensor sees is the floor of the camera's pose
    centred = low - low.mean(axis=0)
    normal = np.linalg.svd(centred, full_matrices=False)[2][-1]
    assert abs(abs(normal @ plane[:3]) - 1) < 1e-3


@pytest.mark.parametrize("label, subject", [(12, 1), (0, 6), (14, 9)])  # bend, high arm wave, side kick
def test_projected_joints_land_on_body_pixels(label, subject):
    seq = S.generate_sequence("msr20", label, subject, 1, realism="varied")
    uvz = KINECT_V1.project(seq.joints_m)
    hits = []
    for f in range(0, seq.num_frames, 3):
        for k in range(20):
            u, v, z = uvz[f, k]
            if not np.isfinite(u):
                continue
            ui, vi = int(round(u)), int(round(v))
            patch = seq.depth_mm[f, max(vi - 2, 0) : vi + 3, max(ui - 2, 0) : ui + 3] / 1000.0
            hits.append(bool(((patch > 0) & (np.abs(patch - z) < 0.25)).any()))
    assert np.mean(hits) > 0.9


def test_stored_joints_are_a_rigid_move_of_the_plain_ones():
    plain = S.generate_performance("msr20", 4, 1, seed=3, moves=1, intrinsics=SMALL)
    varied = S.generate_performance("msr20", 4, 1, seed=3, moves=1, intrinsics=SMALL, realism="varied")
    np.testing.assert_array_equal(plain.frame_labels, varied.frame_labels)
    bone = lambda j: np.nanmedian([np.linalg.norm(j[:, a] - j[:, b], axis=-1) for a, b in BONES], axis=1)  # noqa
    np.testing.assert_allclose(bone(varied.joints_m), bone(plain.joints_m), atol=0.01)
    up_plain = np.nanmedian(plain.joints_m[:, J.HEAD] - plain.joints_m[:, J.HIP_CENTER], axis=0)
    up_varied = np.nanmedian(varied.joints_m[:, J.HEAD] - varied.joints_m[:, J.HIP_CENTER], axis=0)
    cos = up_plain @ up_varied / np.linalg.norm(up_plain) / np.linalg.norm(up_varied)
    look = R.subject_look(0, 4, 3).camera
    assert np.degrees(np.arccos(min(cos, 1.0))) > 0.5 * min(np.hypot(look.tilt_deg, look.roll_deg), 4.0)


def small(monkeypatch, name):
    """Make the CLI render ``synthetic.<name>`` at SMALL (fast); the flag still reaches it. Returns the original."""
    original = getattr(S, name)
    monkeypatch.setattr(S, name, lambda *a, **kw: original(*a, **{**kw, "intrinsics": SMALL}))
    return original


def test_cli_realism_flag(tmp_path, monkeypatch):
    generate = small(monkeypatch, "generate_sequence")
    out = tmp_path / "v"
    res = CliRunner().invoke(cli, ["synth", "--set", "dance11", "--limit-per-class", "1", "--realism", "varied",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    ds = Dataset.open(out)
    r = ds.refs[0]
    np.testing.assert_array_equal(ds.load(r).depth_mm, generate("dance11", r.label, r.subject, r.episode,
                                                                intrinsics=SMALL, realism="varied").depth_mm)
    res = CliRunner().invoke(cli, ["synth", "--continuous", "--scene", "studio", "--realism", "varied",
                                   "--out", str(tmp_path / "s")])
    assert res.exit_code != 0 and "--realism varied applies without a scene" in res.output
    res = CliRunner().invoke(cli, ["synth", "--realism", "real", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "'real' is not one of" in res.output
    with pytest.raises(ValueError, match="Unknown realism"):
        S.write_set("dance11", tmp_path / "y", limit_per_class=1, realism="real")


def test_cli_realism_flag_with_continuous_takes(tmp_path, monkeypatch):
    small(monkeypatch, "write_performances")
    args = ["synth", "--set", "dance11", "--continuous", "--subjects", "2", "--takes", "1", "--moves", "1"]
    res = CliRunner().invoke(cli, args + ["--realism", "varied", "--out", str(tmp_path / "v")])
    assert res.exit_code == 0, res.output
    ds = Dataset.open(tmp_path / "v")
    seq = ds.load(ds.refs[0])
    ref = S.generate_performance("dance11", 2, 1, moves=1, intrinsics=SMALL, realism="varied")
    np.testing.assert_array_equal(seq.depth_mm, ref.depth_mm)
    np.testing.assert_array_equal(seq.frame_labels, ref.frame_labels)
