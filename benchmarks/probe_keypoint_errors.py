"""Where a run's key-point error comes from: per axis, joint and subject, on its test and its training sequences.

Camera-space errors (mm) through the crop inverse, as ``kerasdance evaluate``; the training split is
evaluated without augmentation, like the test split. Similar figures on both mean under-fitting.

    python -m benchmarks.probe_keypoint_errors benchmarks/.data/runs/full-msr20-depth-0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.datasets import CACHE


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    args = ap.parse_args(argv)

    from kerasdance.config import RunConfig
    from kerasdance.data import pipeline
    from kerasdance.data.dataset import Dataset, split
    from kerasdance.evaluate import predictions_to_camera, window_frames
    from kerasdance.inference import predict_windows
    from kerasdance.models.lstm_cnn import load_model
    from kerasdance.skeleton import Joint

    cfg = RunConfig.of_run(args.run_dir)
    ds = Dataset.open(json.loads((args.run_dir / "data.json").read_text())["data_dir"])
    sp = split(ds.refs, cfg.train.protocol, ds.class_names)
    model = load_model(args.run_dir / "model.keras")
    for name, refs in (("test", sp.test), ("train", sp.train)):
        prep = pipeline.prepare(ds, refs, cfg.data, CACHE, True)
        pred = predict_windows(model, pipeline.WindowSampler(prep, cfg.data, "depth", augment=None))
        pm, tm = predictions_to_camera(pred["keypoints"], prep, cfg)
        idx = np.stack([window_frames(prep, i, cfg) for i in range(len(prep))])
        valid = prep.joint_mask[idx] > 0
        err = (pm - tm) * 1000.0
        dist = np.linalg.norm(err, axis=-1)
        print(f"{name}: MPJPE {dist[valid].mean():.1f} mm (median {np.median(dist[valid]):.1f}), "
              + ", ".join(f"|{a}| {np.abs(err[..., i])[valid].mean():.1f}" for i, a in enumerate("xyz"))
              + " mm")
        print("  per joint mm: " + " ".join(
            f"{Joint(j).name.lower()} {dist[..., j][valid[..., j]].mean():.0f}" for j in range(dist.shape[-1])))
        # Per subject, with the mean signed error (prediction - truth; camera y is up): a subject whose feet leave
        # the frame shows a large positive y (the joints placed at the frame's edge, above where they are). Then the
        # same error with each frame's mean offset removed (placement), then also its best scale (size): what is
        # left is the pose. A size ratio below 1 means the predicted skeleton is smaller than the true one.
        subjects = np.array([r.subject for r in refs])
        outside = np.stack([prep.camera(i).outside(tm[i]) for i in range(len(prep))])  # the true joints
        v3 = valid[..., None]
        pc = _centred(pm, v3)
        tc = _centred(tm, v3)
        dot = np.where(v3, pc * tc, 0.0).sum(axis=(-1, -2))
        pp2 = np.where(v3, pc * pc, 0.0).sum(axis=(-1, -2))
        tt2 = np.where(v3, tc * tc, 0.0).sum(axis=(-1, -2))
        best = np.where(pp2 > 0, dot / np.maximum(pp2, 1e-12), 1.0)[..., None, None]
        centred = np.linalg.norm(pc - tc, axis=-1) * 1000.0
        scaled = np.linalg.norm(best * pc - tc, axis=-1) * 1000.0
        size = np.sqrt(pp2 / np.maximum(tt2, 1e-12))
        per, pose = [], []
        for s in np.unique(subjects):
            v = valid & (subjects == s)[:, None, None]
            f = (subjects == s)[:, None] & (valid.sum(-1) > 0)
            per.append(f"{s} {dist[v].mean():.0f} mm (signed y {err[..., 1][v].mean():+.0f}, "
                       f"{100 * outside[v].mean():.0f}% of joints out of frame)")
            pose.append(f"{s} {centred[v].mean():.0f} / {scaled[v].mean():.0f} mm (size {np.median(size[f]):.3f})")
        print("  per subject: " + "; ".join(per))
        print("  per subject, placement removed / and size: " + "; ".join(pose))

def _centred(joints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(..., joints, 3)`` less each frame's mean over its valid joints."""
    n = np.maximum(valid.sum(axis=-2, keepdims=True), 1)
    mean = np.where(valid, joints, 0.0).sum(axis=-2, keepdims=True) / n
    return joints - mean


if __name__ == "__main__":
    main()
