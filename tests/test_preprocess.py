import dataclasses

import numpy as np
import pytest

from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.config import DataConfig
from kerasdance.data import preprocess as pp

CFG = DataConfig(frames=8, crop_size=32)


def _person_frame(u0=160, v0=120, z_mm=2500, h=240, w=320, wall_mm=None):
    d = np.zeros((h, w), np.uint16)
    if wall_mm is not None:
        d[:] = wall_mm
    d[v0 - 60 : v0 + 60, u0 - 15 : u0 + 15] = z_mm  # a 30x120 px "body"
    return d


def test_projection_round_trip():
    rng = np.random.default_rng(0)
    xyz = np.c_[rng.uniform(-1, 1, 50), rng.uniform(-1, 1, 50), rng.uniform(1, 4, 50)]
    back = KINECT_V1.unproject(KINECT_V1.project(xyz))
    assert np.abs(back - xyz).max() < 1e-9
    # the formula of the MSR-Action3D format: u = 160 + 285.63 x/z, v = 120 - 285.63 y/z
    uvz = KINECT_V1.project([[0.5, 0.25, 2.0]])
    np.testing.assert_allclose(uvz[0], [160 + 285.63 * 0.25, 120 - 285.63 * 0.125, 2.0])


def test_outside_tells_points_beyond_the_image():
    # At 2 m the 320 x 240 Kinect v1 image spans x in [-1.12, 1.12) m and y in (-0.84, 0.84] m.
    pts = np.array([[0.0, 0.0, 2.0], [0.0, -0.9, 2.0], [0.0, 0.9, 2.0], [1.2, 0.0, 2.0], [-1.2, 0.0, 2.0],
                    [0.0, -0.8, 2.0], [0.0, 0.0, -1.0], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(KINECT_V1.outside(pts), [False, True, True, True, True, False, True, False])
    assert KINECT_V1.outside(pts.reshape(2, 4, 3)).shape == (2, 4)


def test_frame_stats_finds_body_in_front_of_wall():
    st = pp.frame_stats(_person_frame(200, 130, 2500, wall_mm=4500), CFG)
    assert abs(st.u - 200) <= 1 and abs(st.v - 130) <= 1 and st.z_mm == 2500


def test_frame_stats_empty_frame_is_nan():
    st = pp.frame_stats(np.zeros((240, 320), np.uint16), CFG)
    assert np.isnan(st.u) and np.isnan(st.z_mm)
    with pytest.raises(ValueError, match="no person"):
        pp.crop_from_stats(np.array([st]), KINECT_V1, CFG)


def test_crop_side_is_metric():
    crop = pp.find_crop(np.stack([_person_frame(z_mm=2000)] * 3), KINECT_V1, CFG)
    assert crop.side_px == pytest.approx(285.63 * CFG.box_m / 2.0)
    far = pp.find_crop(np.stack([_person_frame(z_mm=4000)] * 3), KINECT_V1, CFG)
    assert far.side_px == pytest.approx(crop.side_px / 2)


def test_crop_frames_normalises_depth_and_background():
    depth = np.stack([_person_frame(z_mm=2500, wall_mm=4500)])
    crop = pp.find_crop(depth, KINECT_V1, CFG)
    x = pp.crop_frames(depth, crop, CFG)
    assert x.shape == (1, 32, 32)
    centre = x[0, 16, 16]
    assert centre == pytest.approx(0.0)  # body at the body depth
    assert x[0, 0, 0] == pp.BACKGROUND  # the wall is outside the body band


def test_crop_frames_index_reads_those_frames_in_place():
    rng = np.random.default_rng(3)
    ring = np.stack([_person_frame(z_mm=z) for z in (2000, 2400, 2500, 2600, 3000)])
    ring = ring + rng.integers(0, 40, ring.shape).astype(ring.dtype)  # every frame different
    crop = pp.find_crop(ring, KINECT_V1, CFG)
    idx = np.array([4, 0, 0, 2])
    want = pp.crop_frames(ring[idx], crop, CFG)
    assert not np.array_equal(want[0], want[1])
    np.testing.assert_array_equal(pp.crop_frames(ring, crop, CFG, index=idx), want)
    np.testing.assert_array_equal(pp.crop_frames(ring[:, ::-1], crop, CFG, index=idx),  # a non-contiguous ring
                                  pp.crop_frames(ring[idx, ::-1], crop, CFG))


def test_supersampled_crop_pixels_are_area_averages():
    # A crop whose 4x4 samples per cell fall on pixel centres exactly: sample i of a row reads pixel i, so each
    # crop pixel must be the mean of its 4x4 block of normalised pixels (holes and wall count as BACKGROUND).
    cfg = dataclasses.replace(CFG, crop_size=8, crop_supersample=4)
    rng = np.random.default_rng(5)
    depth = rng.choice([0, 2300, 2500, 2700, 4500], size=(2, 32, 32)).astype(np.uint16)
    crop = pp.Crop(15.5, 15.5, 32.0, 0.0, 2.5)
    x = pp.crop_frames(depth, crop, cfg)
    d = depth.astype(np.float64)
    fg = (d >= cfg.min_depth_mm) & (np.abs(d - 2500.0) <= cfg.depth_band_mm)
    norm = np.where(fg, (d - 2500.0) / cfg.depth_scale_mm, pp.BACKGROUND)
    want = norm.reshape(2, 8, 4, 8, 4).mean(axis=(2, 4))
    assert x.shape == (2, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x, want, atol=1e-6)
    # Cells that mix body and background: between the body's values (|x| <= 0.2) and BACKGROUND, which one pixel
    # per cell could never give.
    assert np.mean((x > 0.21) & (x < 0.99)) > 0.5
    nearest = pp.crop_frames(depth, crop, dataclasses.replace(cfg, crop_supersample=1))
    assert not np.allclose(nearest, want)


def test_crop_supersample_is_checked():
    with pytest.raises(ValueError, match="crop_supersample"):
        dataclasses.replace(CFG, crop_supersample=0)


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.0])
def test_crop_inverse_is_exact_below_1mm(angle):
    rng = np.random.default_rng(1)
    joints = np.c_[rng.uniform(-0.8, 0.8, 40), rng.uniform(-1, 1, 40), rng.uniform(1.5, 4, 40)]
    crop = pp.Crop(171.3, 118.2, 290.0, angle, 2.7)
    intr = Intrinsics(300.0, 310.0, 158.0, 121.0, 320, 240)
    norm = pp.camera_to_crop(joints, crop, intr, CFG)
    back = pp.crop_to_camera(norm, crop, intr, CFG)
    assert np.abs(back - joints).max() * 1000 < 1.0


