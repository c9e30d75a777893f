"""Export a run to TFLite, write its sidecar and verify it: what ``kerasdance export RUN_DIR`` does.

::

    report = export_run("runs/a", "model.tflite", format="int8", report_path="export.json")

1. Load ``RUN_DIR/model.keras`` (``safe_mode``) and its configuration; optionally prune (``prune=0.5``)
   or quantisation-aware fine-tune (``qat=True``) it on the run's training windows (``tools.quantize``).
2. Rebuild a batch-1 clone (``build_lstm_cnn(..., batch_size=1)``, unrolled LSTM by default) with the
   weights, save it as a fixed-shape SavedModel and convert it in a child process with builtin ops only
   (``tools.convert``); int8 is calibrated on windows of the run's *training* split.
3. Write ``MODEL.tflite.json`` (``kerasdance.modelmeta``): SHA-256 of the model bytes, class and joint
   names, the ``DataConfig``, the training camera, the quantisation, the LSTM form.
4. Run the ``.tflite`` on ai-edge-litert over the run's test split (whole sequences resampled, no
   augmentation, one window at a time) next to Keras, and report size, accuracy, MPJPE, the largest
   output difference and the 1-thread latency; fail when the accuracy drop exceeds ``max_drop`` points.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from kerasdance import __version__
from kerasdance.camera import KINECT_V1, Intrinsics
from kerasdance.config import RunConfig
from kerasdance.data.pipeline import Prepared, WindowSampler
from kerasdance.errors import KerasdanceError, ModelFileError
from kerasdance.modelmeta import ModelMeta, file_sha256, load_meta, save_meta, sidecar_path
from kerasdance.predict import load_run
from kerasdance.skeleton import JOINT_NAMES
from tools.convert import FORMATS, convert_in_subprocess, model_ops, save_fixed_signature

log = logging.getLogger("kerasdance.export")

#: Which interpreter runs which export. ai-edge-litert is measured on every export by ``verify``; the
#: tflite-runtime column is NOT measured here (it cannot be installed next to numpy 2): it repeats what
#: ../shared/DEPENDENCIES.md measured with tflite-runtime 2.14.0 (numpy<2, Python <= 3.11).
TFLITE_RUNTIME_2_14 = {
    "float32": (True, "runs (measured in DEPENDENCIES.md; needs numpy<2)"),
    "float16": (None, "not measured in DEPENDENCIES.md"),
    "dynamic": (False, "cannot load dynamic-range models of the 2.21 converter: FULLY_CONNECTED version 12 "
                       "(measured in DEPENDENCIES.md)"),
    "int8": (True, "runs, 2-9x slower than ai-edge-litert (measured in DEPENDENCIES.md; needs numpy<2)"),
}


# --- the interpreter side -------------------------------------------------------------------------------------
class TfliteModel:
    """A ``.tflite`` file on ai-edge-litert, one window at a time, int8 (de)quantisation handled.

    Outputs are recognised by rank: 4 = key-points ``(1, T, J, 3)``, 2 = logits ``(1, classes)``.
    """

    def __init__(self, path: str | Path, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            dead = degenerate_tensors(self.path)
            hint = (f"; int8 tensors with a calibrated range of ~0 (dead layers: all their outputs were 0 on the "
                    f"calibration windows), which XNNPACK refuses: {dead}") if dead else ""
            raise ModelFileError(f"{self.path}: ai-edge-litert cannot load this model ({e}){hint}") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelFileError(f"{self.path}: expected one input tensor. Received: {len(inputs)}")
        self.input = inputs[0]
        self.outputs: dict[str, dict] = {}
        for d in self.interpreter.get_output_details():
            key = {4: "keypoints", 2: "logits"}.get(len(d["shape"]))
            if key is not None and key not in self.outputs:
                self.outputs[key] = d
        if "logits" not in self.outputs:
            raise ModelFileError(f"{self.path}: no logits output (a rank-2 tensor (1, classes))")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.input["shape"])

    def output_shape(self, key: str) -> tuple[int, ...] | None:
        d = self.outputs.get(key)
        return None if d is None else tuple(int(s) for s in d["shape"])

    def set_input(self, window: np.ndarray) -> None:
        x = np.asarray(window, np.float32)[None]
        dtype = np.dtype(self.input["dtype"])
        if dtype != np.float32:
            scale, zero = self.input["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        self.interpreter.set_tensor(self.input["index"], x)

    def get_output(self, key: str) -> np.ndarray:
        d = self.outputs[key]
        y = self.interpreter.get_tensor(d["index"])
        if np.dtype(d["dtype"]) != np.float32:
            scale, zero = d["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def invoke(self) -> None:
        """``reset_all_variables`` + ``invoke``.

        The fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` keeps its hidden and cell state in variable tensors that
        survive an ``invoke`` (measured: the second invoke on the same window differs from Keras by ~1e-3,
        a trained model's accuracy fell from 78% to chance over a test split); every window must start from
        zero state, as in Keras. Unrolled exports have no variable tensors and the reset is a no-op.
        """
        self.interpreter.reset_all_variables()
        self.interpreter.invoke()

    def predict(self, window: np.ndarray) -> dict[str, np.ndarray]:
        """One window without batch axis -> ``{"logits": (classes,), "keypoints": (T, J, 3)?}``."""
        self.set_input(window)
        self.invoke()
        return {k: self.get_output(k)[0] for k in self.outputs}


def degenerate_tensors(path: str | Path, min_scale: float = 1e-6) -> list[str]:
    """Names of the int8 tensors whose quantisation scale is below ``min_scale`` (a calibrated range of ~0).

    Such a tensor comes from a layer whose outputs were all (nearly) zero on every calibration window; the
    XNNPACK delegate that ai-edge-litert applies by default refuses the model then ("failed to prepare").
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        interp = Interpreter(model_path=str(path),
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except (ValueError, RuntimeError):
        return []
    out = []
    for d in interp.get_tensor_details():
        scale = d["quantization"][0]
        if np.dtype(d["dtype"]) == np.int8 and 0.0 < scale < min_scale:
            out.append(d["name"].split(";")[0])
    return out


def run_tflite(path: str | Path, windows: np.ndarray, num_threads: int = 1) -> dict[str, np.ndarray]:
    """Outputs of the ``.tflite`` for every window ``(n, T, ...)``, one window at a time (batch 1)."""
    model = TfliteModel(path, num_threads)
    outs: dict[str, list] = {}
    for w in windows:
        for k, v in model.predict(w).items():
            outs.setdefault(k, []).append(v)
    return {k: np.stack(v) for k, v in outs.items()}


def measure_latency(path: str | Path, window: np.ndarray, num_threads: int = 1, runs: int = 50,
                    warmup: int = 3) -> dict[str, float]:
    """Milliseconds of one window (input quantisation and the LSTM state reset included): p50 and p99 of ``runs``."""
    model = TfliteModel(path, num_threads)
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        model.set_input(window)
        model.invoke()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def check_exported(path: str | Path) -> ModelMeta:
    """Load the sidecar of an exported model and check the model's tensors against it.

    Returns:
        The verified ``ModelMeta``.

    Raises:
        ModelFileError: missing or tampered sidecar (``load_meta``), a model ai-edge-litert cannot load, or a
            model whose input / output shapes are not the ones its sidecar describes.
    """
    meta = load_meta(path)
    cfg = meta.data_config
    model = TfliteModel(path)
    if meta.input_mode == "depth":
        want = (1, cfg.frames, cfg.crop_size, cfg.crop_size, cfg.channels)
    else:
        want = (1, cfg.frames, cfg.skeleton_features)
    if model.input_shape != want:
        raise ModelFileError(f"{path}: input shape {model.input_shape} does not match its sidecar's {want} "
                             f"({meta.input_mode}, T={cfg.frames}, S={cfg.crop_size}, C={cfg.channels})")
    if model.output_shape("logits") != (1, len(meta.class_names)):
        raise ModelFileError(f"{path}: logits {model.output_shape('logits')} do not match the sidecar's "
                             f"{len(meta.class_names)} class names")
    if meta.input_mode == "depth" and model.output_shape("keypoints") != (1, cfg.frames, len(meta.joint_names), 3):
        raise ModelFileError(f"{path}: key-points {model.output_shape('keypoints')} do not match the sidecar's "
                             f"(1, {cfg.frames}, {len(meta.joint_names)}, 3)")
    return meta


def compat_note(fmt: str, verified: bool) -> dict[str, Any]:
    """Which interpreter runs an export of format ``fmt`` (see ``TFLITE_RUNTIME_2_14``)."""
    runs, why = TFLITE_RUNTIME_2_14[fmt]
    litert = {"runs": True, "basis": "measured: this export was loaded and run on ai-edge-litert 2.3"} if verified \
        else {"runs": None, "basis": "not verified (verify=False)"}
    return {"ai_edge_litert_2_3": litert,
            "tflite_runtime_2_14": {"runs": runs, "basis": why + "; not re-measured for this file"}}


# --- the Keras side -------------------------------------------------------------------------------------------
def export_clone(weights_from, run_cfg: RunConfig, unroll: bool, batch_size: int | None = 1):
    """The model's graph rebuilt with a fixed batch (1: what gets converted) and the LSTM (un)rolled."""
    from kerasdance.models.lstm_cnn import build_lstm_cnn
    from tools.quantize import copy_weights

    model_cfg = dataclasses.replace(run_cfg.model, unroll=bool(unroll))
    clone = build_lstm_cnn(model_cfg, run_cfg.data, batch_size=batch_size)
    copy_weights(weights_from, clone)
    return clone


def keras_predict(model, prepared: Prepared, run_cfg: RunConfig) -> dict[str, np.ndarray]:
    from kerasdance.training.trainer import predict_windows

    return predict_windows(model, WindowSampler(prepared, run_cfg.data, run_cfg.model.input_mode, augment=None))


def training_intrinsics(*sets: Prepared | None) -> Intrinsics | None:
    """The camera of the training data: the most common per-sequence intrinsics (None without data)."""
    rows = [tuple(float(v) for v in row) for s in sets if s is not None and len(s) for row in s.intrinsics]
    if not rows:
        return None
    counts = Counter(rows)
    row, n = counts.most_common(1)[0]
    if len(counts) > 1:
        log.warning("the data has %d different cameras; the sidecar records the most common one (%d of %d)",
                    len(counts), n, len(rows))
    return Intrinsics(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]))


# --- the export -----------------------------------------------------------------------------------------------
def _check_args(fmt, qat, prune, max_drop):
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format. Received: format={fmt!r}; valid: {list(FORMATS)}")
    if qat and fmt != "int8":
        raise ValueError(f"QAT makes sense for int8 only. Received: format={fmt!r}, qat=True")
    if prune is not None and not 0.0 <= prune < 1.0:
        raise ValueError(f"prune is a target sparsity in [0, 1). Received: prune={prune!r}")
    if qat and prune is not None:
        raise ValueError("qat and prune together are not supported: the QAT fine-tune would refill the pruned "
                         "weights. Export them separately.")
    if not np.isfinite(max_drop):
        raise ValueError(f"max_drop must be a finite number of accuracy points. Received: max_drop={max_drop!r}")


def export_run(run_dir: str | Path, out_path: str | Path, format: str = "int8", qat: bool = False,
               prune: float | None = None, unroll: bool = True, report_path: str | Path | None = None,
               max_drop: float = 1.0, data_dir: str | Path | None = None, verify: bool = True, *,
               cache_dir: str | Path | None = None, calibration_size: int = 128, finetune_epochs: int = 5,
               finetune_lr: float | None = None, latency_runs: int = 50, seed: int = 0) -> dict[str, Any]:
    """Export a run folder to ``out_path`` (+ sidecar), verified on the run's test split.

    Args:
        run_dir: a kerasdance run folder (``model.keras``, ``config.json``, ``classes.json``, ``data.json``).
        out_path: ``MODEL.tflite``; the sidecar ``MODEL.tflite.json`` is written next to it.
        format: ``float32``, ``float16``, ``dynamic`` (int8 weights) or ``int8`` (full integer, int8 in/out,
            calibrated on up to ``calibration_size`` training windows).
        qat: quantisation-aware fine-tune before the int8 conversion (int8 only).
        prune: target sparsity in [0, 1): prune and fine-tune before the conversion.
        unroll: export the LSTM unrolled (fastest int8 on the interpreter) instead of the fused
            ``UNIDIRECTIONAL_SEQUENCE_LSTM``.
        report_path: also write the report as JSON here.
        max_drop: raise when the TFLite accuracy is more than this many points below Keras'.
        data_dir: the dataset (default: the one in ``RUN_DIR/data.json``); needed for int8, QAT, pruning
            and verification.
        verify: run the ``.tflite`` on the test split and compare with Keras.
        cache_dir: preprocessing cache folder.
        calibration_size: int8 calibration windows (whole training sequences, no augmentation).
        finetune_epochs: QAT / pruning fine-tune epochs.
        finetune_lr: their learning rate (default: 5% of the run's peak learning rate).
        latency_runs: invocations timed for ``latency_ms_p50`` / ``latency_ms_p99``.
        seed: calibration subset, fine-tune order and augmentation.

    Returns:
        The report: ``format``, ``size_bytes``, ``sha256``, ``ops``, ``compat`` and, when verified,
        ``accuracy_keras``, ``accuracy_tflite`` (fractions), ``accuracy_drop_points``, ``mpjpe_keras_mm``,
        ``mpjpe_tflite_mm``, ``max_abs_diff``, ``latency_ms_p50`` / ``latency_ms_p99`` (1 thread) ...

    Raises:
        FileNotFoundError: not a run folder, or no data folder where one is needed.
        ValueError: bad arguments.
        ConversionError: the converter refused the model or crashed (``tools.convert``).
        KerasdanceError: the accuracy drop exceeds ``max_drop`` (after the report was written).
    """
    _check_args(format, qat, prune, max_drop)
    run_dir = Path(run_dir)
    cfg, class_names, model = load_run(run_dir)
    needs_data = verify or qat or prune is not None or format == "int8"
    if data_dir is None and (run_dir / "data.json").exists():
        data_dir = json.loads((run_dir / "data.json").read_text()).get("data_dir")
    train = test = None
    intrinsics = None
    if needs_data:
        if data_dir is None:
            raise FileNotFoundError(f"{run_dir} does not record its data folder (data.json): pass data_dir "
                                    f"(--data DIR); {format} export{' with verification' if verify else ''} "
                                    "needs the training/test windows")
        from kerasdance.training.trainer import load_train_data

        data, test = load_train_data(data_dir, cfg, cache_dir)
        if list(data.class_names) != class_names:
            raise KerasdanceError(f"{data_dir} has classes {list(data.class_names)!r} but the run was trained on "
                                  f"{class_names!r}: pass the run's data folder")
        train = data.train
    elif data_dir is not None and Path(data_dir).exists():
        from kerasdance.data.dataset import Dataset

        intrinsics = Dataset.open(data_dir).intrinsics
    return export_model(model, cfg, class_names, out_path, train=train, test=test, format=format, qat=qat,
                        prune=prune, unroll=unroll, report_path=report_path, max_drop=max_drop, verify=verify,
                        intrinsics=intrinsics, extra={"run_dir": str(run_dir.resolve())},
                        calibration_size=calibration_size, finetune_epochs=finetune_epochs,
                        finetune_lr=finetune_lr, latency_runs=latency_runs, seed=seed)


def export_model(model, cfg: RunConfig, class_names: list[str], out_path: str | Path, *,
                 train: Prepared | None = None, test: Prepared | None = None, format: str = "int8",
                 qat: bool = False, prune: float | None = None, unroll: bool = True,
                 report_path: str | Path | None = None, max_drop: float = 1.0, verify: bool = True,
                 intrinsics: Intrinsics | None = None, extra: dict | None = None, calibration_size: int = 128,
                 finetune_epochs: int = 5, finetune_lr: float | None = None, latency_runs: int = 50,
                 seed: int = 0) -> dict[str, Any]:
    """``export_run`` on a model and data already in memory (same arguments; ``train`` / ``test`` are the run's
    prepared splits, needed for int8 calibration, QAT / pruning and verification respectively)."""
    from tools import quantize

    _check_args(format, qat, prune, max_drop)
    out_path = Path(out_path)
    if len(class_names) != cfg.model.num_classes:
        raise ValueError(f"{len(class_names)} class names for a model with {cfg.model.num_classes} classes")
    if (format == "int8" or qat or prune is not None) and train is None:
        raise ValueError(f"format={format!r}, qat={qat!r}, prune={prune!r} needs the training windows (train=...)")
    if verify and test is None:
        raise ValueError("verify=True needs the test split (test=...)")
    t_start = time.time()
    report: dict[str, Any] = {"format": format, "qat": bool(qat), "prune": prune, "unrolled": bool(unroll),
                              "path": str(out_path), "sidecar": str(sidecar_path(out_path))}

    # 1. optional fine-tunes: the model that gets converted
    converted = model
    if prune is not None or qat:
        lr = finetune_lr if finetune_lr is not None else 0.05 * cfg.train.learning_rate
        steps = quantize.finetune_steps(train, cfg, finetune_epochs)
        if prune is not None:
            wrapped = quantize.prunable(model, prune, steps)
        else:  # QAT trains the graph that gets exported (LSTM (un)rolled), saved with a batch-1 signature
            wrapped = quantize.quantize_aware(export_clone(model, cfg, unroll, batch_size=None))
        history = quantize.finetune(wrapped, train, cfg, finetune_epochs, lr, teacher=model, seed=seed,
                                    pruning=prune is not None)
        report["finetune"] = {"epochs": finetune_epochs, "steps": steps, "learning_rate": lr, "loss": history}
        if prune is not None:
            converted = quantize.strip_pruning(wrapped, model)
            report["sparsity"] = quantize.pruned_sparsity(converted)
        else:
            converted = wrapped

    # 2. batch-1 clone -> SavedModel -> .tflite in a child process
    calibration = None
    if format == "int8":
        calibration = quantize.calibration_windows(train, cfg, calibration_size, seed)
        report["calibration_windows"] = int(len(calibration))
    clone = converted if qat else export_clone(converted, cfg, unroll)
    with tempfile.TemporaryDirectory(prefix="kerasdance-export-") as tmp:
        save_fixed_signature(clone, Path(tmp) / "saved_model", batch_size=1)
        convert_in_subprocess(Path(tmp) / "saved_model", out_path, format, calibration)
    content = out_path.read_bytes()
    report.update(size_bytes=len(content), sha256=file_sha256(out_path), ops=model_ops(content))

    # 3. the sidecar
    if intrinsics is None:
        intrinsics = training_intrinsics(train, test)
    if intrinsics is None:
        log.warning("no data to read the camera from: the sidecar records the Kinect v1 default")
        intrinsics = KINECT_V1
    meta = ModelMeta(
        sha256=report["sha256"], input_mode=cfg.model.input_mode, class_names=tuple(class_names),
        joint_names=tuple(JOINT_NAMES[: cfg.model.num_joints]), data=cfg.data.to_dict(),
        intrinsics=intrinsics.to_dict(), quantization=format, unrolled=bool(unroll), kerasdance_version=__version__,
        extra={**(extra or {}), "qat": bool(qat), "prune": prune, "sparsity": report.get("sparsity"),
               "mirror_augment": bool(cfg.train.mirror_augment),  # trained on mirrored windows (the flip test)
               # the fused LSTM keeps its state in variable tensors between invokes (see TfliteModel.invoke)
               "reset_variables_before_invoke": not unroll})
    save_meta(out_path, meta)

    # 4. verification
    report["verified"] = bool(verify)
    report["compat"] = compat_note(format, verify)
    if verify:
        report.update(_verify(out_path, model, converted, cfg, test, latency_runs))
        report["max_drop"] = max_drop
        drop = report["accuracy_drop_points"]
        if not np.isfinite(drop):
            log.warning("the test split has no labelled sequence: max_drop cannot be checked")
        report["passed"] = bool(not np.isfinite(drop) or drop <= max_drop)
    report["export_s"] = time.time() - t_start
    if report_path is not None:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(report, indent=2) + "\n")
    if verify and not report["passed"]:
        raise KerasdanceError(
            f"{out_path}: TFLite accuracy {report['accuracy_tflite'] * 100:.1f}% is "
            f"{report['accuracy_drop_points']:.1f} points below Keras' {report['accuracy_keras'] * 100:.1f}% "
            f"(max_drop={max_drop!r}); the model and report were still written"
            + (f" ({report_path})" if report_path else ""))
    return report


def _verify(path: Path, reference, converted, cfg: RunConfig, test: Prepared, latency_runs: int) -> dict:
    """Keras vs TFLite on the test split: accuracy, MPJPE, largest output difference, latency."""
    from kerasdance.evaluate import evaluate_prepared

    check_exported(path)
    windows = WindowSampler(test, cfg.data, cfg.model.input_mode, augment=None).eval_windows()["x"]
    tfl = run_tflite(path, windows, num_threads=1)
    ref = keras_predict(reference, test, cfg)
    conv = ref if converted is reference else keras_predict(converted, test, cfg)
    m_ref, m_tfl = evaluate_prepared(ref, test, cfg), evaluate_prepared(tfl, test, cfg)
    diffs = {k: float(np.max(np.abs(tfl[k] - conv[k]))) for k in tfl if k in conv}
    out = {
        "n_test": int(m_ref["n_test"]),
        "accuracy_keras": m_ref["accuracy"], "accuracy_tflite": m_tfl["accuracy"],
        "accuracy_drop_points": (m_ref["accuracy"] - m_tfl["accuracy"]) * 100.0,
        "mpjpe_keras_mm": m_ref["mpjpe_mm"], "mpjpe_tflite_mm": m_tfl["mpjpe_mm"],
        "max_abs_diff": max(diffs.values()),
        "max_abs_diff_logits": diffs.get("logits"), "max_abs_diff_keypoints": diffs.get("keypoints"),
        "max_abs_diff_against": "the fine-tuned Keras model" if converted is not reference else "the run's model",
    }
    if converted is not reference:
        m_conv = evaluate_prepared(conv, test, cfg)
        out.update(accuracy_keras_finetuned=m_conv["accuracy"], mpjpe_keras_finetuned_mm=m_conv["mpjpe_mm"])
    lat = measure_latency(path, windows[0], num_threads=1, runs=latency_runs)
    out.update(latency_ms_p50=lat["p50"], latency_ms_p99=lat["p99"], latency_threads=1)
    return out
