"""Synthetic studio scenes (kerasdance.data.scenes): room, sensors, several people, truth, writing."""

import math

import numpy as np
import pytest

from kerasdance.camera import D435_640X480, D435_848X480, KINECT_V1
from kerasdance.data import scenes
from kerasdance.data.dataset import Dataset, write_generic
from kerasdance.data.scenes import StudioScene, generate_studio_take
from kerasdance.data.synthetic import render_frame
from kerasdance.data.types import Sequence
from kerasdance.skeleton import Joint as J


@pytest.fixture(scope="module")
def take():
    """Two dancers (dancer 1 crosses the stage) and a passer-by, Kinect v1, one move each."""
    return generate_studio_take("dance11", 3, 1, seed=2, people=2, passerby=True, moves=1, cross=True,
                                empty_frames=8)


def _tolerance_m(sensor, z):
    """Depth differences the sensor's noise and quantisation explain (4 sigma + two steps)."""
    return 4 * sensor.noise_m_per_m2 * z**2 + 2 * sensor.disparity_step * z**2 + 0.002


def test_same_seed_same_bytes_and_max_frames_is_a_prefix():
    kw = dict(people=2, passerby=True, moves=1, empty_frames=2)
    a = generate_studio_take("msr20", 1, 1, seed=5, max_frames=5, **kw)
    b = generate_studio_take("msr20", 1, 1, seed=5, max_frames=5, **kw)
    for key in ("depth_mm", "joints_m", "frame_labels", "person_mask", "empty_room_mm"):
        assert getattr(a, key).tobytes() == getattr(b, key).tobytes(), key
    c = generate_studio_take("msr20", 1, 1, seed=5, max_frames=3, **kw)
    assert np.array_equal(c.depth_mm, a.depth_mm[:3]) and np.array_equal(c.person_mask, a.person_mask[:3])
    np.testing.assert_array_equal(c.joints_m, a.joints_m[:, :3])
    d = generate_studio_take("msr20", 1, 1, seed=6, max_frames=5, **kw)
    assert not np.array_equal(d.empty_room_mm, a.empty_room_mm)
    assert a.depth_mm.shape == (5, 240, 320) and a.depth_mm.dtype == np.uint16 and a.person_mask.dtype == np.int8
    assert a.joints_m.shape == (3, 5, 20, 3) and a.joints_m.dtype == np.float32 and a.frame_labels.shape == (3, 5)
    assert a.roles == ("dancer", "dancer", "passerby") and a.subjects[2] == -1


def test_person_mask_is_where_the_depth_is_nearer_than_the_empty_room(take):
    sensor = take.scene.sensor
    room = np.median(np.where(take.empty_room_mm > 0, take.empty_room_mm, np.nan), axis=0) / 1000.0
    depth = take.depth_mm / 1000.0
    both = (take.depth_mm > 0) & np.isfinite(room)[None]
    with np.errstate(invalid="ignore"):
        tol = _tolerance_m(sensor, room)[None]
        nearer = depth < room[None] - tol
    person, background = both & (take.person_mask >= 0), both & (take.person_mask < 0)
    assert person.sum() > 5000 and background.sum() > 100000
    assert nearer[person].mean() > 0.9  # feet on the floor and flying edges are the rest
    assert nearer[background].mean() < 0.005
    assert (take.person_mask >= 0).mean() < 0.2  # the room is most of the picture


def test_floor_plane_from_the_empty_room_matches_the_camera_pose():
    for seed, sensor in ((0, "kinect_v1"), (3, "kinect_v1"), (4, "d435")):
        scene = StudioScene.draw(seed, sensor)
        intr = scene.sensor.intrinsics
        depth = scenes.render_empty_room(scene, frames=1, seed=seed)[0] / 1000.0
        vv, uu = np.mgrid[0:intr.height, 0:intr.width]
        pick = ((vv > 0.85 * intr.height) & (uu > intr.width / 3) & (uu < 2 * intr.width / 3) & (depth > 0))
        pts = intr.unproject(np.stack([uu[pick], vv[pick], depth[pick]], -1))
        centre = pts.mean(0)
        n = np.linalg.svd(pts - centre, full_matrices=False)[2][-1]
        n = n if n[1] > 0 else -n
        height = -n @ centre  # n . p + d = 0 on the floor
        tilt = math.degrees(math.asin(-n[2]))
        roll = math.degrees(math.atan2(-n[0], n[1]))
        assert abs(height - scene.camera_height_m) < 0.02, (seed, height, scene.camera_height_m)
        assert abs(tilt - scene.tilt_deg) < 0.5 and abs(roll - scene.roll_deg) < 0.5, (seed, tilt, roll)
        np.testing.assert_allclose(scene.floor_plane(), [*n, height], atol=0.02)
        assert 1.0 <= scene.camera_height_m <= 1.6 and 0 <= scene.tilt_deg <= 8 and 3.2 <= scene.back_wall_m <= 5


