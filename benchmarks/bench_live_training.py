"""Training for the live path (issue 25, part 3): does training on continuous performances help the tracker?

Two runs of the default recipe with live training windows (`--live-windows`) and a subject-disjoint validation
subject (`--val-subjects 9`, carved out of the training subjects 1, 3, 5, 7, 9):

* ``clips``: the synthetic msr20 clips only;
* ``clips+perf``: the same clips plus continuous performances (`kerasdance synth --continuous`, 2 takes of
  6 moves per training subject) in one generic-layout dataset: each performance trains as its moves, each with
  the frames before it that a live window ending in the move reaches back to (the previous move, the transition).

Both are exported to int8 and replayed through the device's tracker (`kerasdance_edge.live_eval`) on the
validation subject: its clips back to back, and its own continuous performances (per-frame labels: moves chained
with transitions and pauses, each take replayed alone). ``--stage val`` writes those figures (the decision);
``--stage test`` then replays the test subjects (2, 4, 6, 8, 10) once for both runs and writes them beside.

    python -m benchmarks.bench_live_training --stage val
    python -m benchmarks.bench_live_training --stage test
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import table, write_section
from benchmarks.datasets import synthetic_set

ROOT = Path(__file__).resolve().parent / ".data"
TRAIN_SUBJECTS = (1, 3, 5, 7, 9)
VAL_SUBJECT = 9


def performances(seed: int) -> Path:
    """Continuous msr20 performances of every subject (2 takes of 6 moves), generic layout."""
    from kerasdance.data.synthetic import write_performances

    out = ROOT / f"msr20-perf-seed{seed}"
    if not (out / "dataset.json").exists():
        write_performances("msr20", out, seed=seed, takes=2, moves=6)
    return out


def clips_plus_performances(seed: int) -> Path:
    """The msr20 clips (every subject) and the training subjects' performances in one generic-layout dataset."""
    from kerasdance.data import synthetic as S
    from kerasdance.data.dataset import Dataset, write_generic

    out = ROOT / f"msr20-plus-perf-seed{seed}"
    if (out / "dataset.json").exists():
        return out
    clips = Dataset.open(synthetic_set("msr20", seed))

    def sequences():
        for ref in clips.refs:
            yield clips.load(ref)
        for s in TRAIN_SUBJECTS:
            for take in (1, 2):
                yield S.generate_performance("msr20", s, take, seed=seed, moves=6)

    write_generic(out, sequences(), S.class_names("msr20"), clips.intrinsics, fps=15.0)
    return out


def train(name: str, data: Path, seed: int, epochs: int) -> Path:
    run = ROOT / "runs" / name
    if (run / "metrics.json").exists():
        return run
    cmd = [sys.executable, "-m", "kerasdance.cli", "train", "--data", str(data), "--out", str(run), "--seed",
           str(seed), "--epochs", str(epochs), "--live-windows", "--val-subjects", str(VAL_SUBJECT),
           "--cache-dir", str(ROOT / "cache")]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd + (["--resume"] if (run / "checkpoints").exists() else []), check=True)
    return run


def export_int8(run: Path) -> Path:
    """int8 export without the verification on the test split (the decision must not read it)."""
    from kerasdance.export.exporter import export_run

    out = run / "exports" / "int8-noverify.tflite"
    if not out.exists():
        export_run(run, out, format="int8", verify=False, max_drop=100.0, cache_dir=ROOT / "cache")
    return out


def measure(name: str, run: Path, part: str, clips: Path, perf: Path) -> dict:
    from kerasdance.evaluate import evaluate_run
    from kerasdance_edge.interpreter import EdgeModel
    from kerasdance_edge.live_eval import evaluate_live

    model = EdgeModel(export_int8(run))
    offline = evaluate_run(run, clips, ROOT / "cache", part=part)[0]
    b2b = evaluate_live(model, clips, modes=("continuous",), part=part)["modes"]["continuous"]
    dance = evaluate_live(model, perf, modes=("alone",), part=part)["modes"]["alone"]
    return {"run": name, "split": part, "offline_acc": offline["accuracy"] * 100,
            "offline_mpjpe": offline["mpjpe_mm"],
            "b2b_acc": b2b["move_accuracy_frames"] * 100, "b2b_ratio": b2b["move_accuracy_frames"] /
            offline["accuracy"] * 100, "b2b_mpjpe": b2b["mpjpe_mm"], "b2b_lag": b2b["lag_s_median"],
            "dance_acc": dance["move_accuracy_frames"] * 100, "dance_shown": dance["move_accuracy_shown"] * 100,
            "dance_mpjpe": dance["mpjpe_mm"], "dance_lag": dance["lag_s_median"],
            "dance_lag90": dance["lag_s_p90"], "dance_missed": dance["move_changes_missed"],
            "dance_changes": dance["move_changes"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["val", "test"], required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = ap.parse_args(argv)
    clips = synthetic_set("msr20", args.seed)
    perf = performances(args.seed)
    plus = clips_plus_performances(args.seed)
    runs = {"clips": train(f"live-clips-v9-{args.seed}", clips, args.seed, args.epochs),
            "clips+perf": train(f"live-plus-v9-{args.seed}", plus, args.seed, args.epochs)}
    results = ROOT / f"live_training-{args.seed}.json"
    rows = json.loads(results.read_text()) if results.exists() else []
    rows = [r for r in rows if r["split"] != args.stage]
    rows += [measure(name, run, args.stage, clips, perf) for name, run in runs.items()]
    results.write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows, indent=2))
    if args.no_write:
        return
    rows = []  # every seed measured so far, one table
    for path in sorted(ROOT.glob("live_training-*.json")):
        seed = int(path.stem.rsplit("-", 1)[1])
        rows += [dict(r, seed=seed) for r in json.loads(path.read_text())]
    body = ["### Training for the live path: clips vs clips + continuous performances (issue 25)", "",
            "Default recipe, `--live-windows`, `--val-subjects 9`, "
            f"{args.epochs} epochs; data and training seeded alike (`--seed`); int8 exports (not verified on "
            "test). *Offline*: `kerasdance "
            "evaluate --split ...` (each clip whole). *Clips b2b*: the split's clips back to back through the "
            "device's tracker, every frame scored (`kerasdance-edge eval --mode continuous`). *Dancing*: the "
            "split's subjects' own continuous performances (moves chained with transitions and pauses, per-frame "
            "labels; frames without a move are not scored), each take replayed alone. Lag: from a move change to "
            "the first frame showing the new move. The choice is made on the validation rows (subject 9); the "
            "test rows (subjects 2, 4, 6, 8, 10) are read once, after it.", "",
            table(sorted(rows, key=lambda r: (r["split"] != "val", r["seed"], r["run"])),
                  [("split", "split"), ("seed", "seed"), ("run", "training data"), ("offline_acc", "offline acc %"),
                   ("offline_mpjpe", "offline MPJPE mm"), ("b2b_acc", "clips b2b: acc frames %"),
                   ("b2b_ratio", "b2b / offline %"), ("b2b_mpjpe", "b2b MPJPE mm"), ("b2b_lag", "b2b lag s"),
                   ("dance_acc", "dancing: acc frames %"), ("dance_shown", "dancing: acc shown %"),
                   ("dance_mpjpe", "dancing MPJPE mm"), ("dance_lag", "dancing lag median s"),
                   ("dance_lag90", "lag p90 s"), ("dance_missed", "changes missed"),
                   ("dance_changes", "changes")])]
    write_section("live_training", "\n".join(body),
                  f"python -m benchmarks.bench_live_training --stage {args.stage} --seed {args.seed}")


if __name__ == "__main__":
    main()
