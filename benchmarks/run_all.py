"""``make bench``: every benchmark, each writing its section of BENCHMARKS.md.

The full set takes well over an hour on 2 cores; run one script alone to refresh one section.
"""

from __future__ import annotations

from benchmarks import (
    bench_edge,
    bench_export,
    bench_flip_test,
    bench_live,
    bench_synth,
    bench_train,
    label_efficiency,
)
from benchmarks.datasets import CACHE, DATA


def main() -> None:
    bench_synth.main()
    bench_train.main(["--epochs", "120"])  # the default length
    # Recipe 6's default spelled out, the same config as "heat-map, stride 8": that name runs at 40 epochs,
    # the second of these at 120.
    same_as_default = ("heat-map, stride 8, key-point weight 100", "heat-map, stride 8, key-point weight 100, "
                       "learning rate 4e-3")
    heads = [a for h in bench_train.HEADS if h not in same_as_default for a in ("--head", h)]
    bench_train.main(["--heads", "--epochs", "40", *heads])
    bench_train.main(["--heads", "--epochs", "120", "--seeds", "0,1,2", "--head", same_as_default[1],
                      "--head", "heat-map, stride 8, 3x3 hidden conv, key-point weight 30",
                      "--head", "heat-map, stride 8, temporal refinement 5, key-point weight 10",
                      "--head", "heat-map, stride 8, no temporal refinement, key-point weight 3",
                      "--head", "heat-map, stride 8, OHEM ranks the class loss"])
    label_efficiency.main(["--sets", "msr20", "--matched-steps", "--epochs", "40"])
    # dance11: 5% and 10% keep the same sequences as 20% (1 per class), so they would repeat its rows.
    label_efficiency.main(["--sets", "dance11", "--fractions", "0.2,0.5,1.0", "--pretraining", "--matched-steps",
                           "--epochs", "40"])
    label_efficiency.main(["--sets", "msr20,dance11", "--fractions", "0.2",
                           "--only", "semi, after supervised, no distribution alignment"])
    label_efficiency.main(["--sets", "msr20,dance11", "--fractions", "0.2",
                           "--only", "semi, after supervised, OHEM ranks the class loss"])
    label_efficiency.main(["--sets", "msr20,dance11", "--fractions", "0.2",
                           "--only", "semi, after supervised, heat-map regulariser 10"])
    bench_train.main(["--heads", "--epochs", "120", "--seeds", "0,1,2",
                      "--head", "heat-map, stride 8, heat-map regulariser 10"])
    bench_train.main(["--heads", "--epochs", "120", "--head", "heat-map, stride 8, heat-map regulariser 3",
                      "--head", "heat-map, stride 8, heat-map regulariser 30"])
    label_efficiency.main(["--sets", "msr20", "--fractions", "0.2", "--only", "semi, fixed threshold 0.95",
                           "--only", "semi, no key-point consistency",
                           "--only", "semi, after supervised, fixed threshold 0.95"])
    # The earlier ablations of self-training from scratch (the default plan ablates the supervised-stage method).
    label_efficiency.main(["--sets", "dance11", "--fractions", "0.2", "--only", "semi, no OHEM",
                           "--only", "semi, CE only"])
    # The baselines of the supervised-stage method (40 + 40 epochs): supervised-only at 80, and restarted.
    label_efficiency.main(["--sets", "msr20,dance11", "--fractions", "0.2", "--epochs", "80", "--only", "supervised"])
    label_efficiency.main(["--sets", "msr20,dance11", "--fractions", "0.2", "--only", "supervised, restarted"])
    # Longer training: all labels at the default 120 epochs; at 20%, about the same number of steps each.
    label_efficiency.main(["--sets", "msr20,dance11", "--fractions", "1.0", "--epochs", "120"])
    label_efficiency.main(["--sets", "msr20", "--fractions", "0.2", "--seeds", "0", "--epochs", "80", "--only", "semi"])
    label_efficiency.main(["--sets", "msr20", "--fractions", "0.2", "--seeds", "0", "--epochs", "120",
                           "--only", "supervised"])
    # configs/keypoints.json (200 epochs, frame-edge cuts, OHEM ranking the class loss), its steps, and with --mirror.
    bench_train.main(["--heads", "--epochs", "200", "--seeds", "0,1,2",
                      "--head", "heat-map, stride 8, key-point weight 100, learning rate 4e-3",
                      "--head", "heat-map, stride 8, OHEM ranks the class loss",
                      "--head", "heat-map, stride 8, frame-edge cuts, OHEM ranks the class loss",
                      "--head", "heat-map, stride 8, frame-edge cuts, OHEM ranks the class loss, mirror"])
    label_efficiency.main(["--sets", "msr20", "--fractions", "0.2", "--epochs", "200",
                           "--only", "semi, after supervised, key-point config"])
    bench_flip_test.main([])
    run = DATA / "runs" / "full-msr20-depth-0"
    bench_export.main(["--run", str(run), "--cache", str(CACHE)])
    bench_edge.main(["--model", str(run / "exports" / "int8_unrolled.tflite"), "--seconds", "600"])
    bench_live.main([a for seed in (0, 1, 2) for a in ("--run", str(DATA / "runs" / f"full-msr20-depth-{seed}"))])


if __name__ == "__main__":
    main()
