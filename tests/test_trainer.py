import numpy as np
import pytest

from kerasdance.config import RunConfig
from kerasdance.data import pipeline
from kerasdance.data.splits import TrainData
from kerasdance.training.trainer import Trainer, make_strategy

TINY = RunConfig().replace(
    data={"frames": 8, "crop_size": 32},
    model={"num_classes": 3, "stem_filters": (4, 8, 8, 8), "lstm_units": 8, "conv_filters": (8, 8, 8)},
    train={"epochs": 3, "batch_size": 4, "warmup_epochs": 1, "labelled_fraction": 0.5},
)


def _trainer(tmp_path, make, cfg=TINY, semi=True):
    data = make(12)
    labelled = np.arange(12) < (6 if semi else 12)
    hidden = pipeline.hide_labels(data, labelled)
    return Trainer(cfg, tmp_path, TrainData(hidden, None, ["a", "b", "c"], data.labels), make_strategy("default"))


def test_semi_supervised_epoch_logs_pseudo_labels(tmp_path, prepared_factory):
    cfg = TINY.replace(train={"pseudo_threshold": 0.3})  # below 1/3: every top-1 of 3 classes passes
    tr = _trainer(tmp_path, prepared_factory, cfg)
    assert tr.semi
    logs = tr.run_epoch(0, None)
    assert np.isfinite(logs["loss"])
    assert logs["pseudo_count"] > 0 and 0.0 <= logs["pseudo_acc"] <= 1.0
    assert sum(int(c) for c in logs["pseudo_hist"].split()) == logs["pseudo_count"]


def test_fixed_threshold_keeps_the_class_thresholds(tmp_path, prepared_factory):
    tr = _trainer(tmp_path, prepared_factory, TINY.replace(train={"flexmatch": False, "pseudo_threshold": 0.95}))
    tr.run_epoch(0, None)
    np.testing.assert_allclose(tr.class_thr.numpy(), 0.95)
    flex = _trainer(tmp_path / "flex", prepared_factory)
    flex.run_epoch(0, None)
    assert flex.class_thr.numpy().min() < 0.9  # FlexMatch lowers the bar for classes rarely claimed


def test_distribution_alignment_follows_the_teacher_and_resumes(tmp_path, prepared_factory):
    cfg = TINY.replace(train={"distribution_alignment": True})
    a = _trainer(tmp_path / "a", prepared_factory, cfg)
    np.testing.assert_array_equal(a.da_ratio.numpy(), 1.0)  # no statistics before the first epoch
    a.run_epoch(0, None)
    ratio = a.da_ratio.numpy()
    assert np.all(np.isfinite(ratio)) and not np.allclose(ratio, 1.0)
    a.save_checkpoint(0, [], {})
    b = _trainer(tmp_path / "a", prepared_factory, cfg)
    b.restore_latest()
    np.testing.assert_array_equal(b.da_ratio.numpy(), ratio)  # in the checkpoint: a resumed run aligns the same
    plain = _trainer(tmp_path / "plain", prepared_factory, TINY.replace(train={"distribution_alignment": False}))
    plain.run_epoch(0, None)
    np.testing.assert_array_equal(plain.da_ratio.numpy(), 1.0)  # switched off: the probabilities are left alone


def test_supervised_only_when_everything_is_labelled(tmp_path, prepared_factory):
    tr = _trainer(tmp_path, prepared_factory, semi=False)
    assert not tr.semi
    assert "pseudo_count" not in tr.run_epoch(0, None)


def test_supervised_only_with_hidden_labels_trains_on_labelled_batches(tmp_path, prepared_factory):
    cfg = TINY.replace(train={"self_training": False})
    tr = _trainer(tmp_path, prepared_factory, cfg)  # 6 of 12 labelled, no self-training
    assert not tr.semi and tr.steps_per_epoch == 3  # as many steps as a pass over all 12
    batches = list(tr.sampler.epoch(0, cfg.train.batch_size))
    assert len(batches) == 3 and all(b["labelled"].all() for b in batches)
    assert np.isfinite(tr.run_epoch(0, None)["loss"])


