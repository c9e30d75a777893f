"""Skeleton input against a real tracker's joints: train on clean or noise-augmented joints, test on clean,
``kinect`` and ``hard`` tracker-noise joints (``kerasdance.data.tracker_noise``).

msr20 (synthetic), cross-subject, all labels, skeleton input, validation on a seeded 1/5 of the training subjects
(``val_subjects="auto"``): the default of ``TrainConfig.skeleton_noise`` is the training level with the best
validation accuracy (mean over clean, kinect and hard validation joints), never the test figures. The stored
synthetic joints are the truth plus ~12 mm jitter, so the noise is applied on top of them, per sequence, seeded.
Writes the "Skeleton input vs tracker noise" section of BENCHMARKS.md.

    python -m benchmarks.bench_skeleton_noise                 # 1 seed, 40 epochs: ~15 min on 2 cores
    python -m benchmarks.bench_skeleton_noise --seeds 0,1,2 --epochs 60
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time

import numpy as np

from benchmarks.common import table, write_section
from benchmarks.datasets import CACHE, DATA, synthetic_set

#: (name, DataConfig changes, TrainConfig.skeleton_noise): the features and the training-time noise.
VARIANTS = (
    ("plain features, clean training", {"skeleton_repair": False}, "clean"),
    ("repaired features, clean training", {"skeleton_repair": True}, "clean"),
    ("repaired features, kinect-noise training", {"skeleton_repair": True}, "kinect"),
    ("repaired features, hard-noise training", {"skeleton_repair": True}, "hard"),
)
LEVELS = ("clean", "kinect", "hard")
#: Seeds of the evaluation noise (validation and test draw their own).
NOISE_SEED = {"val": 9001, "test": 9002}


def accuracy(model, prepared, cfg, level: str, noise_seed: int) -> float:
    """Accuracy of ``model`` on ``prepared`` with its joints through the tracker noise ``level``."""
    from kerasdance.data.tracker_noise import apply_to_sequences
    from kerasdance.inference import predict_prepared

    noisy = dataclasses.replace(prepared, joints_m=apply_to_sequences(prepared.joints_m, prepared.offsets, level,
                                                                       seed=noise_seed))
    logits = predict_prepared(model, noisy, cfg)["logits"]
    return float(np.mean(np.argmax(logits, axis=-1) == noisy.labels) * 100.0)


def run_one(name: str, data_change: dict, noise: str, seed: int, epochs: int, data_dir) -> dict:
    from kerasdance.config import RunConfig
    from kerasdance.data.splits import load_train_data
    from kerasdance.models.lstm_cnn import load_model
    from kerasdance.training.trainer import train

    slug = name.replace(",", "").replace(" ", "_")
    run_dir = DATA / "runs" / f"skeleton-noise-{slug}-e{epochs}-{seed}"
    cfg = RunConfig().replace(data=data_change, model={"input_mode": "skeleton"},
                              train={"epochs": epochs, "seed": seed, "skeleton_noise": noise, "val_subjects": "auto",
                                     "labelled_fraction": 1.0})
    t0 = time.time()
    if not (run_dir / "metrics.json").exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        train(data_dir, run_dir, cfg, cache_dir=CACHE, verbose=0)
    cfg = RunConfig.of_run(run_dir)
    data, test = load_train_data(data_dir, cfg, CACHE)
    model = load_model(run_dir / "model.keras")
    row = {"variant": name, "seed": seed, "train_s": time.time() - t0}
    for level in LEVELS:
        row[f"val_{level}"] = accuracy(model, data.val, cfg, level, NOISE_SEED["val"] + seed)
        row[f"test_{level}"] = accuracy(model, test, cfg, level, NOISE_SEED["test"] + seed)
    row["val_mean"] = float(np.mean([row[f"val_{lv}"] for lv in LEVELS]))
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--no-write", action="store_true", help="Print only; do not touch BENCHMARKS.md.")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    data_dir = synthetic_set("msr20")
    rows = [run_one(name, dc, noise, seed, args.epochs, data_dir) for name, dc, noise in VARIANTS for seed in seeds]
    summary = []
    for name, _, _ in VARIANTS:
        rs = [r for r in rows if r["variant"] == name]
        out = {"variant": name}
        for k in [f"val_{lv}" for lv in LEVELS] + ["val_mean"] + [f"test_{lv}" for lv in LEVELS]:
            v = np.array([r[k] for r in rs])
            out[k] = f"{v.mean():.1f}" if len(v) == 1 else f"{v.mean():.1f} ± {v.std():.1f}"
        summary.append(out)
    noisy_training = [s for s in summary if "repaired" in s["variant"]]
    best = max(noisy_training, key=lambda s: float(s["val_mean"].split()[0]))
    cols = [("variant", "features, training joints")] + [(f"val_{lv}", f"val {lv}") for lv in LEVELS] + [
        ("val_mean", "val mean")] + [(f"test_{lv}", f"test {lv}") for lv in LEVELS]
    body = (
        "## Skeleton input vs tracker noise\n\n"
        "Skeleton-mode accuracy (%) on msr20 (synthetic), cross-subject, all labels, with the test (and validation) "
        "joints passed through the tracker-noise model (`kerasdance.data.tracker_noise`: clean = the stored "
        "joints, i.e. the truth plus ~12 mm jitter; kinect / hard add lost joints and frames, freezes, left/right "
        "swaps, foot errors and wrong persons on top). 100% on clean joints no longer passes for a result: a real "
        "Kinect v1 tracker's joints are the kinect/hard columns' kind (on real MSR-Action3D skeleton input scored "
        "90.5%, below depth input's 91.9%). Validation: a seeded 1/5 of the training subjects "
        f"(`val_subjects=auto`); {args.epochs} epochs, {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), "
        "few to keep the shared 2-core machine free: differences of a point or two are within noise.\n\n"
        + table(summary, cols)
        + f"\n\nChosen on validation (mean of the three validation columns among the repaired-feature rows): "
        f"**{best['variant']}**; `TrainConfig.skeleton_noise` defaults to that row's level. The validation split is "
        "small (~55 sequences of one or two subjects), so its spread across seeds is as large as the gaps between "
        "the noise-trained rows: the choice is a weak one. The parameters of the kinect and hard levels are mostly "
        "guesses (see `kerasdance/data/tracker_noise.py`); only the share of recordings with many invalid rows "
        "comes from the real set. Test-column reading: "
        + "; ".join(f"{s['variant']}: kinect {s['test_kinect']}, hard {s['test_hard']}" for s in summary) + ".\n"
    )
    print(body)
    if not args.no_write:
        cmd = "python -m benchmarks.bench_skeleton_noise" + (
            f" --seeds {args.seeds}" if args.seeds != "0" else "") + (
            f" --epochs {args.epochs}" if args.epochs != 40 else "")
        write_section("skeleton-noise", body, cmd)


if __name__ == "__main__":
    main()
