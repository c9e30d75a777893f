"""Metrics (pure numpy): accuracy, per-class P/R/F1, confusion matrix, key-point errors."""

from __future__ import annotations

import numpy as np

from kerasdance.skeleton import Joint


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(classes, classes)`` counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def per_class_prf(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix (0 where undefined)."""
    tp = np.diag(cm).astype(np.float64)
    pred = cm.sum(axis=0).astype(np.float64)
    true = cm.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, pred, out=np.zeros_like(tp), where=pred > 0)
    recall = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1}


def joint_errors_mm(pred_m: np.ndarray, true_m: np.ndarray, root_relative: bool = False) -> np.ndarray:
    """Per-joint Euclidean errors in mm for every valid (finite) true joint, flattened.

    Args:
        pred_m, true_m: ``(..., 20, 3)`` camera metres; NaN in ``true_m`` marks missing joints.
        root_relative: subtract each skeleton's hip centre first (from pred and truth alike).
    """
    pred_m = np.asarray(pred_m, np.float64)
    true_m = np.asarray(true_m, np.float64)
    if root_relative:
        h = Joint.HIP_CENTER
        pred_m = pred_m - pred_m[..., h : h + 1, :]
        true_m = true_m - true_m[..., h : h + 1, :]
    err = np.linalg.norm(pred_m - true_m, axis=-1) * 1000.0
    return err[np.isfinite(err)]


def keypoint_summary(pred_m: np.ndarray, true_m: np.ndarray) -> dict[str, float]:
    """MPJPE (mm, camera coordinates and root-relative) and the fraction of joints within 10 cm."""
    e = joint_errors_mm(pred_m, true_m)
    er = joint_errors_mm(pred_m, true_m, root_relative=True)
    if e.size == 0:
        return {"mpjpe_mm": float("nan"), "mpjpe_rel_mm": float("nan"), "map_10cm": float("nan"), "n_joints": 0}
    return {"mpjpe_mm": float(e.mean()), "mpjpe_rel_mm": float(er.mean()) if er.size else float("nan"),
            "map_10cm": float((e <= 100.0).mean()), "n_joints": int(e.size)}
