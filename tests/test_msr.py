"""MSR-Action3D readers/writers on hand-built files: values, quirks, bad input, byte-exact round trips."""

import logging
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerasdance.camera import KINECT_V1
from kerasdance.data import msr
from kerasdance.data.types import Sequence
from kerasdance.errors import DataFormatError

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def depth_bytes(frames, cols, rows, values):
    """Hand-built ``_sdepth.bin``: int32 header then int32 values, row-major."""
    return struct.pack("<3i", frames, cols, rows) + struct.pack(f"<{len(values)}i", *values)


def skeleton_text(rows, newline="\n"):
    return newline.join(" ".join(str(v) for v in r) for r in rows) + newline


def frame_rows(frame=0, conf=1):
    """20 hand-made ``x y z c`` rows: joint j of frame f at (j/10, -j/20, 2 + f/10)."""
    return [(j / 10, -j / 20, 2 + frame / 10, conf) for j in range(20)]


# --- names ---------------------------------------------------------------------------------------------------
def test_names():
    assert msr.format_name(1, 2, 3, "") == "a01_s02_e03"
    assert msr.parse_name("/x/a20_s10_e03_skeleton3D.txt") == (20, 10, 3, msr.KIND_SKELETON3D)
    assert msr.parse_name("a01_s01_e01_sdepth.bin").kind == msr.KIND_DEPTH
    assert msr.parse_name("a01_s01_e01_skeleton.txt").kind == msr.KIND_SCREEN
    assert msr.parse_name("a07_s03_e02") == (7, 3, 2, "")
    for kind in msr.KIND_SUFFIXES:
        name = msr.format_name(4, 5, 1, kind)
        assert msr.parse_name(name) == (4, 5, 1, kind)
    assert len(msr.MSR_ACTIONS) == 20 and msr.MSR_ACTIONS[11] == "side-boxing"
    assert all(len(s) == 8 for s in (msr.AS1, msr.AS2, msr.AS3))


@pytest.mark.parametrize("name", ["a1_s01_e01_sdepth.bin", "a00_s01_e01_sdepth.bin", "b01_s01_e01_sdepth.bin",
                                  "a01_s01_e01_rgb.avi", "readme.txt", "", "a01_s01_e01_sdepth.bin.bak"])
def test_bad_names(name):
    with pytest.raises(DataFormatError, match="a01|MSR|start"):
        msr.parse_name(f"/data/{name}" if name else "/data/")


# --- depth ---------------------------------------------------------------------------------------------------
def test_read_depth_hand_built(tmp_path):
    values = list(range(2 * 3 * 4))
    values[0], values[5], values[23] = -7, 70000, 1234
    p = tmp_path / "a01_s01_e01_sdepth.bin"
    p.write_bytes(depth_bytes(2, 4, 3, values))
    d = msr.read_depth_bin(p)
    assert d.dtype == np.uint16 and d.shape == (2, 3, 4)
    assert d[0, 0, 0] == 0  # negative -> 0
    assert d[0, 1, 1] == 65535  # 70000 clipped
    assert d[0, 0, 3] == 3 and d[0, 1, 0] == 4  # row-major, row 0 first
    assert d[1, 2, 3] == 1234


def test_read_depth_daily_activity_variant(tmp_path):
    frames, cols, rows = 2, 3, 2
    values = np.arange(1, frames * rows * cols + 1).reshape(frames, rows, cols) * 100
    body = b"".join(struct.pack(f"<{cols}i", *values[f, r]) + bytes([1] * cols)
                    for f in range(frames) for r in range(rows))
    p = tmp_path / "a01_s01_e01_sdepth.bin"
    p.write_bytes(struct.pack("<3i", frames, cols, rows) + body)
    np.testing.assert_array_equal(msr.read_depth_bin(p), values)


