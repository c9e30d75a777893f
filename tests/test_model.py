import dataclasses
import json

import numpy as np
import pytest

from kerasdance.config import DataConfig, ModelConfig, RunConfig
from kerasdance.keras_backend import keras, tf
from kerasdance.losses import dice_ce_loss, keypoint_loss
from kerasdance.models.lstm_cnn import SoftArgmax2D, build_lstm_cnn, count_flops

DATA = DataConfig(frames=8, crop_size=32)
TINY = ModelConfig(num_classes=4, stem_filters=(4, 8, 8, 8), lstm_units=8, conv_filters=(8, 8, 8))


@pytest.mark.parametrize("kernel", [1, 3])
def test_depth_output_shapes(kernel):
    m = build_lstm_cnn(dataclasses.replace(TINY, keypoint_kernel=kernel), DATA)
    out = m(np.zeros((2, 8, 32, 32, 2), np.float32))
    assert out["keypoints"].shape == (2, 8, 20, 3)
    assert out["logits"].shape == (2, 4)
    assert m.get_layer("kp_hidden").layer.kernel_size == (kernel, kernel)


def test_keypoint_layers_stack_hidden_convs_and_default_to_one():
    m = build_lstm_cnn(dataclasses.replace(TINY, keypoint_layers=2), DATA)
    assert m.get_layer("kp_hidden1").input.shape == m.get_layer("kp_hidden").output.shape  # one after the other
    assert m(np.zeros((1, 8, 32, 32, 2), np.float32))["keypoints"].shape == (1, 8, 20, 3)
    assert "kp_hidden1" not in [layer.name for layer in build_lstm_cnn(TINY, DATA).layers]
    assert ModelConfig.from_dict({}).keypoint_layers == 1  # a saved config from before reads as the model it was
    with pytest.raises(ValueError, match="keypoint_layers"):
        ModelConfig(keypoint_layers=0)


def test_patch_stem_skips_the_half_resolution_map_and_reads_the_heat_map_at_its_stride():
    cfg = dataclasses.replace(TINY, stem_filters=(8, 8, 8), stem_first_stride=4)
    m = build_lstm_cnn(cfg, DATA)
    first = m.get_layer("stem0_conv").layer
    assert first.kernel_size == (4, 4) and first.strides == (4, 4)  # non-overlapping 4x4 patches
    assert [m.get_layer(f"stem{i}_relu").output.shape[2] for i in range(3)] == [8, 4, 2]  # S/4, S/8, S/16
    assert m.get_layer("kp_lateral1").output.shape[2] == 4  # heat map at S/8 = the second map here
    out = m(np.zeros((2, 8, 32, 32, 2), np.float32))
    assert out["keypoints"].shape == (2, 8, 20, 3) and out["logits"].shape == (2, 4)
    with pytest.raises(ValueError, match="stem_first_stride"):
        ModelConfig(stem_first_stride=3)
    with pytest.raises(ValueError, match="heatmap_stride"):
        ModelConfig(stem_first_stride=4, heatmap_stride=2)


@pytest.mark.parametrize("head", ["heatmap", "dense"])
def test_keypoint_refinement_starts_as_the_identity_and_learns_over_time(head):
    cfg = dataclasses.replace(TINY, keypoint_head=head)
    keras.utils.set_random_seed(0)
    plain = build_lstm_cnn(dataclasses.replace(cfg, keypoint_refine=0), DATA)
    refined = build_lstm_cnn(dataclasses.replace(cfg, keypoint_refine=3), DATA)
    for layer in plain.layers:  # the shared layers get the same weights
        if layer.weights:
            refined.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 8, 32, 32, 2)).astype(np.float32)
    np.testing.assert_allclose(refined(x)["keypoints"], plain(x)["keypoints"], atol=1e-6)  # zero-initialised
    assert refined.get_layer("kp_refine_traj").kernel_size == (3, 1)  # over time, per frame position
    k = refined.get_layer("kp_refine_out")
    k.set_weights([np.ones_like(w) * 0.01 for w in k.get_weights()])
    assert not np.allclose(refined(x)["keypoints"], plain(x)["keypoints"], atol=1e-4)
    with pytest.raises(ValueError, match="keypoint_refine"):
        ModelConfig(keypoint_refine=4)


def test_soft_argmax_reads_the_peak_cell_and_its_depth():
    H = W = 4
    J = 2
    x = np.zeros((1, 1, H, W, 2 * J), np.float32)
    x[0, 0, 1, 3, 0] = 50.0  # joint 0: row 1, column 3
    x[0, 0, 2, 0, 1] = 50.0  # joint 1: row 2, column 0
    x[0, 0, 1, 3, J + 0] = 0.4  # joint 0's depth at its peak (elsewhere 0)
    x[0, 0, :, :, J + 1] = -0.2  # joint 1's depth map is flat
    out = SoftArgmax2D(J)(x).numpy()[0, 0]
    centre = lambda i, n: (i + 0.5) / n * 2 - 1  # noqa: E731
    np.testing.assert_allclose(out[0], [centre(3, W), centre(1, H), 0.4], atol=1e-5)
    np.testing.assert_allclose(out[1], [centre(0, W), centre(2, H), -0.2], atol=1e-5)
    flat = SoftArgmax2D(J)(np.zeros((1, 1, H, W, 2 * J), np.float32)).numpy()[0, 0]
    np.testing.assert_allclose(flat[:, :2], 0.0, atol=1e-6)  # uniform heat map: the crop centre