def test_joint_lands_on_its_pixel_in_the_crop():
    z = 2.5
    depth = np.stack([_person_frame(z_mm=2500)])
    crop = pp.find_crop(depth, KINECT_V1, CFG)
    joint = KINECT_V1.unproject([[crop.u_c + 20, crop.v_c - 10, z]])
    a, b, c = pp.camera_to_crop(joint, crop, KINECT_V1, CFG)[0]
    assert a == pytest.approx(20 / (crop.side_px / 2)) and b == pytest.approx(-10 / (crop.side_px / 2))
    assert c == pytest.approx(0.0)


def test_resample_indices():
    np.testing.assert_array_equal(pp.resample_indices(5, 5), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(pp.resample_indices(3, 5), [0, 0, 1, 2, 2])
    np.testing.assert_array_equal(pp.resample_indices(100, 3), [0, 50, 99])
    with pytest.raises(ValueError):
        pp.resample_indices(0, 4)


def test_add_motion_channel():
    x = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    y = pp.add_motion(x, CFG)
    assert y.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(y[0, ..., 1], 0)
    np.testing.assert_array_equal(y[2, ..., 1], 4)
    assert pp.add_motion(x, DataConfig(motion_channel=False)).shape == (3, 2, 2, 1)
    batch = np.full((2, 3, 2, 2, 2), np.nan, np.float32)  # written into a batch's slot: the same values, in place
    assert np.shares_memory(pp.add_motion(x, CFG, out=batch[1]), batch)
    np.testing.assert_array_equal(batch[1], y)
    assert np.isnan(batch[0]).all()
    one = np.full((3, 2, 2, 1), np.nan, np.float32)
    np.testing.assert_array_equal(pp.add_motion(x, DataConfig(motion_channel=False), out=one), x[..., None])


def test_make_window_from_depth_equals_the_cached_crops_path():
    """Depth frames + crop (predict, the device) and pre-cut cached crops (training) give the same window."""
    rng = np.random.default_rng(0)
    depth = np.stack([_person_frame(u0=150 + 3 * k) for k in range(12)])
    depth[depth > 0] += rng.integers(0, 300, int((depth > 0).sum())).astype(np.uint16)  # a body with relief
    crop = pp.find_crop(depth, KINECT_V1, CFG)
    idx = pp.window_indices(len(depth), CFG)
    np.testing.assert_array_equal(idx, pp.resample_indices(12, CFG.frames))
    cache = pp.crop_frames(depth, crop, CFG).astype(pp.CROP_DTYPE)  # what pipeline.prepare stores
    x = pp.make_window(depth, idx, CFG, crop=crop)
    assert x.shape == (8, 32, 32, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x, pp.make_window(cache, idx, CFG))
    # rounded to the cache's dtype, and the motion channel is the difference of those rounded frames
    np.testing.assert_array_equal(x[..., 0], cache[idx].astype(np.float32))
    np.testing.assert_array_equal(x[1:, ..., 1], x[1:, ..., 0] - x[:-1, ..., 0])
    assert not np.array_equal(x[..., 0], pp.crop_frames(depth[idx], crop, CFG))  # float32 crops differ: rounded


def test_make_window_transform_runs_before_the_motion_channel():
    crops = np.random.default_rng(0).uniform(-1, 1, (10, 32, 32)).astype(pp.CROP_DTYPE)
    idx = np.arange(2, 10)
    out = np.full((8, 32, 32, 2), np.nan, np.float32)
    x = pp.make_window(crops, idx, CFG, transform=lambda c: c[:, :, ::-1] * 2, out=out)
    assert x is out
    flipped = crops[idx][:, :, ::-1].astype(np.float32) * 2
    np.testing.assert_array_equal(x[..., 0], flipped)
    np.testing.assert_array_equal(x[1:, ..., 1], flipped[1:] - flipped[:-1])


def test_joint_targets_mask_missing_joints():
    depth = np.stack([_person_frame()] * 3)
    crop = pp.find_crop(depth, KINECT_V1, CFG)
    joints = np.zeros((3, 20, 3), np.float32)
    joints[..., 2] = 2.5
    joints[0, 5] = np.nan
    norm, mask = pp.joint_targets(joints, crop, KINECT_V1, CFG, 3)
    assert norm.shape == (3, 20, 3) and mask.shape == (3, 20)
    assert mask[0, 5] == 0 and mask[-1, 5] == 1 and np.all(norm[0, 5] == 0)
    none_norm, none_mask = pp.joint_targets(None, crop, KINECT_V1, CFG, 3)
    assert not none_mask.any() and not none_norm.any()


def test_skeleton_features_shape_and_velocity():
    j = np.zeros((4, 20, 3))
    j[:, :, 0] = np.arange(4)[:, None] * 0.1  # moving right
    plain = DataConfig(frames=8, crop_size=32, skeleton_repair=False)  # (frame 0's all-zero rows: kept as they are)
    f = pp.skeleton_features(j, plain)
    assert f.shape == (4, plain.skeleton_features)
    f6 = f.reshape(4, 20, 6)
    np.testing.assert_allclose(f6[1:, :, 3], 0.4, atol=1e-6)  # velocity * 4


def test_round_to_crop_dtype_is_the_float16_conversion():
    rng = np.random.default_rng(0)
    for scale in (1e-6, 1e-4, 1e-2, 1.0, 100.0, 3e4):
        x = (rng.standard_normal(50_000) * scale).astype(np.float32)
        x = x[np.abs(x) < 65504]
        x[:1000] = rng.integers(-4000, 4000, 1000).astype(np.float32) / np.float32(2**11)  # halfway cases
        want = x.astype(np.float16).astype(np.float32)
        got = pp.round_to_crop_dtype(x.copy())
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.float32
