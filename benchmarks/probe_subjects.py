"""Test accuracy of finished runs per test subject: which performers a model gets wrong.

Evaluates each run's ``model.keras`` on its protocol's test split (as ``kerasdance evaluate``) and prints the
accuracy over all test sequences and per subject. On synthetic msr20, subjects 4 and 7 are left-handed (the
generator mirrors their moves); the cross-subject split tests on 2, 4, 6, 8, 10.

With ``--unlabelled`` it also scores a few-label run's model on the training sequences whose labels the run hid
(against those hidden labels), per training subject: where its pseudo-labels go wrong.

    python -m benchmarks.probe_subjects benchmarks/.data/runs/msr20-depth-0.2-semi_after_supervised-1 [...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.datasets import CACHE


def subject_accuracy(run_dir: Path) -> tuple[float, dict[int, float]]:
    """Accuracy (%) over the run's test split and per test subject."""
    from kerasdance.evaluate import predict_run

    pred, test, _, _ = predict_run(run_dir, cache_dir=CACHE)
    ok = np.argmax(pred["logits"], axis=-1) == test.labels
    per = {int(s): 100 * float(ok[test.subjects == s].mean()) for s in np.unique(test.subjects)}
    return 100 * float(ok.mean()), per


def unlabelled_accuracy(run_dir: Path) -> tuple[float, dict[int, str]]:
    """Accuracy (%) over the run's unlabelled training sequences, and per training subject "right/of"."""
    import json

    from kerasdance.config import RunConfig
    from kerasdance.data.pipeline import WindowSampler
    from kerasdance.data.splits import load_train_data
    from kerasdance.inference import predict_windows
    from kerasdance.models.lstm_cnn import load_model

    cfg = RunConfig.of_run(run_dir)
    data, _ = load_train_data(json.loads((run_dir / "data.json").read_text())["data_dir"], cfg, CACHE)
    unl = data.train.labels < 0
    if not unl.any():
        raise SystemExit(f"{run_dir}: every training sequence is labelled (not a few-label run)")
    pred = predict_windows(load_model(run_dir / "model.keras"),
                           WindowSampler(data.train, cfg.data, cfg.model.input_mode, augment=None))
    ok = np.argmax(pred["logits"], axis=-1) == data.hidden_labels
    per = {}
    for s in np.unique(data.train.subjects):
        of_s = unl & (data.train.subjects == s)
        per[int(s)] = f"{int(ok[of_s].sum())}/{int(of_s.sum())}"
    return 100 * float(ok[unl].mean()), per


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="Run folders (a few-label run's supervised_stage/ too).")
    ap.add_argument("--unlabelled", action="store_true",
                    help="Also score the unlabelled training sequences against their hidden labels, per subject.")
    args = ap.parse_args(argv)
    for run in args.runs:
        if not (run / "model.keras").exists():
            raise SystemExit(f"{run} has no model.keras: not a finished run folder")
        acc, per = subject_accuracy(run)
        print(f"{run}: {acc:.1f}%  " + "  ".join(f"s{s} {a:.0f}%" for s, a in per.items()), flush=True)
        if args.unlabelled:
            acc, right = unlabelled_accuracy(run)
            print(f"  unlabelled training sequences: {acc:.1f}%  " + "  ".join(f"s{s} {r}" for s, r in right.items()),
                  flush=True)


if __name__ == "__main__":
    main()
