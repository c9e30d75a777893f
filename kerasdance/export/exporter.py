"""Export a run to TFLite, write its sidecar and verify it: what ``kerasdance export RUN_DIR`` does.

::

    report = export_run("runs/a", "model.tflite", format="int8", report_path="export.json")

1. Load ``RUN_DIR/model.keras`` (``safe_mode``) and its configuration; optionally prune (``prune=0.5``)
   or quantisation-aware fine-tune (``qat=True``) it on the run's training windows (``kerasdance.export.quantize``).
2. Rebuild a batch-1 clone (``build_lstm_cnn(..., batch_size=1)``, unrolled LSTM by default) with the
   weights, save it as a fixed-shape SavedModel and convert it in a child process with builtin ops only
   (``kerasdance.export.convert``); int8 is calibrated on windows of the run's *training* split.
3. Write ``MODEL.tflite.json`` (``kerasdance.modelmeta``): SHA-256 of the model bytes, class and joint
   names, the ``DataConfig``, the training camera, the quantisation, the LSTM form.
4. Run the ``.tflite`` through ``kerasdance.litert`` (what the device runs) over the run's test split
   (whole sequences resampled, no augmentation, one window at a time) next to Keras, and report size,
   accuracy, MPJPE, the largest output difference and the 1-thread latency; fail when the accuracy drop
   exceeds ``max_drop`` points (``kerasdance.export.verify``).
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
from kerasdance.data.dataset import Dataset
from kerasdance.data.pipeline import Prepared
from kerasdance.data.splits import load_train_data, split_record
from kerasdance.errors import KerasdanceError
from kerasdance.export import quantize
from kerasdance.export.convert import FORMATS, convert_in_subprocess, model_ops, save_fixed_signature
from kerasdance.export.quantize import copy_weights
from kerasdance.export.verify import compat_note, verify_export
from kerasdance.modelmeta import ModelMeta, file_sha256, save_meta, sidecar_path
from kerasdance.models.lstm_cnn import build_lstm_cnn
from kerasdance.predict import load_run
from kerasdance.skeleton import JOINT_NAMES

log = logging.getLogger("kerasdance.export")

# --- the Keras side -------------------------------------------------------------------------------------------
def export_clone(weights_from, run_cfg: RunConfig, unroll: bool, batch_size: int | None = 1):
    """The model's graph rebuilt with a fixed batch (1: what gets converted) and the LSTM (un)rolled."""
    model_cfg = dataclasses.replace(run_cfg.model, unroll=bool(unroll))
    clone = build_lstm_cnn(model_cfg, run_cfg.data, batch_size=batch_size)
    copy_weights(weights_from, clone)
    return clone


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
        ConversionError: the converter refused the model or crashed (``kerasdance.export.convert``).
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
        data, test = load_train_data(data_dir, cfg, cache_dir)
        if list(data.class_names) != class_names:
            raise KerasdanceError(f"{data_dir} has classes {list(data.class_names)!r} but the run was trained on "
                                  f"{class_names!r}: pass the run's data folder")
        train = data.train
    elif data_dir is not None and Path(data_dir).exists():
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
               "split": split_record(cfg.train),  # the run's split: `kerasdance-edge eval` replays its test / val
               # the fused LSTM keeps its state in variable tensors between invokes (see litert.LiteModel.predict)
               "reset_variables_before_invoke": not unroll})
    save_meta(out_path, meta)

    # 4. verification
    report["verified"] = bool(verify)
    report["compat"] = compat_note(format, verify)
    if verify:
        report.update(verify_export(out_path, model, converted, cfg, test, latency_runs))
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
