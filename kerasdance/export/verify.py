"""An exported ``.tflite`` checked as the device runs it: ``kerasdance.litert.LiteModel`` over the test split.

``verify_export`` runs the ``.tflite`` one window at a time over the run's evaluation windows (whole
sequences, no augmentation: ``kerasdance.inference``) next to Keras and reports accuracy, MPJPE, the
largest output difference and the 1-thread latency. ``check_exported`` checks a sidecar and the
model's tensors against it, exactly as the device does when it loads the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kerasdance.config import RunConfig
from kerasdance.data.pipeline import Prepared
from kerasdance.evaluate import evaluate_prepared
from kerasdance.inference import eval_windows, predict_prepared
from kerasdance.litert import LiteModel, check_against_meta
from kerasdance.modelmeta import ModelMeta, load_meta

#: Which interpreter runs which export. ai-edge-litert is measured on every export by ``verify_export``; the
#: tflite-runtime column is NOT measured per export (tflite-runtime cannot be installed next to numpy 2): it
#: repeats what was measured once with tflite-runtime 2.14.0 (numpy<2, Python <= 3.11).
TFLITE_RUNTIME_2_14 = {
    "float32": (True, "runs (measured once with tflite-runtime 2.14.0; needs numpy<2)"),
    "float16": (None, "not measured"),
    "dynamic": (False, "cannot load dynamic-range models of the 2.21 converter: FULLY_CONNECTED version 12 "
                       "(measured once with tflite-runtime 2.14.0)"),
    "int8": (True, "runs, 2-9x slower than ai-edge-litert (measured once with tflite-runtime 2.14.0; needs "
                   "numpy<2)"),
}


def run_tflite(path: str | Path, windows: np.ndarray, num_threads: int = 1) -> dict[str, np.ndarray]:
    """Outputs of the ``.tflite`` for every window ``(n, T, ...)``, one window at a time (batch 1), as the device."""
    model = LiteModel(path, num_threads)
    outs: dict[str, list] = {}
    for w in windows:
        for k, v in model.predict(w).items():
            outs.setdefault(k, []).append(v)
    return {k: np.stack(v) for k, v in outs.items()}


def measure_latency(path: str | Path, window: np.ndarray, num_threads: int = 1, runs: int = 50,
                    warmup: int = 3) -> dict[str, float]:
    """Milliseconds of one window (input quantisation, the LSTM state reset and output reads included): p50 and
    p99 of ``runs``."""
    model = LiteModel(path, num_threads)
    times = []
    for i in range(warmup + runs):
        model.predict(window)
        if i >= warmup:
            times.append(model.last_invoke_ms)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def check_exported(path: str | Path) -> ModelMeta:
    """Load the sidecar of an exported model and check the model's tensors against it (as the device does).

    Returns:
        The verified ``ModelMeta``.

    Raises:
        ModelFileError: missing or tampered sidecar (``load_meta``), a model the interpreter cannot load, or a
            model whose input / output shapes are not the ones its sidecar describes.
    """
    meta = load_meta(path)
    check_against_meta(LiteModel(path), meta)
    return meta


def compat_note(fmt: str, verified: bool) -> dict[str, Any]:
    """Which interpreter runs an export of format ``fmt`` (see ``TFLITE_RUNTIME_2_14``)."""
    runs, why = TFLITE_RUNTIME_2_14[fmt]
    litert = {"runs": True, "basis": "measured: this export was loaded and run on ai-edge-litert 2.3"} if verified \
        else {"runs": None, "basis": "not verified (verify=False)"}
    return {"ai_edge_litert_2_3": litert,
            "tflite_runtime_2_14": {"runs": runs, "basis": why + "; not re-measured for this file"}}


def verify_export(path: Path, reference, converted, cfg: RunConfig, test: Prepared, latency_runs: int) -> dict:
    """Keras vs TFLite on the test split: accuracy, MPJPE, largest output difference, latency.

    Args:
        path: the ``.tflite`` (its sidecar beside it).
        reference: the run's Keras model.
        converted: the Keras model that was converted (``reference``, or its QAT / pruned fine-tune).
        cfg: the run's configuration.
        test: the prepared test split.
        latency_runs: invocations timed for the latency.
    """
    check_exported(path)
    windows = eval_windows(test, cfg)
    tfl = run_tflite(path, windows, num_threads=1)
    ref = predict_prepared(reference, test, cfg)
    conv = ref if converted is reference else predict_prepared(converted, test, cfg)
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
