"""Test accuracy of finished runs per test subject: which performers a model gets wrong.

Evaluates each run's ``model.keras`` on its protocol's test split (as ``kerasdance evaluate``) and prints the
accuracy over all test sequences and per subject. On synthetic msr20, subjects 4 and 7 are left-handed (the
generator mirrors their moves); the cross-subject split tests on 2, 4, 6, 8, 10.

    python -m benchmarks.probe_subjects benchmarks/.data/runs/msr20-depth-0.2-semi_after_supervised-1 [...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.datasets import CACHE


def subject_accuracy(run_dir: Path) -> tuple[float, dict[int, float]]:
    """Accuracy (%) over the run's test split and per test subject."""
    from kerasdance.config import RunConfig
    from kerasdance.data import pipeline
    from kerasdance.data.dataset import Dataset, split
    from kerasdance.keras_backend import keras
    from kerasdance.training.trainer import predict_windows

    cfg = RunConfig.load(run_dir / "config.json", saved_run=True)
    ds = Dataset.open(json.loads((run_dir / "data.json").read_text())["data_dir"])
    sp = split(ds.refs, cfg.train.protocol, ds.class_names)
    test = pipeline.prepare(ds, sp.test, cfg.data, CACHE, cfg.model.input_mode == "depth")
    model = keras.models.load_model(run_dir / "model.keras", safe_mode=True, compile=False)
    pred = predict_windows(model, pipeline.WindowSampler(test, cfg.data, cfg.model.input_mode, augment=None))
    ok = np.argmax(pred["logits"], axis=-1) == test.labels
    per = {int(s): 100 * float(ok[test.subjects == s].mean()) for s in np.unique(test.subjects)}
    return 100 * float(ok.mean()), per


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="Run folders (a few-label run's supervised_stage/ too).")
    args = ap.parse_args(argv)
    for run in args.runs:
        if not (run / "model.keras").exists():
            raise SystemExit(f"{run} has no model.keras: not a finished run folder")
        acc, per = subject_accuracy(run)
        print(f"{run}: {acc:.1f}%  " + "  ".join(f"s{s} {a:.0f}%" for s, a in per.items()), flush=True)


if __name__ == "__main__":
    main()