def test_depth_round_trip_is_byte_exact(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.integers(0, 4000, (3, 6, 8)).astype(np.uint16)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    msr.write_depth_bin(a, depth)
    assert a.read_bytes()[:12] == struct.pack("<3i", 3, 8, 6)
    assert a.read_bytes() == depth_bytes(3, 8, 6, depth.astype(int).ravel().tolist())
    back = msr.read_depth_bin(a)
    np.testing.assert_array_equal(back, depth)
    msr.write_depth_bin(b, back)
    assert a.read_bytes() == b.read_bytes()


def test_zero_depth_frames_warn_and_are_marked(tmp_path, caplog):
    depth = np.zeros((4, 3, 5), np.uint16)
    depth[1:3, 1, 2] = 900
    stem = tmp_path / "a01_s01_e01"
    msr.write_depth_bin(f"{stem}_sdepth.bin", depth)
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        seq = msr.load_msr_sequence(stem)
    assert seq.depth_valid.tolist() == [False, True, True, False]
    assert "a01_s01_e01_sdepth.bin" in caplog.text and "zero" in caplog.text
    caplog.clear()
    msr.write_depth_bin(f"{stem}_sdepth.bin", np.zeros((3, 3, 5), np.uint16))
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        seq = msr.load_msr_sequence(stem)
    assert not seq.depth_valid.any() and "a01_s01_e01_sdepth.bin" in caplog.text


@pytest.mark.parametrize("data, what", [
    (b"", "empty"),
    (b"\x01\x00\x00", "12-byte"),
    (struct.pack("<3i", 0, 4, 3), "frames"),
    (struct.pack("<3i", -5, 4, 3), "frames"),
    (struct.pack("<3i", 100_001, 4, 3), "frames"),
    (struct.pack("<3i", 1, 0, 3), "columns"),
    (struct.pack("<3i", 1, 4, 5000), "rows"),
    (struct.pack("<3i", 1, 4, 3) + bytes(47), "truncated"),
    (struct.pack("<3i", 1, 4, 3) + bytes(49), "truncated"),
    (struct.pack("<3i", 2, 4, 3) + bytes(48), "truncated"),
])  # fmt: skip
def test_bad_depth_files(tmp_path, data, what):
    p = tmp_path / "a01_s01_e01_sdepth.bin"
    p.write_bytes(data)
    with pytest.raises(DataFormatError) as e:
        msr.read_depth_bin(p)
    assert str(p) in str(e.value) and what in str(e.value) and "\n" not in str(e.value)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        msr.read_depth_bin(tmp_path / "a01_s01_e01_sdepth.bin")
    with pytest.raises(FileNotFoundError):
        msr.read_skeleton3d(tmp_path / "a01_s01_e01_skeleton3D.txt")
    with pytest.raises(FileNotFoundError):
        msr.load_msr_sequence(tmp_path / "a01_s01_e01")
    with pytest.raises(DataFormatError):
        msr.load_msr_sequence(tmp_path / "not_a_stem")


@FUZZ
@given(cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4))
def test_depth_fuzz_only_data_format_error(tmp_path, cut, flips):
    good = bytearray(depth_bytes(2, 5, 4, list(range(40))))
    for pos, byte in flips:
        if pos < len(good):
            good[pos] = byte
    p = tmp_path / "a01_s01_e01_sdepth.bin"
    p.write_bytes(bytes(good[:cut]))
    try:
        d = msr.read_depth_bin(p)
    except DataFormatError as e:
        assert str(p) in str(e)
    else:
        assert d.dtype == np.uint16 and d.ndim == 3


@FUZZ
@given(data=st.binary(max_size=200))
def test_depth_random_bytes_only_data_format_error(tmp_path, data):
    p = tmp_path / "a01_s01_e01_sdepth.bin"
    p.write_bytes(data)
    try:
        msr.read_depth_bin(p)
    except DataFormatError:
        pass


# --- skeletons -----------------------------------------------------------------------------------------------
def test_read_skeleton3d_hand_built(tmp_path):
    p = tmp_path / "a01_s01_e01_skeleton3D.txt"
    p.write_text(skeleton_text(frame_rows(0, 0.5) + frame_rows(1, 1)))
    joints, conf = msr.read_skeleton3d(p)
    assert joints.shape == (2, 20, 3) and joints.dtype == np.float32 and conf.shape == (2, 20)
    np.testing.assert_allclose(joints[1, 7], [0.7, -0.35, 2.1], rtol=1e-6)
    np.testing.assert_allclose(conf[0], 0.5)
    np.testing.assert_allclose(conf[1], 1.0)


def test_whitespace_quirks_read_the_same(tmp_path):
    rows = frame_rows(0) + frame_rows(1)
    clean = tmp_path / "a01_s01_e01_skeleton3D.txt"
    clean.write_text(skeleton_text(rows))
    messy = tmp_path / "a01_s01_e02_skeleton3D.txt"
    text = "\n\n" + "\r\n".join("  " + " \t".join(str(v) for v in r) + "   " + ("\r\n" if i % 7 == 0 else "")
                                for i, r in enumerate(rows)) + "\r\n\r\n\n"
    messy.write_bytes(text.encode())
    for a, b in zip(msr.read_skeleton3d(clean), msr.read_skeleton3d(messy)):
        np.testing.assert_array_equal(a, b)


