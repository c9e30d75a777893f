"""Epoch times with tf.data autotuning on and off (the stall fixed in ``Trainer._dataset``).

With autotuning on, deleting an epoch's iterator waited for tf.data's model thread, so some epochs
ended in an idle stall (seen with gdb: the main thread in ``RootDataset::Iterator::~Iterator``, the
model thread in ``Model::OptimizeLoop``). Prints wall-clock and CPU seconds of six supervised epochs
over all msr20 depth sequences, for each setting. Run it on an idle machine:

    python -m benchmarks.probe_epoch_stall
"""

from __future__ import annotations

import resource
import time


def epochs(autotune: bool, n_epochs: int = 6) -> list[tuple[float, float]]:
    from benchmarks.datasets import CACHE, DATA, synthetic_set
    from kerasdance.config import RunConfig
    from kerasdance.data import pipeline
    from kerasdance.data.dataset import Dataset
    from kerasdance.keras_backend import keras, tf
    from kerasdance.training import trainer as T

    def _dataset(self, epoch):
        ds = pipeline.make_tf_dataset(self.sampler, epoch, self.cfg.train.batch_size, None)
        opts = tf.data.Options()
        opts.autotune.enabled = autotune
        return self.strategy.experimental_distribute_dataset(ds.with_options(opts))

    keras.backend.clear_session()
    cfg = RunConfig()
    ds = Dataset.open(synthetic_set("msr20"))
    prep = pipeline.prepare(ds, ds.refs, cfg.data, CACHE)
    cfg = cfg.replace(model={"num_classes": len(ds.class_names)}, train={"self_training": False})
    tr = T.Trainer(cfg, DATA / "runs" / "epoch-stall", T.TrainData(prep, None, ds.class_names, prep.labels),
                   T.make_strategy("default"))
    tr._dataset = _dataset.__get__(tr)
    out = []
    for e in range(n_epochs):
        t0, c0 = time.time(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        tr.run_epoch(e, None)
        out.append((time.time() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0))
    return out


def main() -> None:
    for autotune in (True, False):
        ts = epochs(autotune)
        print(f"autotune {'on ' if autotune else 'off'}: wall s " + ", ".join(f"{w:.2f}" for w, _ in ts)
              + " | CPU s " + ", ".join(f"{c:.1f}" for _, c in ts), flush=True)


if __name__ == "__main__":
    main()
