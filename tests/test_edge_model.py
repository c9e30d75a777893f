"""EdgeModel: agreement with Keras, int8 (de)quantisation, refusal of mismatched files, no TensorFlow."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from edge_fixtures import CLASS_NAMES, ROOT, tiny_model  # noqa: F401

from kerasdance.errors import ModelFileError
from kerasdance.modelmeta import file_sha256, load_meta, sidecar_path
from kerasdance_edge.interpreter import EdgeModel


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_float_model_agrees_with_keras(tiny_model):  # noqa: F811
    ref = np.load(tiny_model.outputs)
    model = EdgeModel(tiny_model.path)
    assert model.input_shape == (8, 32, 32, 2) and model.input_dtype == np.float32
    assert model.class_names == CLASS_NAMES and len(model.joint_names) == 20
    keypoints, probs = model.predict(ref["x"][0])
    np.testing.assert_allclose(keypoints, ref["keypoints"][0], atol=1e-4)
    np.testing.assert_allclose(probs, _softmax(ref["logits"][0]), atol=1e-4)
    # A batch axis of one is accepted too.
    keypoints2, _ = model.predict(ref["x"])
    np.testing.assert_array_equal(keypoints, keypoints2)


def test_int8_model_quantizes_inputs_and_dequantizes_outputs(tiny_model):  # noqa: F811
    ref = np.load(tiny_model.outputs)
    model = EdgeModel(tiny_model.int8_path)
    assert model.input_dtype == np.int8
    keypoints, probs = model.predict(ref["x"][0])
    assert keypoints.dtype == np.float32 and probs.dtype == np.float32
    # Stated bound for the full-int8 tiny random model, relative to the span of its key-points (about +-2
    # normalised crop units, the depth maps dominate): every coordinate within 20% of the span and on average
    # within 5%, probabilities within 0.05. Reading the raw int8 tensors without dequantisation would be off
    # by orders of magnitude. (A trained model's int8 error is measured by the export benchmark.)
    err = np.abs(keypoints - ref["keypoints"][0])
    span = np.abs(ref["keypoints"]).max()
    assert err.max() < 0.2 * span and err.mean() < 0.05 * span, (err.max(), err.mean(), span)
    np.testing.assert_allclose(probs, _softmax(ref["logits"][0]), atol=0.05)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_flip_test_averages_two_invocations_keypoints_and_keeps_the_windows_class(tiny_model, tmp_path,  # noqa: F811
                                                                                  caplog):
    from kerasdance.skeleton import flip_average, mirror_window

    x = np.load(tiny_model.outputs)["x"][0]
    plain = EdgeModel(tiny_model.path)
    kp, probs = plain.predict(x)
    kp_mirror, _ = plain.predict(mirror_window(x))
    assert "--mirror" not in caplog.text
    flip = EdgeModel(tiny_model.path, flip_test=True)
    # The tiny model's sidecar does not say that it was trained with mirrored windows: the caveat is logged.
    assert "mirror_augment" not in load_meta(tiny_model.path).extra
    assert "was not trained with --mirror" in caplog.text
    kp_flip, probs_flip = flip.predict(x)
    np.testing.assert_allclose(kp_flip, flip_average(kp, kp_mirror), atol=1e-6)
    assert not np.allclose(kp_flip, kp)
    np.testing.assert_array_equal(probs_flip, probs)
    # A model trained with --mirror: no caveat.
    path = _copy(tiny_model, tmp_path)
    meta = json.loads(sidecar_path(path).read_text())
    meta["extra"]["mirror_augment"] = True
    sidecar_path(path).write_text(json.dumps(meta))
    caplog.clear()
    EdgeModel(path, flip_test=True)
    assert "--mirror" not in caplog.text


def test_predict_rejects_a_window_of_the_wrong_shape(tiny_model):  # noqa: F811
    model = EdgeModel(tiny_model.path)
    with pytest.raises(ValueError, match=r"window must be \(8, 32, 32, 2\)"):
        model.predict(np.zeros((8, 32, 32, 1), np.float32))


def _copy(tiny_model, tmp_path):  # noqa: F811
    dst = tmp_path / "model.tflite"
    shutil.copy(tiny_model.path, dst)
    shutil.copy(sidecar_path(tiny_model.path), sidecar_path(dst))
    return dst


def test_model_of_another_shape_than_its_sidecar_is_refused(tiny_model, tmp_path):  # noqa: F811
    path = _copy(tiny_model, tmp_path)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["data"]["frames"] = 16  # a sidecar that claims T=16 (hash still right)
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"input shape \(1, 8, 32, 32, 2\) does not match .* \(1, 16, 32, 32, 2\)"):
        EdgeModel(path)


def test_a_sidecar_from_before_a_preprocessing_field_reads_as_it_was_trained(tiny_model, tmp_path):  # noqa: F811
    path = _copy(tiny_model, tmp_path)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["data"]["crop_supersample"] = 3
    side.write_text(json.dumps(meta))
    assert load_meta(path).data_config.crop_supersample == 3
    del meta["data"]["crop_supersample"]  # an export from before the option: trained on nearest-pixel crops
    side.write_text(json.dumps(meta))
    assert load_meta(path).data_config.crop_supersample == 1


def test_class_count_mismatch_is_refused(tiny_model, tmp_path):  # noqa: F811
    path = _copy(tiny_model, tmp_path)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["class_names"] = ["a", "b"]
    side.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="3 classes but its sidecar names 2"):
        EdgeModel(path)


def test_tampered_model_missing_sidecar_and_garbage_are_refused(tiny_model, tmp_path):  # noqa: F811
    path = _copy(tiny_model, tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match its sidecar"):
        EdgeModel(path)
    sidecar_path(path).unlink()
    with pytest.raises(ModelFileError, match="sidecar .* is missing"):
        EdgeModel(path)
    # Bytes the interpreter cannot load, with a matching sidecar.
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 10)
    meta = json.loads(sidecar_path(tiny_model.path).read_text())
    meta["sha256"] = file_sha256(junk)
    sidecar_path(junk).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="cannot load"):
        EdgeModel(junk)


def test_edge_never_imports_tensorflow(tiny_model):  # noqa: F811
    code = f"""