def test_three_column_rows_get_confidence_one(tmp_path, caplog):
    p = tmp_path / "a01_s01_e01_skeleton3D.txt"
    p.write_text(skeleton_text([r[:3] for r in frame_rows(0)]))
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        joints, conf = msr.read_skeleton3d(p)
    np.testing.assert_allclose(conf, 1.0)
    np.testing.assert_allclose(joints[0, 3], [0.3, -0.15, 2.0], rtol=1e-6)
    assert p.name in caplog.text and "3 columns" in caplog.text


def test_incomplete_trailing_frame_dropped(tmp_path, caplog):
    p = tmp_path / "a01_s01_e01_skeleton3D.txt"
    p.write_text(skeleton_text(frame_rows(0) + frame_rows(1) + frame_rows(2)[:7]))
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        joints, _ = msr.read_skeleton3d(p)
    assert joints.shape == (2, 20, 3)
    assert p.name in caplog.text and "multiple of 20" in caplog.text


def test_invalid_rows_read_as_nan(tmp_path, caplog):
    rows = frame_rows(0)
    rows[3] = ("2.1475e+09", "2.1475e+09", "2.1475e+09", 0)
    rows[5] = ("nan", "nan", "nan", 1)
    rows[8] = (0.1, 0.2, 2147483648, 1)
    p = tmp_path / "a01_s01_e01_skeleton.txt"
    p.write_text(skeleton_text(rows))
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        uvd, conf = msr.read_skeleton_screen(p)
    bad = np.isnan(uvd).any(axis=-1)[0]
    assert np.flatnonzero(bad).tolist() == [3, 5, 8] and np.isnan(uvd[0, bad]).all()
    assert conf[0, bad].tolist() == [0, 0, 0] and conf[0, ~bad].min() == 1
    assert p.name in caplog.text


@pytest.mark.parametrize("text, what", [
    ("", "empty"),
    ("\n \r\n\t\n", "empty"),
    (skeleton_text(frame_rows(0)[:19]), "fewer"),
    (skeleton_text(frame_rows(0)).replace("0.5", "0.5x", 1), "non-numeric"),
    (skeleton_text(frame_rows(0)).replace("0.5 ", "0.5 7 ", 1), "columns"),
    ("54 20\n" + skeleton_text(frame_rows(0)), "columns"),
])  # fmt: skip
def test_bad_skeleton_files(tmp_path, text, what):
    p = tmp_path / "a01_s01_e01_skeleton3D.txt"
    p.write_text(text)
    with pytest.raises(DataFormatError) as e:
        msr.read_skeleton3d(p)
    assert str(p) in str(e.value) and what in str(e.value)


def test_non_text_skeleton(tmp_path):
    p = tmp_path / "a01_s01_e01_skeleton.txt"
    p.write_bytes(b"\xff\xfe\x00\x01" * 30)
    with pytest.raises(DataFormatError, match="a01_s01_e01_skeleton.txt"):
        msr.read_skeleton_screen(p)


@FUZZ
@given(data=st.one_of(
    st.binary(max_size=300),
    st.text(alphabet="0123456789.-+eE naNif\n\r\t", max_size=600),
    st.integers(0, 2000).map(lambda n: skeleton_text(frame_rows(0) + frame_rows(1))[:n]),
))  # fmt: skip
def test_skeleton_fuzz_only_data_format_error(tmp_path, data):
    p = tmp_path / "a01_s01_e01_skeleton3D.txt"
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    for reader in (msr.read_skeleton3d, msr.read_skeleton_screen):
        try:
            joints, conf = reader(p)
        except DataFormatError as e:
            assert str(p) in str(e)
        else:
            assert joints.shape[1:] == (20, 3) and conf.shape == joints.shape[:2]


finite = st.floats(-50, 50, allow_nan=False, width=32)


