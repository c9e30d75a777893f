"""The flip test on finished runs: key-point error of each run's model with and without ``--flip-test``.

Evaluates the ``model.keras`` of runs that the other benchmarks trained (as ``kerasdance evaluate RUN
[--flip-test]``), on their protocol's test split, and writes the "Flip test" section of BENCHMARKS.md. A group
whose runs are not on disk is skipped with the command that trains them. Evaluation only: minutes, not hours.

    python -m benchmarks.bench_flip_test
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.common import mean_sd, table, write_section
from benchmarks.datasets import CACHE, DATA

#: (what, run folder under benchmarks/.data/runs with {seed}, the command that trains the runs).
GROUPS = (
    ("msr20, all labels, defaults (recipe 6)", "msr20-depth-1.0-supervised-{seed}",
     'python -m benchmarks.label_efficiency --sets msr20 --fractions 1.0 --only supervised --seeds 0,1,2 '
     '--epochs 120'),
    ("msr20, all labels, defaults with --mirror", "msr20-depth-1.0-supervised_mirror-{seed}",
     'python -m benchmarks.label_efficiency --sets msr20 --fractions 1.0 --only "supervised, mirror" '
     '--seeds 0,1,2 --epochs 120'),
    ("msr20, all labels, configs/keypoints.json", "full-msr20-depth-head29-{seed}",
     'python -m benchmarks.bench_train --heads --epochs 200 --seeds 0,1,2 '
     '--head "heat-map, stride 8, frame-edge cuts, OHEM ranks the class loss"'),
    ("msr20, all labels, configs/keypoints_mirror.json (keypoints.json with --mirror)",
     "full-msr20-depth-head30-{seed}",
     'python -m benchmarks.bench_train --heads --epochs 300 --seeds 0,1,2 '
     '--head "heat-map, stride 8, frame-edge cuts, OHEM ranks the class loss, mirror"'),
    ("msr20, 20% labels, defaults", "msr20-depth-0.2-semi_after_supervised-{seed}",
     'python -m benchmarks.label_efficiency --sets msr20 --fractions 0.2 --only "semi, after supervised" '
     '--seeds 0,1,2 --epochs 120'),
    ("msr20, 20% labels, configs/keypoints.json",
     "msr20-depth-0.2-semi_after_supervised_key_point_config-{seed}",
     'python -m benchmarks.label_efficiency --sets msr20 --fractions 0.2 --only "semi, after supervised, '
     'key-point config" --seeds 0,1,2 --epochs 200'),
    ("dance11, all labels, defaults", "dance11-depth-1.0-supervised-{seed}",
     'python -m benchmarks.label_efficiency --sets dance11 --fractions 1.0 --only supervised --seeds 0,1,2 '
     '--epochs 120'),
    ("dance11, all labels, configs/keypoints.json", "dance11-depth-1.0-supervised_key_point_config-{seed}",
     'python -m benchmarks.label_efficiency --sets dance11 --fractions 1.0 --only "supervised, key-point config" '
     '--seeds 0,1,2 --epochs 200'),
    ("dance11, 20% labels, configs/keypoints.json",
     "dance11-depth-0.2-semi_after_supervised_key_point_config-{seed}",
     'python -m benchmarks.label_efficiency --sets dance11 --fractions 0.2 --only "semi, after supervised, '
     'key-point config" --seeds 0,1,2 --epochs 200'),
)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]

    from kerasdance.evaluate import evaluate_run

    rows, missing = [], []
    for what, pattern, cmd in GROUPS:
        runs = [(s, DATA / "runs" / pattern.format(seed=s)) for s in seeds]
        runs = [(s, r) for s, r in runs if (r / "metrics.json").exists()]  # finished (written last)
        if not runs:
            missing.append(f"- {what}: no runs; `{cmd}`")
            continue
        per, epochs = [], set()
        for seed, run in runs:
            plain, _ = evaluate_run(run, cache_dir=CACHE)
            flip, _ = evaluate_run(run, cache_dir=CACHE, flip_test=True)
            if flip["accuracy"] != plain["accuracy"]:
                raise SystemExit(f"{run}: the flip test changed the accuracy; it must name the class from the window")
            per.append({"plain": plain["mpjpe_mm"], "flip": flip["mpjpe_mm"], "plain10": 100 * plain["map_10cm"],
                        "flip10": 100 * flip["map_10cm"]})
            epochs.add(json.loads((run / "config.json").read_text())["train"]["epochs"])
            print(f"{what}, seed {seed}: {plain['mpjpe_mm']:.1f} -> {flip['mpjpe_mm']:.1f} mm, "
                  f"{100 * plain['map_10cm']:.1f} -> {100 * flip['map_10cm']:.1f}% within 10 cm", file=sys.stderr)
        rows.append({"what": what, "seeds": ",".join(str(s) for s, _ in runs),
                     "epochs": "/".join(str(e) for e in sorted(epochs)),
                     **{k: mean_sd(per, k) for k in ("plain", "flip", "plain10", "flip10")},
                     "gain": " / ".join(f"{r['plain'] - r['flip']:.1f}" for r in per)})
    body = ["### Flip test (issue 3)", "",
            "Key-points averaged with those predicted for the mirrored window (`kerasdance evaluate RUN "
            "--flip-test`; two model calls per window; the class is named from the window as it is). Test split of "
            "each set's cross-subject protocol, camera-space MPJPE through the crop inverse; mean ± sd (population) "
            "over seeds, and each seed's gain in mm.", "",
            table(rows, [("what", "runs"), ("seeds", "seeds"), ("epochs", "epochs (last stage)"),
                         ("plain", "MPJPE mm"), ("flip", "with flip test"),
                         ("gain", "gain per seed, mm"), ("plain10", "within 10 cm %"),
                         ("flip10", "with flip test %")])]
    if missing:
        body += ["", "Not on disk when this was run (train them first):", *missing]
    write_section("flip_test", "\n".join(body), "python -m benchmarks.bench_flip_test")
    print("\n".join(body))


if __name__ == "__main__":
    main()
