"""``make demo``: the main job end to end on a small embedded default.

synthetic dance11 set -> inspect -> preview PNG -> train (semi-supervised, 50% labels)
-> evaluate -> export int8 TFLite -> track a replayed recording with the edge runtime.
Every step calls the same library functions as the CLI. Takes a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kerasdance.cli import show_progress
from kerasdance.config import RunConfig
from kerasdance.data.dataset import Dataset
from kerasdance.data.inspect import format_inspect, inspect
from kerasdance.data.synthetic import write_set
from kerasdance.errors import KerasdanceError
from kerasdance.evaluate import format_report
from kerasdance.export.exporter import export_run
from kerasdance.report import preview_png
from kerasdance.training.trainer import train


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    show_progress()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data_dir = out / "dance11"
    if not (data_dir / "classes.txt").exists():
        print(f"[1/6] rendering the synthetic dance11 set into {data_dir} ...")
        write_set("dance11", data_dir, seed=args.seed)
    ds = Dataset.open(data_dir)
    print("[2/6] dataset summary")
    print(format_inspect(inspect(ds)))
    png = preview_png(ds.load(ds.refs[0]), out / "preview.png")
    print(f"[3/6] preview of {ds.refs[0].name}: {png}")
    run_dir = out / "run"
    cfg = RunConfig().replace(
        data={"frames": 16, "crop_size": 48},
        model={"stem_filters": (8, 16, 32, 32), "lstm_units": 64, "conv_filters": (64, 64, 64)},
        train={"epochs": args.epochs, "labelled_fraction": 0.5, "seed": args.seed, "batch_size": 8,
               "unlabelled_rampup_epochs": 5, "supervised_stage_epochs": max(1, args.epochs // 2)},
    )
    print(f"[4/6] training in {run_dir} (50% labels: supervised on those, then self-training on the rest) ...")
    try:
        metrics = train(data_dir, run_dir, cfg, resume=(run_dir / "config.json").exists(), cache_dir=out / "cache",
                        verbose=1)
    except KerasdanceError as e:  # a demo run left by another version: the demo's own folder, start afresh
        print(f"      {e}\n      starting the demo run afresh")
        shutil.rmtree(run_dir)
        metrics = train(data_dir, run_dir, cfg, cache_dir=out / "cache", verbose=1)
    print(format_report(metrics, json.loads((run_dir / "classes.json").read_text())))

    model_path = out / "model_int8.tflite"
    print(f"[5/6] exporting int8 TFLite to {model_path} ...")
    rep = export_run(run_dir, model_path, format="int8", report_path=out / "export_report.json", max_drop=100.0)
    print(json.dumps({k: rep[k] for k in ("size_bytes", "accuracy_keras", "accuracy_tflite", "max_abs_diff")}))

    print("[6/6] edge runtime: tracking a replayed recording with the int8 model (no TensorFlow)")
    rec = sorted(data_dir.glob("*_sdepth.bin"))[-1]
    subprocess.run([sys.executable, "-m", "kerasdance_edge", "track", "--model", str(model_path), "--source",
                    str(rec), "--fast", "--jsonl", str(out / "track.jsonl")], check=True)
    print(f"key-points per frame: {out / 'track.jsonl'}")
    print(f"demo done in {time.time() - t0:.0f} s; everything is in {out}/")


if __name__ == "__main__":
    main()