@FUZZ
@given(
    frames=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1.0, 300.0, 1e4]),
)
def test_skeleton_text_round_trip_is_byte_exact(tmp_path, frames, seed, scale):
    rng = np.random.default_rng(seed)
    xyz = (rng.uniform(-1, 1, (frames, 20, 3)) * scale).astype(np.float32)
    xyz[..., 2] = np.abs(xyz[..., 2]) + 0.01
    xyz[rng.random((frames, 20)) < 0.2] = np.nan
    conf = rng.random((frames, 20)).astype(np.float32)
    for writer, reader in ((msr.write_skeleton3d, msr.read_skeleton3d),
                           (msr.write_skeleton_screen, msr.read_skeleton_screen)):
        a, b = tmp_path / "a.txt", tmp_path / "b.txt"
        writer(a, xyz, conf)
        joints, c = reader(a)
        assert np.array_equal(np.isnan(joints), np.isnan(xyz))
        np.testing.assert_allclose(joints, xyz, rtol=1e-5, atol=1e-6)
        writer(b, joints, c)
        assert a.read_bytes() == b.read_bytes()


def test_screen_writer_writes_invalid_marker(tmp_path):
    uvd = np.full((1, 20, 3), 100.0, np.float32)
    uvd[0, 2] = np.nan
    p = tmp_path / "s.txt"
    msr.write_skeleton_screen(p, uvd)
    line = p.read_text().splitlines()[2].split()
    assert [float(v) for v in line] == [2147483648.0] * 3 + [0.0]