def test_skeleton_output_shapes():
    m = build_lstm_cnn(ModelConfig(input_mode="skeleton", num_classes=5, lstm_units=8, conv_filters=(8, 8, 8)), DATA)
    out = m(np.zeros((2, 8, DATA.skeleton_features), np.float32))
    assert set(out) == {"logits"} and out["logits"].shape == (2, 5)


def test_three_time_convs_and_one_maxpool():
    m = build_lstm_cnn(TINY, DATA)
    convs = [layer for layer in m.layers if layer.name.startswith("tconv") and layer.name.endswith("_conv")]
    pools = [layer for layer in m.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(convs) == 3 and all(isinstance(c, keras.layers.Conv2D) for c in convs)
    assert len(pools) == 1
    assert [type(layer).__name__ for layer in m.layers].index("LSTM") < m.layers.index(convs[0])


def test_config_json_round_trip():
    cfg = RunConfig().replace(model={"stem_filters": (4, 8), "num_classes": 7}, train={"epochs": 3})
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="Unknown"):
        RunConfig.from_dict({"train": {"epochz": 3}})
    with pytest.raises(ValueError, match="labelled_fraction"):
        RunConfig().replace(train={"labelled_fraction": 0.0})


def test_a_saved_run_without_later_fields_loads_as_it_was_trained(tmp_path):
    cfg = RunConfig().replace(model={"num_classes": 7}, train={"epochs": 3})
    cfg.save(tmp_path / "config.json")
    assert RunConfig.load(tmp_path / "config.json", saved_run=True) == cfg  # a complete dump: unchanged
    old = cfg.to_dict()  # as written before the temporal refinement and the alignment existed
    del old["model"]["keypoint_refine"], old["train"]["distribution_alignment"], old["model"]["keypoint_kernel"]
    del old["data"]["crop_supersample"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    run = RunConfig.load(tmp_path / "old.json", saved_run=True)
    assert run.model.keypoint_refine == 0 and run.train.distribution_alignment is False
    assert run.model.keypoint_kernel == 1 and run.model.keypoint_head == "heatmap"  # the dump has its head
    assert run.model.num_classes == 7 and run.train.epochs == 3
    assert run.data.crop_supersample == 1  # nearest-pixel crops, as every run was trained before the option
    user = RunConfig.load(tmp_path / "old.json")  # a user's config file: missing fields are today's defaults
    assert user.model.keypoint_refine == ModelConfig().keypoint_refine
    assert user.model.keypoint_kernel == ModelConfig().keypoint_kernel == 3
    del old["model"]["keypoint_head"]  # a run from before the heat-map head: it had the dense one
    (tmp_path / "older.json").write_text(json.dumps(old))
    assert RunConfig.load(tmp_path / "older.json", saved_run=True).model.keypoint_head == "dense"


def test_model_get_config_round_trip():
    m = build_lstm_cnn(TINY, DATA)
    clone = keras.Model.from_config(json.loads(json.dumps(m.get_config())))
    assert [layer.name for layer in clone.layers] == [layer.name for layer in m.layers]


def test_keras_save_load_equal(tmp_path):
    m = build_lstm_cnn(TINY, DATA)
    x = np.random.default_rng(0).normal(size=(2, 8, 32, 32, 2)).astype(np.float32)
    m.save(tmp_path / "m.keras")
    m2 = keras.models.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    a, b = m(x, training=False), m2(x, training=False)
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), atol=1e-6)


def test_one_train_step_lowers_loss():
    keras.utils.set_random_seed(0)
    m = build_lstm_cnn(ModelConfig(num_classes=4, stem_filters=(4, 8, 8, 8), lstm_units=8, conv_filters=(8, 8, 8),
                                   dropout=0.0), DATA)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8, 32, 32, 2)).astype(np.float32)
    y = tf.one_hot([0, 1, 2, 3], 4)
    kp = rng.normal(scale=0.3, size=(4, 8, 20, 3)).astype(np.float32)
    mask = np.ones((4, 8, 20), np.float32)
    opt = keras.optimizers.Adam(1e-2)

    def loss_fn():  # batch statistics, no dropout: deterministic, and free of BN moving-average lag
        out = m(x, training=True)
        return tf.reduce_mean(dice_ce_loss(y, out["logits"]) + keypoint_loss(kp, out["keypoints"], mask))

    before = float(loss_fn())
    for _ in range(3):
        with tf.GradientTape() as tape:
            out = m(x, training=True)
            loss = tf.reduce_mean(dice_ce_loss(y, out["logits"]) + keypoint_loss(kp, out["keypoints"], mask))
        g = tape.gradient(loss, m.trainable_variables)
        opt.apply_gradients(zip(g, m.trainable_variables))
    assert float(loss_fn()) < before


def test_flops_counted():
    m = build_lstm_cnn(TINY, DATA)
    # the first stem conv alone: 8 frames * 16*16*4 outputs * 5*5*2 MACs * 2
    assert count_flops(m) > 2 * 8 * 16 * 16 * 4 * 5 * 5 * 2