def test_joints_are_in_the_tilted_camera_frame(take):
    floor = take.scene.floor_plane()
    standing = take.frame_labels[0] == -1
    feet = take.joints_m[0][:, [J.FOOT_LEFT, J.FOOT_RIGHT, J.ANKLE_LEFT, J.ANKLE_RIGHT]]
    height = feet @ floor[:3] + floor[3]
    assert np.all(height[standing].min(1) > -0.02) and np.all(height[standing].min(1) < 0.15)
    head = take.scene.sensor.intrinsics.project(take.joints_m[:2, :, J.HEAD])
    u, v = np.round(head[..., 0]).astype(int), np.round(head[..., 1]).astype(int)
    inside = (u >= 0) & (u < 320) & (v >= 0) & (v < 240)
    frames = np.arange(take.num_frames)[None].repeat(2, 0)
    shown = take.person_mask[frames[inside], v[inside], u[inside]]
    assert np.mean(shown >= 0) > 0.95  # a head's joint lands on a person (itself, or one in front)


def test_two_dancers_apart_and_occlusion_by_the_nearer(take):
    intr = take.scene.sensor.intrinsics
    counts = np.stack([(take.person_mask == p).sum((1, 2)) for p in range(3)])
    assert np.any((counts[0] > 300) & (counts[1] > 300))  # both seen, apart
    room = take.scene.render()
    overlap_frames = 0
    for f in range(take.num_frames):
        z = [render_frame(take.joints_m[p, f], intr, take.girths[p]) for p in range(2)]
        both = np.isfinite(z[0]) & np.isfinite(z[1])
        nearer = np.where(z[0] <= z[1], 0, 1)
        front = both & (np.minimum(z[0], z[1]) < room)
        if not np.isnan(take.joints_m[2, f]).any():  # the passer-by may be in front of either
            front &= ~(render_frame(take.joints_m[2, f], intr, take.girths[2]) < np.minimum(z[0], z[1]))
        if front.sum() < 30:
            continue
        overlap_frames += 1
        np.testing.assert_array_equal(take.person_mask[f][front], nearer[front])
        read = (take.depth_mm[f] > 0) & front
        err = np.abs(take.depth_mm[f][read] / 1000.0 - np.minimum(z[0], z[1])[read])
        assert np.median(err) < 0.03
    assert overlap_frames >= 3  # the crossing: one dancer passes in front of the other


def test_passerby_walks_through(take):
    p = take.roles.index("passerby")
    assert np.all(take.frame_labels[p] == -1)
    present = ~np.isnan(take.joints_m[p]).any((1, 2))
    assert present.any() and (take.person_mask == p).any()
    assert not (take.person_mask[~present] == p).any()
    x = take.joints_m[p][present][:, J.HIP_CENTER, 0]
    assert abs(x[-1] - x[0]) > 1.0  # walks across


