"""Epoch times with each way of feeding batches to the step (``Trainer._batches``).

* ``tf.data autotuned``: deleting an epoch's iterator waited for tf.data's model thread, so some epochs
  ended in an idle stall (seen with gdb: the main thread in ``RootDataset::Iterator::~Iterator``, the
  model thread in ``Model::OptimizeLoop``); autotuning is off since.
* ``tf.data``: ``Dataset.from_generator`` without autotuning, the feed of the distributed strategies;
* ``thread``: the batches made one step ahead in a thread, the one-device feed (no from_generator);
* ``thread, low priority``: the same thread at nice +10 (``Trainer.feed_niceness``), so that it fills the
  step's idle moments rather than competing with TensorFlow's threads.

Prints wall-clock and CPU seconds of six supervised epochs over all msr20 depth sequences
(``bench_train.epoch_time``), for each feed, ``--rounds`` times in turn. Run it on an idle machine:

    python -m benchmarks.probe_epoch_stall [--feeds "thread;thread, low priority"] [--rounds 1]
"""

from __future__ import annotations

import argparse


def main(argv=None) -> None:
    from benchmarks.bench_train import FEEDS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", default=";".join(FEEDS), help=f"Semicolon-separated, of: {'; '.join(FEEDS)}.")
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    feeds = args.feeds.split(";")
    if unknown := set(feeds) - set(FEEDS):
        ap.error(f"unknown feed(s) {sorted(unknown)}; choose from {'; '.join(FEEDS)}")

    from benchmarks.bench_train import epoch_time
    from benchmarks.datasets import synthetic_set
    from kerasdance.config import RunConfig
    from kerasdance.keras_backend import keras

    for _ in range(args.rounds):
        for feed in feeds:
            keras.backend.clear_session()
            et = epoch_time(synthetic_set("msr20"), RunConfig(), feed=feed)
            wall = [et["first_epoch_s"], *et["epoch_times"]]
            print(f"{feed:21s}: wall s " + ", ".join(f"{w:.2f}" for w in wall)
                  + f" (median of 2-6: {et['epoch_s']:.2f})"
                  + " | CPU s (epochs 2-6) " + ", ".join(f"{c:.1f}" for c in et["epoch_cpu_s"]), flush=True)


if __name__ == "__main__":
    main()
