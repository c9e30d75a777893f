"""A run's last epoch (its latest checkpoint) on the validation or test split, next to the kept ``model.keras``.

With a validation split the trainer keeps the best epoch by validation accuracy; this says what the last epoch
would have given. ``--split val`` (the default) reads only the validation split; ``--split test`` is for reading
the test split once, for a setting already chosen on validation (docs/EXPERIMENTS.md, "Validation discipline").

    python -m benchmarks.probe_last_epoch benchmarks/.data/runs/val-epochs120-0 [--split val|test]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.datasets import CACHE

FIGURES = ("accuracy", "mpjpe_mm", "map_10cm")


def last_epoch(run_dir: Path, part: str = "val") -> dict:
    """``{"run", "split", "last_epoch", "last": figures}`` and, for ``part="val"``, the kept model's figures
    (``metrics.json``'s ``val``) as ``kept``."""
    import tensorflow as tf

    from kerasdance.config import RunConfig
    from kerasdance.data.splits import load_train_data
    from kerasdance.evaluate import evaluate_prepared
    from kerasdance.training.trainer import Trainer

    cfg = RunConfig.of_run(run_dir)
    data, test = load_train_data(json.loads((run_dir / "data.json").read_text())["data_dir"], cfg, CACHE)
    if part == "val" and data.val is None:
        raise SystemExit(f"{run_dir} has no validation split")
    trainer = Trainer(cfg, run_dir, data, tf.distribute.get_strategy())
    epoch, _, _ = trainer.restore_latest()
    prepared = data.val if part == "val" else test
    vm = evaluate_prepared(trainer.predict(prepared), prepared, cfg)
    out = {"run": run_dir.name, "split": part, "last_epoch": epoch + 1, "n": vm["n_test"],
           "last": {k: vm[k] for k in FIGURES}}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if part == "val" and "val" in metrics:
        out.update(kept_epoch=metrics["best_epoch"], kept={k: metrics["val"][k] for k in FIGURES})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--split", choices=("val", "test"), default="val")
    args = p.parse_args()
    for run in args.runs:
        print(json.dumps(last_epoch(run, args.split)))


if __name__ == "__main__":
    main()
