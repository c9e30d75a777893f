"""Which pseudo-labels does OHEM back-propagate? Right and wrong ones among those it keeps and drops.

Trains the default method on msr20 with 20% labels (``label_efficiency``'s "semi, after supervised": the
same config and seed, so it ends at that table row's accuracy) and counts, over every self-training step's
strongly augmented view, the unlabelled examples that carry a pseudo-label: kept by OHEM or dropped,
pseudo-label right or wrong (against the hidden labels, which training never reads). Where that benchmark's
run folder is there, its supervised stage is reused and only the self-training stage runs.

    python -m benchmarks.probe_ohem_pseudo [--seeds 0,1,2] [--epochs 40]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.datasets import CACHE, DATA, synthetic_set


def probe(seed: int, epochs: int) -> dict:
    from kerasdance.config import RunConfig
    from kerasdance.keras_backend import keras
    from kerasdance.training import trainer as T

    stage = DATA / "runs" / f"msr20-depth-0.2-semi_after_supervised-{seed}" / "supervised_stage"
    reuse = (stage / "model.keras").exists() and _same_recipe(stage / "config.json", epochs)
    counts = np.zeros((2, 2), np.int64)  # [kept by OHEM][pseudo-label right]

    class Counting(T.Trainer):
        def _hard_example_weights(self, per, valid):  # the step's last call is the strong view's
            self._kept = super()._hard_example_weights(per, valid)
            return self._kept

        def _step(self, batch, unl_weight):
            return {**super()._step(batch, unl_weight), "ohem_kept": self._kept}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            step = self._train_step

            def counted(batch, unl_weight):
                res = step(batch, unl_weight)
                if "pseudo_mask" in res:
                    idx = batch["index"].numpy()
                    sel = (res["pseudo_mask"].numpy() > 0) & (self.data.train.labels[idx] < 0)
                    kept = res["ohem_kept"].numpy()[sel] > 0
                    right = res["pseudo_label"].numpy()[sel] == self.data.hidden_labels[idx][sel]
                    np.add.at(counts, (kept.astype(int), right.astype(int)), 1)
                return res

            self._train_step = counted

    cfg = RunConfig().replace(train={"epochs": epochs, "labelled_fraction": 0.2, "seed": seed})
    keras.backend.clear_session()
    original, T.Trainer = T.Trainer, Counting
    try:
        with tempfile.TemporaryDirectory() as tmp:
            m = T.train(synthetic_set("msr20"), Path(tmp) / "run", cfg, cache_dir=CACHE, verbose=0,
                        init_from=stage if reuse else None)
    finally:
        T.Trainer = original
    kept, dropped = counts[1].sum(), counts[0].sum()
    return {"seed": seed, "accuracy": m["accuracy"], "kept": int(kept), "kept_wrong": counts[1, 0] / max(kept, 1),
            "dropped": int(dropped), "dropped_wrong": counts[0, 0] / max(dropped, 1)}


def _same_recipe(config_json: Path, epochs: int) -> bool:
    """The stage was trained for ``epochs`` with today's model and key-point weight (not an earlier recipe's)."""
    from kerasdance.config import RunConfig

    if not config_json.exists():
        return False
    saved, today = RunConfig.load(config_json, saved_run=True), RunConfig().replace(model={"num_classes": 20})
    return (saved.model == today.model and saved.train.keypoint_weight == today.train.keypoint_weight
            and saved.train.epochs == epochs)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args(argv)
    for seed in map(int, args.seeds.split(",")):
        r = probe(seed, args.epochs)
        print(f"seed {seed}: accuracy {r['accuracy']:.1%}; pseudo-labelled unlabelled examples kept by OHEM "
              f"{r['kept']} ({r['kept_wrong']:.1%} wrong), dropped {r['dropped']} ({r['dropped_wrong']:.1%} wrong)",
              flush=True)


if __name__ == "__main__":
    main()