import sys
import numpy as np
import kerasdance_edge, kerasdance_edge.cli, kerasdance_edge.sources, kerasdance_edge.sinks, kerasdance_edge.tracker
import kerasdance_edge.interpreter, kerasdance_edge.smoothing
from kerasdance_edge.interpreter import EdgeModel
from kerasdance_edge.cli import bench_model
model = EdgeModel({str(tiny_model.path)!r})
model.predict(np.zeros(model.input_shape, np.float32))
bench_model(model, frames=3)
bad = sorted(m for m in ("tensorflow", "keras", "tf_keras", "edge", "tools") if m in sys.modules)
print("IMPORTED:", bad)
sys.exit(1 if bad else 0)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "IMPORTED: []" in proc.stdout


def test_every_window_starts_from_zero_lstm_state(tmp_path):
    """A fused-LSTM export keeps h/c in variable tensors: the same window twice must give the same output."""
    script = f"""
import kerasdance.keras_backend
from kerasdance.config import DataConfig, ModelConfig
from kerasdance.keras_backend import tf
from kerasdance.models.lstm_cnn import build_lstm_cnn
from kerasdance.modelmeta import ModelMeta, file_sha256, save_meta
from kerasdance.skeleton import JOINT_NAMES
from kerasdance.camera import KINECT_V1
d = DataConfig(frames=8, crop_size=32)
m = build_lstm_cnn(ModelConfig(num_classes=3, stem_filters=(4, 4, 4, 4), lstm_units=8, conv_filters=(8, 8, 8)), d,
                   batch_size=1)
c = tf.lite.TFLiteConverter.from_keras_model(m)
c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
p = r"{tmp_path / 'fused.tflite'}"
open(p, "wb").write(c.convert())
save_meta(p, ModelMeta(file_sha256(p), "depth", ("a", "b", "c"), JOINT_NAMES, d.to_dict(), KINECT_V1.to_dict(),
                       "float32", False, "0"))
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=120)
    model = EdgeModel(tmp_path / "fused.tflite")
    x = np.random.default_rng(0).normal(size=model.input_shape).astype(np.float32)
    kp1, p1 = model.predict(x)
    kp2, p2 = model.predict(x)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(kp1, kp2)
