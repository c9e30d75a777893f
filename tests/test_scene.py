"""kerasdance.scene: floor plane, background model, person blobs, room files (hand-built depth scenes)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.data import synthetic
from kerasdance.scene import Person, Plane, Room, SceneConfig, Segmenter, depth_sigma_mm, fit_floor, rank

CAM_HEIGHT_M = 1.0


def _rays(intr: Intrinsics) -> np.ndarray:
    v, u = np.mgrid[0 : intr.height, 0 : intr.width]
    return np.stack([(u - intr.cx) / intr.fx, (intr.cy - v) / intr.fy, np.ones(u.shape)], axis=-1)


def plane_depth(intr: Intrinsics, normal, offset: float, max_z_m: float = 9.0) -> np.ndarray:
    """``(H, W)`` depth in metres (inf where not seen) of the plane ``normal . p + offset = 0``."""
    r = _rays(intr)
    nr = r @ np.asarray(normal, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -offset / nr
    return np.where((s > 0) & (s < max_z_m), s, np.inf)


def box_depth(intr: Intrinsics, x0, x1, y0, y1, z_m) -> np.ndarray:
    """A board facing the camera at depth ``z_m`` spanning x0..x1, y0..y1 (metres)."""
    r = _rays(intr)
    x, y = r[..., 0] * z_m, r[..., 1] * z_m
    return np.where((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1), z_m, np.inf)


@functools.lru_cache(maxsize=8)
def _poses(label: int, subject: int) -> np.ndarray:
    seq = synthetic.generate_sequence("dance11", label, subject, 1, seed=0)
    return seq.joints_m[np.all(np.isfinite(seq.joints_m), axis=(1, 2))].astype(np.float64)


def dancer_joints(x_m: float = 0.0, z_m: float = 3.0, frame: int = 0, label: int = 0, subject: int = 1):
    """A synthetic dancer's joints (camera metres) standing on the floor ``CAM_HEIGHT_M`` below the camera."""
    poses = _poses(label, subject)
    j = poses[frame % len(poses)].copy()
    feet = np.min(j[:, 1])
    j[:, 1] += -CAM_HEIGHT_M - feet + 0.02
    j[:, 0] += x_m - j[6, 0]
    j[:, 2] += z_m - j[6, 2]
    return j


