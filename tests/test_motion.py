"""kerasdance.motion: BVH and CSV export of tracked joints, read back with our own and a standard parser."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerasdance import motion as M
from kerasdance.cli import cli
from kerasdance.data import synthetic
from kerasdance.errors import DataFormatError
from kerasdance.skeleton import BONES, JOINT_NAMES, Joint


@pytest.fixture(scope="module")
def performance():
    """A synthetic continuous take (jittered joints, the odd NaN row) at 15 fps."""
    return synthetic.generate_performance("dance11", subject=2, take=1, seed=0, moves=3)


def rigid(joints: np.ndarray) -> np.ndarray:
    """The same motion with constant bone lengths: every joint re-placed from its parent along the measured
    direction at the bone's median length (the synthetic generator only returns jittered joints)."""
    j = np.asarray(joints, np.float64)
    out = j.copy()
    for p, c in BONES:  # BONES runs from the hip centre outwards: the parent is placed first
        length = np.nanmedian(np.linalg.norm(j[:, c] - j[:, p], axis=-1))
        d = j[:, c] - j[:, p]
        out[:, c] = out[:, p] + length * d / np.linalg.norm(d, axis=-1, keepdims=True)
    return out


def test_bvh_reproduces_constant_length_joints_within_1mm(performance, tmp_path):
    joints = rigid(M.fill_missing(M.Motion(performance.joints_m.astype(np.float64), 15.0,
                                           np.arange(len(performance.joints_m)) / 15.0)).joints_m)
    path = tmp_path / "take.bvh"
    M.write_bvh(M.Motion(joints, 15.0, np.arange(len(joints)) / 15.0, "take"), path)
    back = M.bvh_to_joints_m(M.read_bvh(path))
    assert back.shape == joints.shape
    err_mm = np.linalg.norm(back - joints, axis=-1) * 1000
    assert err_mm.max() < 1.0, err_mm.max()
    assert np.ptp(joints[:, Joint.HIP_CENTER, 0]) > 0.1  # the performer moves about: a meaningful check


def test_bvh_bone_directions_exact_on_jittered_joints(performance, tmp_path):
    """With per-frame bone lengths varying (jitter), positions differ by the lengths only: each bone points
    where it was measured, in every frame with both ends valid."""
    j = performance.joints_m.astype(np.float64)
    j[[10, 11], Joint.HAND_LEFT] = np.nan  # a lost hand
    j[50] = np.nan  # a frame without the performer
    path = tmp_path / "raw.bvh"
    filled = M.write_bvh(M.Motion(j, 15.0, np.arange(len(j)) / 15.0, "raw"), path)
    assert filled.filled_frames == int((~np.isfinite(j).all(axis=(1, 2))).sum()) >= 3
    back = M.bvh_to_joints_m(M.read_bvh(path))
    for p, c in BONES:
        ok = np.isfinite(j[:, [p, c]]).all(axis=(1, 2))
        a, b = back[ok, c] - back[ok, p], j[ok, c] - j[ok, p]
        cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert np.all(cos > 1 - 1e-8), (JOINT_NAMES[p], JOINT_NAMES[c], cos.min())
    lengths = M.bone_lengths_m(j)
    got = [np.linalg.norm(back[0, c] - back[0, p]) for p, c in BONES]
    np.testing.assert_allclose(got, lengths, atol=1e-6)


def test_bvh_read_by_bvhio(performance, tmp_path):
    bvhio = pytest.importorskip("bvhio")
    j = rigid(M.fill_missing(M.Motion(performance.joints_m.astype(np.float64), 30.0,
                                      np.arange(len(performance.joints_m)) / 30.0)).joints_m)[:40]
    path = tmp_path / "take.bvh"
    M.write_bvh(M.Motion(j, 30.0, np.arange(len(j)) / 30.0, "take"), path)
    container = bvhio.readAsBvh(str(path))
    layout = container.Root.layout()
    assert len(layout) == len(M.BVH_NODES) == 24
    assert sum(len(n.Channels) for n, _, _ in layout) == 6 + 23 * 3
    assert container.FrameCount == 40
    assert container.FrameTime == pytest.approx(1 / 30.0, abs=1e-8)
    assert [n.Name for n, _, _ in layout] == [n.name for n in M.BVH_NODES]
    root = bvhio.readAsHierarchy(str(path))
    names = [n.Name for n, _, _ in root.layout()]
    for f in (0, 17, 39):
        root.loadPose(f, recursive=True)
        theirs = np.array([[*n.PositionWorld] for n, _, _ in root.layout()])  # centimetres, BVH axes
        ours = {n: j[f, i] * M.AXES * M.CM_PER_M for i, n in enumerate(JOINT_NAMES)}
        for name, xyz in zip(names, theirs):
            if name in ours:
                np.testing.assert_allclose(xyz, ours[name], atol=0.1)  # 1 mm (bvhio computes in float32)