def test_d435_resolution_and_frame_rate():
    a = generate_studio_take("msr20", 2, 1, seed=1, sensor="d435", moves=1, max_frames=2, empty_frames=1)
    assert a.depth_mm.shape == (2, 480, 848) and a.person_mask.shape == (2, 480, 848) and a.fps == 30.0
    assert a.scene.sensor.intrinsics == D435_848X480 and a.empty_room_mm.shape == (1, 480, 848)
    # stereo: a band along the left edge reads nothing (about f * baseline / z pixels)
    assert (a.depth_mm[:, :, :3] == 0).mean() > 0.95 and (a.depth_mm[:, :, 40:] == 0).mean() < 0.1
    b = generate_studio_take("msr20", 2, 1, seed=1, sensor="d435_640", moves=1, max_frames=1, empty_frames=1,
                             fps=15)
    assert b.depth_mm.shape == (1, 480, 640) and b.scene.sensor.intrinsics == D435_640X480 and b.fps == 15.0
    full = generate_studio_take("msr20", 2, 1, seed=1, moves=1, empty_frames=1, max_frames=1)
    assert full.fps == 15.0 and full.scene.sensor.intrinsics == KINECT_V1
    # the D435 is noisier than the Kinect at the same distance (its own z^2 law)
    assert scenes.SENSORS["d435"].noise_m_per_m2 > 2 * scenes.SENSORS["kinect_v1"].noise_m_per_m2


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="people"):
        generate_studio_take("msr20", 1, 1, people=5)
    with pytest.raises(ValueError, match="sensor"):
        generate_studio_take("msr20", 1, 1, sensor="kinect_v2")
    with pytest.raises(ValueError, match="fps"):
        generate_studio_take("msr20", 1, 1, fps=0)
    with pytest.raises(ValueError, match="set"):
        generate_studio_take("msr21", 1, 1)
    seq = Sequence("a", depth_mm=np.zeros((2, 240, 320), np.uint16))
    with pytest.raises(ValueError, match="extra arrays"):
        write_generic("/nonexistent-never-written", [seq], ["x"], KINECT_V1,
                      extra_arrays=lambda s: {"depth_mm": np.zeros(2)})


def test_written_dataset_reads_back(tmp_path):
    n = scenes.write_studio_takes("dance11", tmp_path / "studio", seed=1, subjects=[2], takes=1, moves=1, people=2,
                                  empty_frames=3, max_frames=12)
    assert n == 1
    ds = Dataset.open(tmp_path / "studio")
    assert len(ds) == 1 and ds.fps == 15.0 and ds.intrinsics == KINECT_V1
    seq = ds.load(ds.refs[0])
    mask = ds.load_extra(ds.refs[0], "person_mask")
    people = ds.load_extra(ds.refs[0], "people_joints_m")
    assert mask.shape == seq.depth_mm.shape and mask.dtype == np.int8
    np.testing.assert_array_equal(people[0], seq.joints_m)
    np.testing.assert_array_equal(ds.load_extra(ds.refs[0], "people_frame_labels")[0], seq.frame_labels)
    assert list(ds.load_extra(ds.refs[0], "people_roles")) == ["dancer", "dancer"]
    assert ds.load_extra(ds.refs[0], "no_such_array") is None
    room = ds.empty_room()
    assert room.shape == (3, 240, 320) and room.dtype == np.uint16
    with np.load(tmp_path / "studio" / scenes.EMPTY_ROOM_NPZ) as z:
        np.testing.assert_allclose(z["floor_plane"], StudioScene.draw(1).floor_plane())
    scenes.write_studio_takes("dance11", tmp_path / "nomask", seed=1, subjects=[2], takes=1, moves=1, mask=False,
                              empty_frames=1, max_frames=12)
    ds2 = Dataset.open(tmp_path / "nomask")
    assert ds2.load_extra(ds2.refs[0], "person_mask") is None
    assert ds2.load(ds2.refs[0]).depth_mm.tobytes() != seq.depth_mm.tobytes()  # one dancer instead of two


def test_cli_synth_studio(tmp_path):
    from click.testing import CliRunner

    from kerasdance.cli import cli

    out = tmp_path / "studio"
    r = CliRunner().invoke(cli, ["synth", "--set", "dance11", "--continuous", "--scene", "studio", "--people", "2",
                                 "--passerby", "--subjects", "4", "--takes", "1", "--moves", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 1 studio takes" in r.output
    ds = Dataset.open(out)
    assert [ref.name for ref in ds.refs] == ["studio_s04_t01"] and ds.empty_room() is not None
    assert list(ds.load_extra(ds.refs[0], "people_roles")) == ["dancer", "dancer", "passerby"]
    assert ds.load(ds.refs[0]).frame_labels is not None
    for args, message in ((["--people", "2"], "--people only apply with --scene studio"),
                          (["--scene", "studio"], "add --continuous"),
                          (["--scene", "studio", "--continuous", "--background"], "has its room"),
                          (["--continuous", "--subjects", "1,x"], "subject numbers"),
                          (["--subjects", "1"], "--subjects only applies with --continuous")):
        r = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "x"), *args])
        assert r.exit_code == 2 and message in r.output, (args, r.output)
    r = CliRunner().invoke(cli, ["synth", "--help"])
    assert "--scene" in r.output and "d435" in r.output
