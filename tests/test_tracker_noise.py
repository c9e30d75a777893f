"""The tracker-noise model, the robust skeleton features and the synth / train flags that use them."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from click.testing import CliRunner

from kerasdance.cli import cli
from kerasdance.config import DataConfig, RunConfig, TrainConfig
from kerasdance.data import pipeline
from kerasdance.data import preprocess as pp
from kerasdance.data import tracker_noise as tn
from kerasdance.data.synthetic import generate_sequence
from kerasdance.skeleton import MIRROR
from kerasdance.skeleton import Joint as J

CFG = DataConfig(frames=8, crop_size=32)


@functools.cache
def _seq(set_name: str, label: int, subject: int, skeleton_noise: str = "clean"):
    """A synthetic recording, made once per test session (rendering depth takes a while)."""
    return generate_sequence(set_name, label, subject, 1, skeleton_noise=skeleton_noise)


def _walk(frames: int = 60) -> np.ndarray:
    """A skeleton roughly facing the camera, sliding sideways at a constant speed: ``(frames, 20, 3)`` float64."""
    return _seq("msr20", 15, 1).joints_m[:1].astype(np.float64).repeat(frames, axis=0) + np.linspace(
        0, 0.3, frames)[:, None, None] * np.array([1.0, 0.0, 0.0])


def _only(**kw) -> tn.TrackerNoise:
    return tn.TrackerNoise(**kw)


# --- the noise model ------------------------------------------------------------------------------------------
def test_clean_is_identity_and_levels_are_seeded():
    j = _walk()
    np.testing.assert_array_equal(tn.apply_tracker_noise(j, "clean", np.random.default_rng(0)), j.astype(np.float32))
    a = tn.apply_tracker_noise(j, "hard", np.random.default_rng(3))
    b = tn.apply_tracker_noise(j, "hard", np.random.default_rng(3))
    c = tn.apply_tracker_noise(j, "hard", np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c, equal_nan=True)
    assert a.dtype == np.float32 and a.shape == j.shape


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="Unknown tracker-noise level"):
        tn.apply_tracker_noise(_walk(), "kinnect", np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\(frames, 20, 3\)"):
        tn.apply_tracker_noise(np.zeros((5, 15, 3)), "kinect", np.random.default_rng(0))
    with pytest.raises(ValueError, match="lost"):
        tn.apply_tracker_noise(_walk(), "kinect", np.random.default_rng(0), lost="minus-one")
    with pytest.raises(ValueError, match="swap_hz"):
        tn.TrackerNoise(swap_hz=-1.0)


def test_share_of_lost_joints_matches_the_rate():
    # 0.5 runs/s per joint (x JITTER_WEIGHT), 2..4 frames each at 15 fps: expected share ~ r * L / (1 + r * L).
    p = _only(lost_joint_hz=0.5, lost_joint_s=(2 / 15, 4 / 15), inferred_share=0.0)
    out, ev = tn.apply_tracker_noise(_walk(3000), p, np.random.default_rng(0), return_events=True)
    r = 0.5 * tn.JITTER_WEIGHT / 15.0
    expected = (r * 3 / (1 + r * 3)).mean()
    assert abs(ev.lost.mean() - expected) < 0.2 * expected
    np.testing.assert_array_equal(np.isnan(out).all(axis=-1), ev.lost)
    assert ev.lost[:, J.HAND_RIGHT].mean() > 2 * ev.lost[:, J.SPINE].mean()  # extremities are lost more


def test_kinect_bad_recordings_are_about_the_measured_share():
    # 44 of 567 real files (8%) have invalid rows, some of them 30-60%: the kinect level's bad recordings.
    j = _walk(40)
    shares = [tn.apply_tracker_noise(j, "kinect", np.random.default_rng(s), return_events=True)[1].lost_frames.mean()
              for s in range(400)]
    many = np.mean(np.array(shares) > 0.04)
    assert 0.04 < many < 0.14
    assert max(shares) > 0.3


def test_lost_as_zeros_writes_the_kinect_convention():
    p = _only(lost_frame_hz=3.0)
    out, ev = tn.apply_tracker_noise(_walk(), p, np.random.default_rng(1), lost="zeros", return_events=True)
    assert ev.lost_frames.any()
    assert np.all(out[ev.lost_frames] == 0) and np.isfinite(out).all()
    assert not pp.joint_validity(out)[ev.lost_frames].any()


def test_swaps_exchange_left_and_right_limbs_and_are_likelier_side_on():
    j = _walk(400)
    out, ev = tn.apply_tracker_noise(j, _only(swap_hz=1.0), np.random.default_rng(2), return_events=True)
    assert ev.swapped.any()
    limbs = [k for pair in tn.ARMS + tn.LEGS for k in pair]
    assert not ev.swapped[:, [k for k in range(20) if k not in limbs]].any()
    t, k = np.argwhere(ev.swapped)[0]
    np.testing.assert_allclose(out[t, k], j[t, MIRROR[k]], atol=1e-6)  # the counterpart's value, exactly
    np.testing.assert_array_equal(ev.swapped, ev.swapped[:, list(MIRROR)])  # both sides of a pair together
    # Side-on (the body turned 90 degrees: the shoulder line along z) swaps far more often.
    root = j[:, J.HIP_CENTER : J.HIP_CENTER + 1]
    rel = j - root
    side = np.stack([rel[..., 2], rel[..., 1], -rel[..., 0]], axis=-1) + root
    assert tn.side_on(side).min() > 0.9 and tn.side_on(j).max() < 0.3
    n_front = sum(tn.apply_tracker_noise(j, _only(swap_hz=0.05), np.random.default_rng(s), return_events=True)[1]
                  .swapped.any(axis=1).sum() for s in range(10))
    n_side = sum(tn.apply_tracker_noise(side, _only(swap_hz=0.05), np.random.default_rng(s), return_events=True)[1]
                 .swapped.any(axis=1).sum() for s in range(10))
    gain = tn.TrackerNoise().swap_side_on_gain
    expected = np.mean(1 + gain * tn.side_on(side)) / np.mean(1 + gain * tn.side_on(j))  # ~3 (j is turned a bit)
    assert n_side > 2 * n_front and n_side / n_front > 0.7 * expected


def test_freezes_repeat_the_first_value():
    p = _only(jitter_m=0.01, freeze_hz=0.5)
    out, ev = tn.apply_tracker_noise(_walk(300), p, np.random.default_rng(5), return_events=True)
    assert ev.frozen.any()
    for k in range(20):
        f = np.flatnonzero(ev.frozen[:, k])
        if f.size > 1:
            runs = np.split(f, np.flatnonzero(np.diff(f) > 1) + 1)
            for r in runs:
                np.testing.assert_array_equal(out[r, k], np.repeat(out[r[:1], k], len(r), axis=0))
    moving = ~ev.frozen[1:] & ~ev.frozen[:-1]
    assert np.all(np.abs(np.diff(out, axis=0)).sum(-1)[moving] > 0)  # elsewhere the jitter moves every value


def test_inferred_joints_hang_from_their_parent_and_wrong_person_jumps():
    p = _only(lost_joint_hz=1.0, inferred_share=1.0)
    j = _walk(200)
    out, ev = tn.apply_tracker_noise(j, p, np.random.default_rng(6), return_events=True)
    t, k = np.argwhere(ev.inferred)[0]
    off = out[t, k] - out[t, tn.PARENT[k]]
    assert np.isfinite(out[ev.inferred]).all()
    np.testing.assert_allclose(off, j[max(t - 1, 0), k] - j[max(t - 1, 0), tn.PARENT[k]], atol=1e-5)
    out, ev = tn.apply_tracker_noise(j, _only(wrong_person_share=1.0), np.random.default_rng(7), return_events=True)
    jump = np.linalg.norm(out[:, J.HIP_CENTER] - j[:, J.HIP_CENTER], axis=-1)
    assert ev.wrong_person.any() and jump[ev.wrong_person].min() > 0.5 and jump[~ev.wrong_person].max() < 1e-6


def test_apply_to_sequences_is_per_sequence_and_seeded():
    j = np.concatenate([_walk(30), _walk(20)]).astype(np.float32)
    off = np.array([0, 30, 50])
    a = tn.apply_to_sequences(j, off, "hard", seed=1)
    np.testing.assert_array_equal(a, tn.apply_to_sequences(j, off, "hard", seed=1))
    np.testing.assert_array_equal(a[30:], tn.apply_tracker_noise(j[30:], "hard", np.random.default_rng(
        np.random.SeedSequence([1, 1]))))


# --- robust features ------------------------------------------------------------------------------------------
def test_repair_interpolates_lost_joints_and_flags_them():
    j = _walk(8)
    broken = j.copy()
    broken[3, J.HAND_LEFT] = np.nan
    broken[4, J.HAND_LEFT] = 0.0  # the Kinect's all-zero row
    filled, valid = pp.repair_skeleton(broken)
    np.testing.assert_allclose(filled, j, atol=1e-6)  # linear motion: interpolation gives the truth back
    assert not valid[3, J.HAND_LEFT] and not valid[4, J.HAND_LEFT] and valid.sum() == 8 * 20 - 2


def test_repair_undoes_a_swap_and_rejects_a_jumping_frame():
    rng = np.random.default_rng(0)
    j = _walk(16) + rng.normal(0, 0.005, (16, 20, 3))
    broken = j.copy()
    arms = list(tn.ARMS[0]) + list(tn.ARMS[1])
    broken[5:9, arms] = j[5:9, list(tn.ARMS[1]) + list(tn.ARMS[0])]
    broken[12] += np.array([1.2, 0.0, 0.3])  # another person for a frame
    filled, valid = pp.repair_skeleton(broken)
    np.testing.assert_allclose(filled[5:9, arms], j[5:9, arms], atol=1e-9)
    assert not valid[12].any() and valid[11].all()
    assert np.linalg.norm(filled[12] - j[12], axis=-1).max() < 0.05


def test_features_never_carry_nan_and_keep_their_shape():
    cfg = DataConfig(frames=8, crop_size=32)
    j = _walk(8)
    j[2] = np.nan  # a lost frame
    j[5, :] = 0.0  # a zero frame
    j[:, J.FOOT_LEFT] = np.nan  # a joint never seen
    f = pp.skeleton_features(j, cfg)
    assert f.shape == (8, cfg.skeleton_features) and np.isfinite(f).all()
    valid = f.reshape(8, 20, 7)[..., 6]
    assert valid[2].sum() == 0 and valid[5].sum() == 0 and valid[:, J.FOOT_LEFT].sum() == 0 and valid[0, 0] == 1
    for bad in (np.full((8, 20, 3), np.nan), np.zeros((8, 20, 3))):  # nothing valid at all
        f = pp.skeleton_features(bad, cfg)
        assert np.isfinite(f).all() and not f.any()
    batch = pp.skeleton_features(np.stack([_walk(8), j]), cfg)  # leading axes
    assert batch.shape == (2, 8, cfg.skeleton_features)
    np.testing.assert_allclose(batch[1], pp.skeleton_features(j, cfg))
    plain = DataConfig(frames=8, crop_size=32, skeleton_repair=False)
    assert np.isfinite(pp.skeleton_features(j, plain)).all() and plain.skeleton_features == 120


def test_noisy_features_stay_near_the_clean_ones():
    cfg = DataConfig()
    seq = _seq("msr20", 13, 2)
    idx = pp.window_indices(len(seq.joints_m), cfg)
    clean = pp.skeleton_features(seq.joints_m[idx], cfg).reshape(cfg.frames, 20, 7)[..., :3]
    errs = {True: [], False: []}
    for s in range(10):
        noisy = tn.apply_tracker_noise(seq.joints_m, "hard", np.random.default_rng(s))[idx]
        for repair in (True, False):
            c = dataclasses.replace(cfg, skeleton_repair=repair)
            f = pp.skeleton_features(noisy, c).reshape(cfg.frames, 20, -1)[..., :3]
            assert np.isfinite(f).all()
            errs[repair].append(np.abs(f - clean).mean())
    assert np.mean(errs[True]) < 0.7 * np.mean(errs[False])


# --- training augmentation ------------------------------------------------------------------------------------
def _prepared():
    seqs = [_seq("msr20", lab, s) for lab in (15, 13) for s in (1, 2)]
    lengths = [len(q.joints_m) for q in seqs]
    n = len(seqs)
    total = sum(lengths)
    return pipeline.Prepared(
        names=[q.name for q in seqs], labels=np.array([q.label for q in seqs]), subjects=np.array([1, 2, 1, 2]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]), crops=np.zeros((0, 32, 32), np.float16),
        joints_norm=np.zeros((total, 20, 3), np.float32), joint_mask=np.zeros((total, 20), np.float32),
        joints_m=np.concatenate([q.joints_m for q in seqs]).astype(np.float32), crop_params=np.zeros((n, 5)),
        intrinsics=np.tile([285.63, 285.63, 160, 120, 320, 240], (n, 1)).astype(float),
        frame_stats=np.full((total, 3), np.nan, np.float32))


def test_sampler_noise_augmentation_changes_windows_and_clean_keeps_the_stream():
    data = _prepared()
    base = pipeline.WindowSampler(data, CFG, "skeleton", augment=pipeline.Augment())
    clean = pipeline.WindowSampler(data, CFG, "skeleton", augment=pipeline.Augment(tracker_noise="clean"))
    noisy = pipeline.WindowSampler(data, CFG, "skeleton",
                                   augment=pipeline.Augment(tracker_noise="hard", tracker_noise_share=1.0))
    a, b, c = (next(s.epoch(0, 4))["x"] for s in (base, clean, noisy))
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(c).all() and c.shape == a.shape and not np.allclose(a, c)
    assert pipeline.training_augment(TrainConfig(skeleton_noise="hard")).tracker_noise == "hard"


def test_config_field_checked_and_old_runs_read_as_before(tmp_path):
    with pytest.raises(ValueError, match="skeleton_noise"):
        TrainConfig(skeleton_noise="loud")
    path = tmp_path / "config.json"
    path.write_text('{"data": {}, "model": {"input_mode": "skeleton"}, "train": {}}')
    old = RunConfig.load(path, saved_run=True)
    assert old.train.skeleton_noise == "clean" and not old.data.skeleton_repair
    assert old.data.skeleton_features == 120 and DataConfig().skeleton_features == 140


# --- synth ----------------------------------------------------------------------------------------------------
def test_generate_sequence_noise_changes_only_the_joints(tmp_path):
    from kerasdance.data.msr import load_msr_sequence, write_msr_sequence

    a, b = _seq("msr20", 13, 2), _seq("msr20", 13, 2, "hard")
    np.testing.assert_array_equal(a.depth_mm, b.depth_mm)
    assert not np.allclose(a.joints_m, b.joints_m, equal_nan=True)
    back = load_msr_sequence(write_msr_sequence(tmp_path, b))  # what a skeleton-mode run reads
    np.testing.assert_allclose(back.joints_m, b.joints_m, atol=1e-5)


def test_synth_cli_passes_the_noise_level(tmp_path, monkeypatch):
    import kerasdance.data.synthetic as synthetic

    seen, real_write_set = {}, synthetic.write_set

    def fake_write_set(set_name, out, **kw):
        seen.update(kw)
        return 0

    monkeypatch.setattr(synthetic, "write_set", fake_write_set)
    r = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "k"), "--skeleton-noise", "kinect"])
    assert r.exit_code == 0, r.output
    assert seen["skeleton_noise"] == "kinect"
    r = CliRunner().invoke(cli, ["synth", "--continuous", "--out", str(tmp_path / "c"), "--skeleton-noise", "hard"])
    assert r.exit_code != 0 and "--skeleton-noise applies to clips" in r.output
    r = CliRunner().invoke(cli, ["synth", "--out", str(tmp_path / "x"), "--skeleton-noise", "loud"])
    assert r.exit_code != 0 and "loud" in r.output
    with pytest.raises(ValueError, match="Unknown tracker-noise level"):  # before anything is rendered
        real_write_set("msr20", tmp_path / "y", skeleton_noise="loud")
    assert not (tmp_path / "y").exists()


def test_train_cli_sets_the_augmentation(tmp_path, monkeypatch):
    """``train --skeleton-noise`` reaches ``TrainConfig.skeleton_noise`` (the trainer and TensorFlow faked out)."""
    import sys
    import types

    seen = {}

    def fake_train(data_dir, run_dir, cfg, **kw):
        seen["cfg"] = cfg
        raise ValueError("stopped by the test")

    monkeypatch.setitem(sys.modules, "kerasdance.training.trainer", types.SimpleNamespace(train=fake_train))
    monkeypatch.setitem(sys.modules, "kerasdance.evaluate", types.SimpleNamespace(format_report=None))
    r = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--input",
                                 "skeleton", "--skeleton-noise", "hard"])
    assert "stopped by the test" in r.output and seen["cfg"].train.skeleton_noise == "hard"
    assert RunConfig().train.skeleton_noise == TrainConfig().skeleton_noise