def test_a_full_turn_has_smooth_angle_curves(tmp_path):
    """A standing dancer turning a whole turn: the angles go on past 180 degrees (no jump back), positions exact."""
    pose = rigid(synthetic.generate_performance("dance11", 1, 1, seed=0, moves=1).joints_m[:1])[0]
    hip = pose[Joint.HIP_CENTER]
    a = np.radians(np.arange(0, 370, 10.0))
    rot = np.stack([np.stack([np.cos(a), 0 * a, np.sin(a)], -1), np.stack([0 * a, 1 + 0 * a, 0 * a], -1),
                    np.stack([-np.sin(a), 0 * a, np.cos(a)], -1)], -2)  # about the vertical through the hips
    joints = hip + np.einsum("fij,kj->fki", rot, pose - hip)
    path = tmp_path / "turn.bvh"
    M.write_bvh(M.Motion(joints, 15.0, np.arange(len(a)) / 15.0), path)
    bvh = M.read_bvh(path)
    assert np.abs(np.diff(bvh.values[:, 3:], axis=0)).max() < 20
    np.testing.assert_allclose(M.bvh_to_joints_m(bvh), joints, atol=1e-6)


def test_hierarchy_conventions():
    names = [n.name for n in M.BVH_NODES]
    assert set(JOINT_NAMES) <= set(names) and names[0] == "hip_center"
    leaves = {n.name for n in M.BVH_NODES if n.child is None}
    assert leaves == {"head", "hand_left", "hand_right", "foot_left", "foot_right"}
    helpers = [n for n in M.BVH_NODES if n.parent >= 0 and M.BVH_NODES[n.parent].at == n.at]
    assert sorted(n.name for n in helpers) == ["clavicle_left", "clavicle_right", "pelvis_left", "pelvis_right"]
    lengths = np.arange(1, len(BONES) + 1) / 10.0
    off = M.bvh_offsets_m(lengths)
    assert np.all(off[[names.index(n.name) for n in helpers]] == 0)
    assert off[names.index("shoulder_left"), 0] < 0 < off[names.index("shoulder_right"), 0]  # left arm along -X
    assert off[names.index("knee_left"), 1] < 0 and off[names.index("spine"), 1] > 0


def test_axes_and_units(tmp_path):
    """A standing pose in camera metres: the BVH root position is in cm with Z = -z, and Y is up."""
    j = rigid(synthetic.generate_performance("dance11", 1, 1, seed=0, moves=1).joints_m[:3])
    path = tmp_path / "a.bvh"
    M.write_bvh(M.Motion(j, 15.0, np.arange(3) / 15.0), path)
    bvh = M.read_bvh(path)
    np.testing.assert_allclose(bvh.values[0, :3], j[0, Joint.HIP_CENTER] * [100, 100, -100], atol=1e-4)
    pos = M.bvh_positions(bvh)
    head, foot = pos[0, bvh.names.index("head")], pos[0, bvh.names.index("foot_left")]
    assert head[1] - foot[1] > 100  # head over the feet by more than a metre: upright in a Y-up world
    assert "Frame Time: 0.06666667" in path.read_text()


def test_euler_round_trip():
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(-180, 180, 500), rng.uniform(-90, 90, 500), rng.uniform(-180, 180, 500)])
    a[:5, 1] = [90, -90, 90, 0, -90]  # gimbal lock included
    rot = M.matrix_from_euler(a, "ZXY")
    back = M.matrix_from_euler(np.degrees(M.euler_zxy_from_matrix(rot)), "ZXY")
    np.testing.assert_allclose(back, rot, atol=1e-9)


def test_fill_missing_holds_last_valid():
    j = np.zeros((5, 20, 3))
    j[:, :, 0] = np.arange(5)[:, None]
    j[0, 3] = np.nan  # before the first valid: the first valid one
    j[2, 7] = np.nan
    j[3] = np.nan  # a frame without the performer
    out = M.fill_missing(M.Motion(j, 15.0, np.arange(5) / 15.0))
    assert out.filled_frames == 3 and np.isfinite(out.joints_m).all()
    assert out.joints_m[0, 3, 0] == 1 and out.joints_m[2, 7, 0] == 1 and out.joints_m[3, 0, 0] == 2
    with pytest.raises(DataFormatError, match="never valid"):
        j2 = np.zeros((3, 20, 3))
        j2[:, 19] = np.nan
        M.fill_missing(M.Motion(j2, 15.0, np.arange(3) / 15.0, "x"))


def test_csv_round_trip(performance, tmp_path):
    j = performance.joints_m[:30].astype(np.float64)
    j[4] = np.nan
    m = M.Motion(j, 15.0, np.arange(30) / 15.0, "take")
    path = tmp_path / "take.csv"
    M.write_csv(m, path)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:5] == ["frame", "time_s", "shoulder_left_x", "shoulder_left_y", "shoulder_left_z"]
    assert len(header) == 2 + 60
    back = M.read_csv(path)
    assert back.fps == pytest.approx(15.0, rel=1e-5) and back.num_frames == 30
    np.testing.assert_allclose(back.joints_m, j, atol=1e-6)  # NaN where NaN
    np.testing.assert_allclose(back.time_s, m.time_s, atol=1e-6)


