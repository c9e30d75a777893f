"""Epoch times with tf.data autotuning on and off (the stall fixed in ``Trainer._dataset``).

With autotuning on, deleting an epoch's iterator waited for tf.data's model thread, so some epochs
ended in an idle stall (seen with gdb: the main thread in ``RootDataset::Iterator::~Iterator``, the
model thread in ``Model::OptimizeLoop``). Prints wall-clock and CPU seconds of six supervised epochs
over all msr20 depth sequences (``bench_train.epoch_time``), for each setting. Run it on an idle machine:

    python -m benchmarks.probe_epoch_stall
"""

from __future__ import annotations


def main() -> None:
    from benchmarks.bench_train import epoch_time
    from benchmarks.datasets import synthetic_set
    from kerasdance.config import RunConfig
    from kerasdance.keras_backend import keras

    for autotune in (True, False):
        keras.backend.clear_session()
        et = epoch_time(synthetic_set("msr20"), RunConfig(), tf_data_autotune=autotune)
        wall = [et["first_epoch_s"], *et["epoch_times"]]
        print(f"autotune {'on ' if autotune else 'off'}: wall s " + ", ".join(f"{w:.2f}" for w in wall)
              + " | CPU s (epochs 2-6) " + ", ".join(f"{c:.1f}" for c in et["epoch_cpu_s"]), flush=True)


if __name__ == "__main__":
    main()