def sensor(z_m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Kinect-like noise (sigma 1.5 mm z^2), mm quantisation, 0 where nothing is seen."""
    fin = np.isfinite(z_m)
    zz = np.where(fin, z_m, 0.0)
    noisy = zz + rng.normal(0, 1, z_m.shape) * 0.0015 * zz**2
    return np.where(fin, np.clip(np.round(noisy * 1000), 0, 65535), 0).astype(np.uint16)


def room_z(intr: Intrinsics = KINECT_V1, wall_z_m: float = 4.5, furniture: bool = True) -> np.ndarray:
    """An empty room: floor ``CAM_HEIGHT_M`` below a level camera, a back wall, a side wall and a cupboard."""
    z = np.minimum(plane_depth(intr, (0, 1, 0), CAM_HEIGHT_M), plane_depth(intr, (0, 0, -1), wall_z_m))
    z = np.minimum(z, plane_depth(intr, (-1, 0, 0), 2.2))  # a wall on the right
    if furniture:
        z = np.minimum(z, box_depth(intr, -2.0, -1.4, -CAM_HEIGHT_M, -0.1, 3.8))  # a cupboard, 0.9 m high
    return z


def scene_frame(people=(), rng=None, intr: Intrinsics = KINECT_V1, room=None) -> np.ndarray:
    """A noisy frame of the room with dancers at ``people`` = [(x_m, z_m, frame), ...]."""
    rng = rng or np.random.default_rng(0)
    z = (room_z(intr) if room is None else room).copy()
    for p in people:
        x_m, z_m, k = (*p, 0)[:3]
        body = synthetic.render_frame(dancer_joints(x_m, z_m, k), intr)
        z = np.minimum(z, body)
    return sensor(z, rng)


def _learned(frames=8, **kw) -> Segmenter:
    rng = np.random.default_rng(1)
    seg = Segmenter(KINECT_V1, SceneConfig(learn_frames=frames, **kw))
    for _ in range(frames):
        seg.update(scene_frame((), rng))
    assert seg.state == "ready"
    return seg


# --- floor plane -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("height_m,tilt_deg", [(1.0, 0.0), (1.6, 12.0), (0.7, 25.0)])
def test_floor_fit_recovers_camera_height_and_tilt_with_outliers(height_m, tilt_deg):
    t = np.radians(tilt_deg)
    up = np.array([0.0, np.cos(t), -np.sin(t)])  # world up seen by a camera pitched down by tilt
    z = plane_depth(KINECT_V1, up, height_m)[::2, ::2]
    r = _rays(KINECT_V1)[::2, ::2]
    rng = np.random.default_rng(3)
    fin = np.isfinite(z)
    zn = z[fin] + rng.normal(0, 1, fin.sum()) * 0.0015 * z[fin] ** 2
    floor = r[fin] * zn[:, None]
    outliers = rng.uniform([-2, -1, 1], [2, 2, 6], (len(floor) // 2, 3))  # a third of the points
    plane = fit_floor(np.concatenate([floor, outliers]), np.random.default_rng(0))
    assert plane is not None
    assert abs(plane.offset - height_m) < 0.005
    assert abs(plane.tilt_deg() - tilt_deg) < 0.5


def test_floor_fit_refuses_a_wall_and_too_few_points():
    z = plane_depth(KINECT_V1, (0, 0, -1), 2.0)[::2, ::2]
    pts = _rays(KINECT_V1)[::2, ::2].reshape(-1, 3) * z.reshape(-1, 1)
    assert fit_floor(pts, np.random.default_rng(0)) is None  # a plane facing the camera is no floor
    assert fit_floor(pts[:10], np.random.default_rng(0)) is None


def test_segmenter_keeps_the_floor_across_frames():
    seg = _learned()
    assert seg.floor is not None and abs(seg.floor.offset - CAM_HEIGHT_M) < 0.01 and seg.floor.tilt_deg() < 1.0


# --- background model --------------------------------------------------------------------------------------------
def test_noisy_wall_gives_no_foreground_and_a_person_in_front_does():
    rng = np.random.default_rng(5)
    wall = plane_depth(KINECT_V1, (0, 0, -1), 3.5)  # fills the view: no floor
    seg = Segmenter(KINECT_V1, SceneConfig(learn_frames=10))
    for _ in range(10):
        seg.update(sensor(wall, rng))
    for _ in range(5):  # new noise draws: nothing is nearer than the noise allows
        g = seg.grid(sensor(wall, rng))
        assert seg.foreground(g).sum() == 0
    person = np.minimum(wall, synthetic.render_frame(dancer_joints(0.0, 3.0), KINECT_V1))
    fg = seg.foreground(seg.grid(sensor(person, rng)))
    assert fg.sum() > 500
    assert depth_sigma_mm(2000.0) == pytest.approx(6.0)


def test_holes_are_unknown_not_foreground():
    seg = _learned()
    frame = scene_frame((), np.random.default_rng(2))
    frame[:, ::3] = 0  # a third of the columns lost
    assert seg.foreground(seg.grid(frame)).sum() == 0


def test_background_learned_with_a_dancer_present_who_moves():
    rng = np.random.default_rng(6)
    seg = Segmenter(KINECT_V1, SceneConfig(learn_frames=20))
    for i in range(20):  # the dancer walks from left to right while the room is learned
        seg.update(scene_frame([(-1.2 + 0.12 * i, 3.0)], rng))
    people = seg.update(scene_frame([(0.0, 3.0)], rng))
    assert len(people) == 1 and abs(people[0].centroid_m[0]) < 0.25


def test_room_revealed_behind_a_dancer_who_stood_still():
    rng = np.random.default_rng(7)
    seg = Segmenter(KINECT_V1, SceneConfig(learn_frames=6, max_people=2))
    for _ in range(6):
        seg.update(scene_frame([(-1.0, 3.0)], rng))  # learned as background
    for _ in range(4):  # they walk away: the room behind them is revealed
        seg.update(scene_frame([(1.0, 3.0)], rng))
    people = seg.update(scene_frame([(-1.0, 3.0), (1.0, 3.0)], rng))
    assert len(people) == 2


# --- blobs --------------------------------------------------------------------------------------------------------
def test_two_people_apart_are_two_blobs_ranked_by_pick():
    seg = _learned(max_people=3)
    frame = scene_frame([(-0.9, 3.4), (0.9, 2.6)], np.random.default_rng(8))
    people = seg.update(frame)
    assert len(people) == 2
    xs = sorted(p.centroid_m[0] for p in people)
    assert xs[0] == pytest.approx(-0.9, abs=0.3) and xs[1] == pytest.approx(0.9, abs=0.3)
    assert rank(people, "nearest")[0].centroid_m[2] < 3.0
    assert rank(people, "largest")[0].area_m2 == max(p.area_m2 for p in people)
    assert abs(rank(people, "centre")[0].centroid_m[0]) == pytest.approx(min(abs(x) for x in xs))


def test_one_dancer_in_front_of_another_is_cut_apart_by_depth():
    seg = _learned(max_people=3)
    people = seg.update(scene_frame([(0.0, 2.2), (0.25, 3.6)], np.random.default_rng(9)))
    assert len(people) == 2
    near, far = sorted(p.centroid_m[2] for p in people)
    assert near < 2.4 and far > 3.2


def test_a_person_touching_the_floor_is_not_merged_with_it():
    seg = _learned()
    frame = scene_frame([(0.0, 3.0)], np.random.default_rng(10))
    (p,) = seg.update(frame)
    assert 1.4 < p.height_m < 2.3 and p.area_m2 < 1.0 and p.width_m < 1.5
    box, m = seg.mask(frame, p)
    v = np.arange(box[0].start, box[0].stop)
    feet_row = v[m.any(axis=1)].max()
    assert feet_row < 240 - 5  # the floor below the feet (to the image's bottom) is not the person


def test_wall_close_to_the_camera_nobody_floor_only():
    rng = np.random.default_rng(11)
    seg = Segmenter(KINECT_V1, SceneConfig(learn_frames=30))  # still learning: everything above the floor counts
    near_wall = sensor(plane_depth(KINECT_V1, (0, 0, -1), 0.7), rng)
    assert seg.update(near_wall) == []
    floor_only = sensor(plane_depth(KINECT_V1, (0, 1, 0), CAM_HEIGHT_M), rng)
    assert seg.update(floor_only) == []
    assert seg.update(np.zeros((240, 320), np.uint16)) == []
    seg = _learned()
    assert seg.update(scene_frame((), rng)) == []


def test_half_out_of_view_and_wrong_size():
    seg = _learned()
    people = seg.update(scene_frame([(2.0, 2.5)], np.random.default_rng(12)))  # the right half outside
    assert len(people) <= 1
    with pytest.raises(ValueError, match="240x320"):
        seg.update(np.zeros((120, 160), np.uint16))


def test_masked_depth_keeps_the_person_only():
    from kerasdance.config import DataConfig
    from kerasdance.data import preprocess as pp

    seg = _learned()
    frame = scene_frame([(0.6, 3.0)], np.random.default_rng(13))
    (p,) = seg.update(frame)
    out = seg.masked_depth(frame, p)
    body = np.isfinite(synthetic.render_frame(dancer_joints(0.6, 3.0), KINECT_V1))
    kept = out > 0
    assert np.array_equal(out[kept], frame[kept])
    assert (kept & ~body).sum() < 0.02 * body.sum()  # hardly anything but the body
    assert (kept & body).sum() > 0.9 * body.sum()  # nearly all of it
    u, v, z = pp.frame_stats(out, DataConfig())
    uc, vc, zc = KINECT_V1.project(p.centroid_m)
    assert abs(u - uc) < 10 and abs(z - zc * 1000) < 150


# --- rooms ---------------------------------------------------------------------------------------------------------
def test_room_round_trip_and_empty_room_frames(tmp_path):
    rng = np.random.default_rng(14)
    frames = np.stack([scene_frame((), rng) for _ in range(6)])
    room = Room.from_frames(frames, KINECT_V1)
    assert room.floor is not None and abs(room.floor.offset - CAM_HEIGHT_M) < 0.01
    room.save(tmp_path / "room.npz")
    back = Room.load(tmp_path / "room.npz")
    assert np.array_equal(back.background_mm, room.background_mm) and back.intrinsics == KINECT_V1
    assert np.allclose(back.floor.normal, room.floor.normal)
    np.savez(tmp_path / "frames.npz", depth_mm=frames)
    assert np.array_equal(Room.load(tmp_path / "frames.npz").background_mm, room.background_mm)
    seg = Segmenter(KINECT_V1, room=back)
    assert seg.state == "ready"
    assert len(seg.update(scene_frame([(0.0, 3.0)], rng))) == 1
    big = Segmenter(KINECT_V1.scaled(640, 480), room=back)  # resampled to the finer grid
    assert big.background_mm.shape == big.grid_shape


def test_bad_room_files(tmp_path):
    from kerasdance.errors import DataFormatError

    with pytest.raises(FileNotFoundError):
        Room.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataFormatError, match="background_mm"):
        Room.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(DataFormatError):
        Room.load(tmp_path / "junk.npz")
    room = Room(np.zeros((120, 160), np.float32), KINECT_V1)
    with pytest.raises(ValueError, match="aspect"):
        Segmenter(Intrinsics(width=320, height=320, cy=160.0), room=room)
    with pytest.raises(ValueError, match="pick"):
        SceneConfig(pick="tallest")


def test_plane_height_sign():
    plane = Plane(np.array([0.0, 1.0, 0.0]), 1.0)
    assert plane.height(np.array([0.0, -1.0, 3.0])) == pytest.approx(0.0)
    assert plane.height(np.array([0.0, 0.0, 3.0])) == pytest.approx(1.0)
    assert Person.__doc__


def test_prepare_masks_a_studio_dataset_to_its_dancer(tmp_path):
    """A dataset with empty_room.npz: prepare's person statistics follow the labelled dancer, not the floor."""
    from kerasdance.config import DataConfig
    from kerasdance.data import scenes
    from kerasdance.data.dataset import Dataset
    from kerasdance.data.pipeline import prepare

    scenes.write_studio_takes("dance11", tmp_path, subjects=[1], takes=1, people=2, max_frames=40, empty_frames=8)
    ds = Dataset.open(tmp_path)
    seq = ds.load(ds.refs[0])
    truth = seq.intrinsics.project(np.nanmean(seq.joints_m, axis=1))  # u, v, z of the labelled dancer
    stats = prepare(ds, ds.refs, DataConfig(crop_size=32)).frame_stats
    err_u = np.abs(stats[:, 0] - truth[:, 0])
    assert np.mean(err_u < 8) >= 0.9 and np.all(err_u < 30)  # the median column of the body vs its joints' mean
    assert np.all(np.abs(stats[:, 2] / 1000 - truth[:, 2]) < 0.25)
    masked = ds.load(ds.refs[0])
    from kerasdance.scene import Room, mask_sequence

    out = mask_sequence(masked.depth_mm, masked.intrinsics, Room.from_frames(ds.empty_room(), ds.intrinsics),
                        masked.joints_m)
    assert 0 < (out > 0).mean() < 0.1  # the dancer only: a small share of the frame


def test_a_recording_without_a_room_keeps_the_whole_dancer():
    """MSR-style frames (background 0, no floor): the learned 'background' is the dancer, so nothing is subtracted,
    and a plane through the dancer's shoulders (points under it) is no floor. Msr20 a20 s06 e03 is a pose whose
    up-facing body points once made a floor that cut the dancer off."""
    seq = synthetic.generate_sequence("msr20", 19, 6, 3, seed=0)
    seg = Segmenter(seq.intrinsics, SceneConfig(learn_frames=20, floor_retry_frames=1))
    for d in seq.depth_mm:
        people = seg.update(d)
        assert seg.floor is None and len(people) == 1
        kept = seg.masked_depth(d, people[0]) > 0
        assert kept.sum() >= 0.97 * (d > 0).sum()
    assert seg.state == "ready" and not seg.background_mm.any()
