"""Key-point consistency of self-training: the per-joint agreement mask and the train step that uses it."""

import numpy as np
import pytest

from kerasdance.config import RunConfig
from kerasdance.data import pipeline
from kerasdance.data.splits import TrainData
from kerasdance.errors import KerasdanceError
from kerasdance.skeleton import mirror_joints
from kerasdance.training.self_training import affine_joints_tf, consistent_joints
from kerasdance.training.trainer import Trainer, make_strategy


def _kp(seed=0, batch=2, frames=3):
    return np.random.default_rng(seed).uniform(-0.6, 0.6, (batch, frames, 20, 3)).astype(np.float32)


def test_affine_twin_matches_the_pipeline():
    kp = _kp()
    affine = np.array([[0.1, 1.1, 0.05, -0.03], [-0.2, 0.9, 0.0, 0.1]], np.float32)
    got = affine_joints_tf(kp, affine).numpy()
    for i in range(2):
        want = pipeline.affine_joints(kp[i], affine[i, 0], affine[i, 1], affine[i, 2:])
        np.testing.assert_allclose(got[i], want, atol=1e-5)


def test_agreeing_joints_kept_disagreeing_dropped():
    a = _kp()
    b = a.copy()
    b[0, 1, 7] += [0.2, 0.0, 0.0]  # one joint of one frame far off
    b[1, :, 19, 1] += 0.03  # within the tolerance
    m = consistent_joints(a, b, 0.05).numpy()
    assert m.shape == (2, 3, 20) and m.dtype == np.float32
    assert m[0, 1, 7] == 0.0
    assert m.sum() == m.size - 1


def test_affine_and_mirror_are_undone_before_comparing():
    a = _kp(1)
    affine = np.array([[0.15, 1.1, 0.05, -0.05], [-0.1, 0.9, 0.02, 0.08]], np.float32)
    mirrored = np.array([1.0, 0.0], np.float32)
    # view B: example 0 mirrored then augmented, example 1 only augmented; the teacher is right on both
    b = np.stack([pipeline.affine_joints(mirror_joints(a[0]), affine[0, 0], affine[0, 1], affine[0, 2:]),
                  pipeline.affine_joints(a[1], affine[1, 0], affine[1, 1], affine[1, 2:])]).astype(np.float32)
    np.testing.assert_array_equal(consistent_joints(a, b, 0.01, affine, mirrored).numpy(), 1.0)
    # compared without undoing the views, most joints disagree
    assert consistent_joints(a, b, 0.01).numpy().mean() < 0.5
    # with the mirror forgotten, example 0's left and right joints disagree, example 1 still agrees
    no_mirror = consistent_joints(a, b, 0.01, affine).numpy()
    assert no_mirror[0].mean() < 0.5 and no_mirror[1].min() == 1.0


TINY = RunConfig().replace(
    data={"frames": 8, "crop_size": 32},
    model={"num_classes": 3, "stem_filters": (4, 8, 8, 8), "lstm_units": 8, "conv_filters": (8, 8, 8)},
    train={"epochs": 2, "batch_size": 4, "warmup_epochs": 1, "labelled_fraction": 0.5},
)


def _trainer(tmp_path, make, cfg):
    data = make(12)
    hidden = pipeline.hide_labels(data, np.arange(12) < 6)
    return Trainer(cfg, tmp_path, TrainData(hidden, None, ["a", "b", "c"], data.labels), make_strategy("default"))


def test_train_step_with_consistent_keypoints(tmp_path, prepared_factory):
    cfg = TINY.replace(train={"keypoint_consistency": "consistent", "keypoint_agreement_tol": 1e-6})
    logs = _trainer(tmp_path, prepared_factory, cfg).run_epoch(0, None)
    assert np.isfinite(logs["loss"])
    assert logs["kp_agree"] == 0.0  # no two views agree to a micrometre: no key-point targets on unlabelled joints


def test_config_checks_and_old_runs_load():
    cfg = TINY.to_dict()
    cfg["train"].pop("keypoint_agreement_tol")  # a config.json written before the tolerance existed
    loaded = RunConfig.from_dict(cfg).train
    assert loaded.keypoint_agreement_tol == 0.05
    with pytest.raises((KerasdanceError, ValueError), match="consistent"):
        TINY.replace(train={"keypoint_consistency": "sometimes"})
    with pytest.raises((KerasdanceError, ValueError), match="keypoint_agreement_tol"):
        TINY.replace(train={"keypoint_agreement_tol": 0.0})