def _jsonl(path, frames, persons=(None,), skip=()):
    """A tracker JSONL (the JsonlSink format): ``frames`` (F, 20, 3), 30 fps, ``skip`` indices absent."""
    from kerasdance_edge.sinks import result_to_dict
    from kerasdance_edge.tracker import TrackResult

    with open(path, "w") as f:
        for i, xyz in enumerate(frames):
            if i in skip:
                continue
            for k, pid in enumerate(persons):
                ok = np.isfinite(xyz).all()
                r = TrackResult(i, int(i * 1e6 / 30), (xyz + k).astype(np.float32) if ok else None,
                                "", 0.0, 1.0, "warmup" if ok else "no-person", pid)
                d = result_to_dict(r)
                if pid is not None:
                    d["person"] = pid
                f.write(json.dumps(d) + "\n")
    return path


def test_jsonl_input_fps_gaps_and_people(performance, tmp_path):
    j = rigid(M.fill_missing(M.Motion(performance.joints_m.astype(np.float64), 15.0,
                                      np.arange(len(performance.joints_m)) / 15.0)).joints_m)[:20]
    j[5] = np.nan
    m = M.load_motion(_jsonl(tmp_path / "one.jsonl", j, skip={8, 9}))
    assert m.fps == pytest.approx(30.0) and m.num_frames == 20
    assert np.isnan(m.joints_m[[5, 8, 9]]).all() and np.isfinite(m.joints_m[10]).all()
    np.testing.assert_allclose(m.joints_m[10], j[10], atol=1e-4)  # 4 decimals in the JSON
    np.testing.assert_allclose(m.time_s[8], 8 / 30, atol=1e-6)
    two = _jsonl(tmp_path / "two.jsonl", j, persons=(3, 4))
    with pytest.raises(DataFormatError, match="several performers.*--person"):
        M.load_motion(two)
    np.testing.assert_allclose(M.load_motion(two, person=4).joints_m[0], j[0] + 1, atol=1e-4)
    with pytest.raises(DataFormatError, match="no performer with person ID 7"):
        M.load_motion(two, person=7)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"index": 0}\n')
    with pytest.raises(DataFormatError, match="bad.jsonl:1"):
        M.load_motion(bad)


def test_cli_export_bvh_csv_and_errors(performance, tmp_path):
    j = rigid(M.fill_missing(M.Motion(performance.joints_m.astype(np.float64), 15.0,
                                      np.arange(len(performance.joints_m)) / 15.0)).joints_m)[:20]
    j[3] = np.nan
    src = _jsonl(tmp_path / "show.jsonl", j)
    runner = CliRunner()
    res = runner.invoke(cli, ["motion", "export", str(src), "--out", str(tmp_path / "show.bvh")])
    assert res.exit_code == 0, res.output
    assert "20 frames at 30 fps (1 with missing joints held" in res.output
    back = M.bvh_to_joints_m(M.read_bvh(tmp_path / "show.bvh"))
    np.testing.assert_allclose(back[10], j[10], atol=1e-3)
    res = runner.invoke(cli, ["motion", "export", str(src), "--format", "csv", "--out", str(tmp_path / "x.txt")])
    assert res.exit_code == 0, res.output
    assert M.read_csv(tmp_path / "x.txt").num_frames == 20
    res = runner.invoke(cli, ["motion", "export", str(src), "--out", str(tmp_path / "x.fbx")])
    assert res.exit_code != 0 and "--format bvh|csv" in res.output
    res = runner.invoke(cli, ["motion", "export", str(src), "--person", "2", "--out", str(tmp_path / "y.bvh")])
    assert res.exit_code == 1 and "no performer with person ID 2" in res.output and "Traceback" not in res.output


def test_npz_and_dataset_inputs(performance, tmp_path):
    from kerasdance.data.dataset import write_generic

    seq = performance
    write_generic(tmp_path / "ds", [seq], synthetic.class_names("dance11"), seq.intrinsics, fps=seq.fps)
    npz = tmp_path / "ds" / f"{seq.name}.npz"
    m = M.load_motion(npz)
    assert m.fps == 15.0 and m.num_frames == len(seq.joints_m)
    np.testing.assert_array_equal(m.joints_m, seq.joints_m.astype(np.float64))
    m2 = M.load_motion(tmp_path / "ds")
    np.testing.assert_array_equal(m2.joints_m, m.joints_m)
    with pytest.raises(DataFormatError, match="no sequence named 'nope'"):
        M.load_motion(tmp_path / "ds", sequence="nope")
    res = CliRunner().invoke(cli, ["motion", "export", str(npz), "--out", str(tmp_path / "s.csv"), "--fps", "30"])
    assert res.exit_code == 0 and "at 30 fps" in res.output, res.output
