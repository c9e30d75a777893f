"""Evaluation of a run on its test (or validation) split: ``kerasdance evaluate RUN_DIR [--split val]``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from kerasdance.config import RunConfig
from kerasdance.data import pipeline
from kerasdance.data import preprocess as pp
from kerasdance.data.splits import load_split
from kerasdance.inference import predict_prepared
from kerasdance.metrics import confusion_matrix, keypoint_summary, per_class_prf
from kerasdance.predict import check_flip_test, load_run

log = logging.getLogger("kerasdance.evaluate")


def predictions_to_camera(keypoints: np.ndarray, prepared: pipeline.Prepared, cfg: RunConfig):
    """Predicted normalised key-points ``(n, T, 20, 3)`` -> camera metres, and the matching truth."""
    pred_m, true_m = [], []
    for i in range(len(prepared)):
        idx = window_frames(prepared, i, cfg)
        crop = pp.Crop.from_array(prepared.crop_params[i])
        pred_m.append(pp.crop_to_camera(keypoints[i], crop, prepared.camera(i), cfg.data))
        true_m.append(prepared.joints_m[idx])
    return np.stack(pred_m), np.stack(true_m)


def window_frames(prepared: pipeline.Prepared, i: int, cfg: RunConfig) -> np.ndarray:
    """Frame indices (into ``prepared``'s frame arrays) of sequence ``i``'s evaluation window: the frames
    ``preprocess.window_indices`` picks for the whole move (``clip_of``), as the sampler does."""
    span = prepared.clip_of(i)
    return span.start + pp.window_indices(span.stop - span.start, cfg.data)


def evaluate_prepared(pred: dict[str, np.ndarray], prepared: pipeline.Prepared, cfg: RunConfig) -> dict:
    """Metrics of predictions ``{"logits", "keypoints"?}`` against ``prepared``'s truth.

    Returns keys ``accuracy``, ``n_test``, ``confusion``, ``per_class`` and, in depth mode,
    ``mpjpe_mm`` (camera coordinates, through the crop inverse), ``mpjpe_rel_mm``
    (root-relative), ``map_10cm`` (fraction of joints within 10 cm) and ``rmse_norm`` (crop units).
    """
    labels = prepared.labels
    known = labels >= 0
    y_pred = np.argmax(pred["logits"], axis=-1)
    n_cls = cfg.model.num_classes
    cm = confusion_matrix(labels[known], y_pred[known], n_cls)
    out = {"accuracy": float((y_pred[known] == labels[known]).mean()) if known.any() else float("nan"),
           "n_test": int(known.sum()), "confusion": cm.tolist(),
           "per_class": {k: v.tolist() for k, v in per_class_prf(cm).items()},
           "mpjpe_mm": float("nan"), "mpjpe_rel_mm": float("nan"), "map_10cm": float("nan"),
           "rmse_norm": float("nan")}
    if "keypoints" in pred:
        pred_m, true_m = predictions_to_camera(pred["keypoints"], prepared, cfg)
        out.update(keypoint_summary(pred_m, true_m))
        idx = np.stack([window_frames(prepared, i, cfg) for i in range(len(prepared))])
        tj, tm = prepared.joints_norm[idx], prepared.joint_mask[idx]
        sq = np.sum((pred["keypoints"] - tj) ** 2, axis=-1)
        out["rmse_norm"] = float(np.sqrt((sq * tm).sum() / max(tm.sum(), 1)))
    return out


def format_report(metrics: dict, class_names: list[str]) -> str:
    """A readable text report: headline figures, per-class table and confusion matrix."""
    part = "validation" if metrics.get("split") == "val" else "test"
    lines = [f"{part} sequences: {metrics['n_test']}", f"accuracy:       {metrics['accuracy'] * 100:.1f}%"]
    if np.isfinite(metrics.get("mpjpe_mm", float("nan"))):
        flip = " with the flip test" if metrics.get("flip_test") else ""
        lines += [f"MPJPE:          {metrics['mpjpe_mm']:.1f} mm "
                  f"(root-relative {metrics['mpjpe_rel_mm']:.1f} mm){flip}",
                  f"mAP@10cm:       {metrics['map_10cm'] * 100:.1f}%",
                  f"RMSE (crop):    {metrics['rmse_norm']:.4f}"]
    pc = metrics["per_class"]
    w = max(len(c) for c in class_names)
    lines += ["", f"{'class':<{w}}  precision  recall     f1"]
    for i, c in enumerate(class_names):
        lines.append(f"{c:<{w}}  {pc['precision'][i]:9.2f}  {pc['recall'][i]:6.2f}  {pc['f1'][i]:5.2f}")
    cm = np.asarray(metrics["confusion"])
    lines += ["", "confusion matrix (rows = true, columns = predicted):"]
    for i, c in enumerate(class_names):
        lines.append(f"{c:<{w}} " + " ".join(f"{v:3d}" for v in cm[i]))
    return "\n".join(lines)


def confusion_png(cm: np.ndarray, class_names: list[str], path: str | Path, cell: int = 22) -> None:
    """Write the confusion matrix as a PNG heat map (rows = true class)."""
    from PIL import Image, ImageDraw

    cm = np.asarray(cm, np.float64)
    n = len(class_names)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    label_w = 8 * max(len(c) for c in class_names) + 10
    img = Image.new("RGB", (label_w + n * cell + 4, n * cell + 4), "white")
    draw = ImageDraw.Draw(img)
    for i in range(n):
        draw.text((4, i * cell + 5), class_names[i], fill="black")
        for j in range(n):
            v = norm[i, j]
            col = (int(255 * (1 - v)), int(255 * (1 - 0.6 * v)), 255)
            x0, y0 = label_w + j * cell, i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=col, outline="#ddd")
            if cm[i, j]:
                draw.text((x0 + 3, y0 + 5), str(int(cm[i, j])), fill="black")
    img.save(path)


def evaluate_run(run_dir, data_dir=None, cache_dir=None, flip_test: bool = False,
                 part: str = "test") -> tuple[dict, list[str]]:
    """Evaluate ``RUN_DIR/model.keras`` on the run's test split (protocol or custom subjects, as in its config), or
    on its validation split.

    Args:
        run_dir: a finished (or partly trained) run folder.
        data_dir: the dataset; defaults to the one recorded in ``RUN_DIR/data.json``.
        flip_test: key-points averaged with the mirrored window's (see ``inference.predict_windows``); recorded in
            the metrics as ``flip_test``.
        part: ``"test"`` or ``"val"`` (``splits.load_split``); recorded in the metrics as ``split``.
    """
    pred, test, cfg, class_names = predict_run(run_dir, data_dir, cache_dir, flip_test, part)
    return {**evaluate_prepared(pred, test, cfg), "flip_test": flip_test, "split": part}, class_names


def predict_run(run_dir, data_dir=None, cache_dir=None, flip_test: bool = False, part: str = "test"):
    """``RUN_DIR/model.keras``'s outputs on the run's test (or ``part``) split (see ``evaluate_run``).

    Returns:
        ``(predictions {"logits", "keypoints"?}, the prepared split, the run's config, class names)``.
    """
    run_dir = Path(run_dir)
    cfg, _, model = load_run(run_dir)
    if flip_test:
        check_flip_test(cfg, run_dir)
    if data_dir is None:
        info = run_dir / "data.json"
        if not info.exists():
            raise FileNotFoundError(f"{run_dir} does not record its data folder: pass --data DIR")
        data_dir = json.loads(info.read_text())["data_dir"]
    test, class_names = load_split(data_dir, cfg, part, cache_dir)
    return predict_prepared(model, test, cfg, flip_test=flip_test), test, cfg, class_names
