"""Epoch times with each way of feeding batches to the step (``Trainer._batches``).

* ``tf.data autotuned``: deleting an epoch's iterator waited for tf.data's model thread, so some epochs
  ended in an idle stall (seen with gdb: the main thread in ``RootDataset::Iterator::~Iterator``, the
  model thread in ``Model::OptimizeLoop``); autotuning is off since.
* ``tf.data``: ``Dataset.from_generator`` without autotuning, the feed of the distributed strategies;
* ``thread``: the batches made one step ahead in a thread, the one-device feed (no from_generator).

Prints wall-clock and CPU seconds of six supervised epochs over all msr20 depth sequences
(``bench_train.epoch_time``), for each feed. Run it on an idle machine:

    python -m benchmarks.probe_epoch_stall
"""

from __future__ import annotations


def main() -> None:
    from benchmarks.bench_train import FEEDS, epoch_time
    from benchmarks.datasets import synthetic_set
    from kerasdance.config import RunConfig
    from kerasdance.keras_backend import keras

    for feed in FEEDS:
        keras.backend.clear_session()
        et = epoch_time(synthetic_set("msr20"), RunConfig(), feed=feed)
        wall = [et["first_epoch_s"], *et["epoch_times"]]
        print(f"{feed:17s}: wall s " + ", ".join(f"{w:.2f}" for w in wall)
              + " | CPU s (epochs 2-6) " + ", ".join(f"{c:.1f}" for c in et["epoch_cpu_s"]), flush=True)


if __name__ == "__main__":
    main()