def test_heatmap_regulariser_trains_the_model_and_keeps_its_outputs(tmp_path, prepared_factory):
    """``heatmap_weight``: the step reads the heat-map logits through a view of the same layers; the model that is
    saved and exported keeps its two outputs, and the regulariser changes what it learns."""
    cfg = TINY.replace(train={"heatmap_weight": 10.0})
    tr = _trainer(tmp_path / "hm", prepared_factory, cfg)
    assert set(tr.train_model.output) == {"keypoints", "logits", "heatmap"}
    assert set(tr.model.output) == {"keypoints", "logits"}
    plain = _trainer(tmp_path / "plain", prepared_factory)
    np.testing.assert_array_equal(tr.model.get_weights()[0], plain.model.get_weights()[0])  # the same start
    assert np.isfinite(tr.run_epoch(0, None)["loss"])
    plain.run_epoch(0, None)
    w, w0 = tr.model.get_layer("kp_out").get_weights()[0], plain.model.get_layer("kp_out").get_weights()[0]
    assert not np.allclose(w, w0)
    with pytest.raises(ValueError, match="heat-map key-point head"):
        TINY.replace(model={"keypoint_head": "dense"}, train={"heatmap_weight": 1.0})


def test_checkpoint_resume_gives_identical_weights(tmp_path, prepared_factory):
    a = _trainer(tmp_path / "a", prepared_factory)
    for e in range(3):
        a.run_epoch(e, None)
        a.save_checkpoint(e, [], {})
    b = _trainer(tmp_path / "b", prepared_factory)
    for e in range(2):
        b.run_epoch(e, None)
        b.save_checkpoint(e, [], {})
    c = _trainer(tmp_path / "b", prepared_factory)  # a fresh trainer, as after a kill
    epoch, _, _ = c.restore_latest()
    assert epoch == 1
    c.run_epoch(2, None)
    for wa, wc in zip(a.model.get_weights(), c.model.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wc, rtol=1e-5, atol=1e-6)


def test_thread_feed_and_tf_data_feed_train_the_same_weights(tmp_path, prepared_factory):
    """One device reads batches from a prefetch thread, distributed strategies from tf.data: same batches."""
    runs = []
    for use_tf_data in (False, True):
        tr = _trainer(tmp_path / str(use_tf_data), prepared_factory)  # semi: the strong views travel too
        assert tr.use_tf_data is False  # the default strategy's feed
        tr.use_tf_data = use_tf_data
        logs = tr.run_epoch(0, None)
        runs.append((tr.model.get_weights(), logs["pseudo_count"]))
    (wa, na), (wb, nb) = runs
    assert na == nb
    for a, b in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_twice_in_one_process_gives_identical_weights(tmp_path, prepared_factory):
    """Benchmarks run many trainings in one process: a row must not depend on the rows before it."""
    runs = []
    for name in ("a", "b"):
        tr = _trainer(tmp_path / name, prepared_factory)
        tr.run_epoch(0, None)
        runs.append(tr.model.get_weights())
    for wa, wb in zip(*runs, strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_checkpoint_of_another_model_is_refused_with_a_clear_error(tmp_path, prepared_factory):
    from kerasdance.errors import KerasdanceError

    a = _trainer(tmp_path, prepared_factory)
    a.run_epoch(0, None)
    a.save_checkpoint(0, [], {})
    other = TINY.replace(model={"keypoint_head": "dense"})  # e.g. a run written by an older version
    b = _trainer(tmp_path, prepared_factory, other)
    with pytest.raises(KerasdanceError, match="does not fit this model"):
        b.restore_latest()


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="strategy"):
        make_strategy("horovod")


@pytest.mark.parametrize("input_mode", ["depth", "skeleton"])
def test_unlabelled_sequences_keep_their_skeleton_only_where_it_is_the_input(tiny_msr, tmp_path, input_mode):
    from kerasdance.data.splits import load_train_data

    cfg = TINY.replace(model={"input_mode": input_mode})
    data, _ = load_train_data(tiny_msr, cfg, tmp_path / "cache")
    unl = np.flatnonzero(data.train.labels < 0)
    assert unl.size and np.all(data.hidden_labels[unl] >= 0)  # labels hidden in both modes
    frames = np.concatenate([np.arange(data.train.offsets[i], data.train.offsets[i + 1]) for i in unl])
    assert data.train.joint_mask[frames].sum() == 0  # never a key-point target
    # depth: the joints would be targets, so they go; skeleton: they are the camera's input stream, so they stay
    assert np.all(np.isfinite(data.train.joints_m[frames])) == (input_mode == "skeleton")
    assert np.all(np.isnan(data.train.joints_m[frames])) == (input_mode == "depth")


def test_edge_cut_augment_reaches_the_training_windows(tmp_path, prepared_factory):
    assert _trainer(tmp_path / "off", prepared_factory).sampler.augment.edge_cut == 0
    on = _trainer(tmp_path / "on", prepared_factory, TINY.replace(train={"edge_cut_share": 0.2}))
    assert on.sampler.augment.edge_cut == 0.2
    off = _trainer(tmp_path / "none", prepared_factory, TINY.replace(train={"edge_cut_share": 0.2,
                                                                            "augment": False}))
    assert off.sampler.augment is None  # no augmentation at all: no cuts either