# --- sequences -----------------------------------------------------------------------------------------------
def make_seq(action=1, subject=1, episode=1, frames=4, h=6, w=8, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.integers(500, 4000, (frames, h, w)).astype(np.uint16)
    joints = np.stack([rng.uniform(-0.8, 0.8, (frames, 20)), rng.uniform(-0.8, 0.8, (frames, 20)),
                       rng.uniform(1.5, 3.5, (frames, 20))], axis=-1).astype(np.float32)
    return Sequence(msr.format_name(action, subject, episode, ""), depth, joints, label=action - 1,
                    subject=subject, episode=episode)


def test_projection_consistency_between_screen_and_3d(tmp_path):
    seq = make_seq(frames=2, h=240, w=320)
    seq.joints_m[0, 0] = (0.5, 0.25, 2.0)
    msr.write_msr_sequence(tmp_path, seq)
    uvd, _ = msr.read_skeleton_screen(tmp_path / "a01_s01_e01_skeleton.txt")
    np.testing.assert_allclose(uvd[0, 0], [160 + 285.63 * 0.25, 120 - 285.63 * 0.125, 500.0], atol=1e-4)
    joints3d, _ = msr.read_skeleton3d(tmp_path / "a01_s01_e01_skeleton3D.txt")
    uvz = KINECT_V1.project(joints3d)
    np.testing.assert_allclose(uvd[..., :2], uvz[..., :2], atol=1e-3)
    np.testing.assert_allclose(uvd[..., 2], 250 * uvz[..., 2], atol=1e-3)
    # only the screen file: metres recovered with z = d / 250 and unproject
    (tmp_path / "a01_s01_e01_skeleton3D.txt").unlink()
    loaded = msr.load_msr_sequence(tmp_path / "a01_s01_e01")
    np.testing.assert_allclose(loaded.joints_m, seq.joints_m, atol=1e-4)


def test_load_sequence_fields_and_byte_exact_rewrite(tmp_path):
    seq = make_seq(action=7, subject=3, episode=2)
    msr.write_msr_sequence(tmp_path / "a", seq)
    loaded = msr.load_msr_sequence(tmp_path / "a" / "a07_s03_e02")
    assert (loaded.name, loaded.label, loaded.subject, loaded.episode) == ("a07_s03_e02", 6, 3, 2)
    assert loaded.intrinsics == KINECT_V1.scaled(8, 6) and loaded.depth_valid.all()
    np.testing.assert_array_equal(loaded.depth_mm, seq.depth_mm)
    np.testing.assert_allclose(loaded.joints_m, seq.joints_m, atol=1e-6)
    msr.write_msr_sequence(tmp_path / "b", loaded)
    for kind in (msr.KIND_DEPTH, msr.KIND_SKELETON3D):  # the screen file is re-projected from rounded metres
        suffix = msr.KIND_SUFFIXES[kind]
        a = (tmp_path / "a" / f"a07_s03_e02{suffix}").read_bytes()
        b = (tmp_path / "b" / f"a07_s03_e02{suffix}").read_bytes()
        assert a == b, kind
    uvd_a, _ = msr.read_skeleton_screen(tmp_path / "a" / "a07_s03_e02_skeleton.txt")
    uvd_b, _ = msr.read_skeleton_screen(tmp_path / "b" / "a07_s03_e02_skeleton.txt")
    np.testing.assert_allclose(uvd_a, uvd_b, atol=1e-3)
    (tmp_path / "b" / "a07_s03_e02_skeleton3D.txt").unlink()  # screen file is in 320x240 pixels at any depth size
    np.testing.assert_allclose(msr.load_msr_sequence(tmp_path / "b" / "a07_s03_e02").joints_m, seq.joints_m, atol=1e-4)


def test_frame_count_mismatch_trims_with_warning(tmp_path, caplog):
    seq = make_seq(frames=5)
    msr.write_msr_sequence(tmp_path, seq)
    msr.write_skeleton3d(tmp_path / "a01_s01_e01_skeleton3D.txt", seq.joints_m[:3])
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        loaded = msr.load_msr_sequence(tmp_path / "a01_s01_e01")
    assert loaded.depth_mm.shape[0] == loaded.joints_m.shape[0] == len(loaded.depth_valid) == 3
    assert "a01_s01_e01_sdepth.bin" in caplog.text and "trimmed" in caplog.text


def test_screen_shorter_than_real_world_twin(tmp_path):
    seq = make_seq(frames=4)
    msr.write_msr_sequence(tmp_path, seq)
    uvd, conf = msr.read_skeleton_screen(tmp_path / "a01_s01_e01_skeleton.txt")
    msr.write_skeleton_screen(tmp_path / "a01_s01_e01_skeleton.txt", uvd[:2], conf[:2])
    loaded = msr.load_msr_sequence(tmp_path / "a01_s01_e01")  # the 3D file wins
    assert loaded.joints_m.shape[0] == 4


def test_skeleton_only_and_depth_only(tmp_path):
    seq = make_seq()
    msr.write_msr_sequence(tmp_path, seq)
    (tmp_path / "a01_s01_e01_sdepth.bin").unlink()
    loaded = msr.load_msr_sequence(tmp_path / "a01_s01_e01")
    assert loaded.depth_mm is None and loaded.num_frames == 4
    msr.write_msr_sequence(tmp_path / "d", Sequence("a02_s01_e01", seq.depth_mm, None, 1, 1, 1))
    loaded = msr.load_msr_sequence(tmp_path / "d" / "a02_s01_e01")
    assert loaded.joints_m is None and loaded.num_frames == 4 and loaded.label == 1


def test_screen_only_sequence_with_normalised_uv_and_mm_depth(tmp_path, caplog):
    """Some copies store u, v in [0, 1] and d in mm: detected, converted, warned about."""
    import logging

    from kerasdance.camera import KINECT_V1 as K
    from kerasdance.data import msr as m

    joints = np.zeros((2, 20, 3), np.float32)
    joints[..., 0] = np.linspace(-0.4, 0.4, 20)
    joints[..., 1] = np.linspace(-0.8, 0.8, 20)
    joints[..., 2] = 2.5
    uvz = K.project(joints)
    rows = np.stack([uvz[..., 0] / 320, uvz[..., 1] / 240, uvz[..., 2] * 1000, np.ones((2, 20))], -1)
    path = tmp_path / "a01_s01_e01_skeleton.txt"
    path.write_text("\n".join(" ".join(f"{v:.6f}" for v in r) for r in rows.reshape(-1, 4)) + "\n")
    with caplog.at_level(logging.WARNING, logger="kerasdance.data"):
        seq = m.load_msr_sequence(tmp_path / "a01_s01_e01")
    np.testing.assert_allclose(seq.joints_m, joints, atol=1e-4)
    assert "normalised" in caplog.text and "millimetres" in caplog.text and path.name in caplog.text


def test_rows_with_non_positive_depth_are_invalid(tmp_path):
    rows = frame_rows(0)
    rows[2] = (0.0, 0.0, 0.0, 1)  # Kinect's "not tracked" joint: behind or at the sensor plane
    rows[4] = (0.1, 0.2, -1.5, 1)
    p = tmp_path / "a01_s01_e01_skeleton3D.txt"
    p.write_text(skeleton_text(rows))
    joints, conf = msr.read_skeleton3d(p)
    assert np.flatnonzero(np.isnan(joints[0]).any(axis=-1)).tolist() == [2, 4]
    assert conf[0, [2, 4]].tolist() == [0, 0]
