"""Test accuracy of finished runs per test subject: which performers a model gets wrong.

Evaluates each run's ``model.keras`` on its protocol's test split (as ``kerasdance evaluate``) and prints the
accuracy over all test sequences and per subject. On synthetic msr20, subjects 4 and 7 are left-handed (the
generator mirrors their moves); the cross-subject split tests on 2, 4, 6, 8, 10.

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
