"""Training speed and full-label accuracy (issue 3).

* Parameter count and FLOPs of the default model.
* Steady-state time of one supervised training epoch over all ~567 msr20 depth sequences (batch 16).
* Full runs at 100% labels, cross-subject: depth and skeleton mode on msr20, depth on dance11:
  accuracy, MPJPE, mAP@10cm, training time, peak memory.

    python -m benchmarks.bench_train [--epochs 40] [--skip-runs]
    python -m benchmarks.bench_train --heads [--head NAME ...] --epochs 40 [--seeds 0]   # key-point heads
    python -m benchmarks.bench_train --stems --epochs 120 --seeds 0,1,2      # stem widths
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import mean_sd, peak_rss_mb, table, write_section
from benchmarks.datasets import CACHE, DATA, synthetic_set

FEEDS = ("thread", "thread, low priority", "tf.data", "tf.data autotuned")


def epoch_time(set_dir, cfg, n_epochs: int = 6, feed: str = "thread") -> dict:
    """Wall-clock and CPU seconds of ``n_epochs`` supervised epochs over every sequence of ``set_dir``.

    ``feed``: how batches reach the step (``Trainer._batches``): ``thread``, the one-device default;
    ``tf.data``, the distributed strategies' dataset, run here on one device; ``tf.data autotuned``, the
    same with tf.data's autotuning on (it stalled some epochs: see ``Trainer.tf_data_autotune``)."""
    from kerasdance.data import pipeline
    from kerasdance.data.dataset import Dataset
    from kerasdance.data.splits import TrainData
    from kerasdance.training.trainer import Trainer, make_strategy

    ds = Dataset.open(set_dir)
    t0 = time.time()
    prep = pipeline.prepare(ds, ds.refs, cfg.data, CACHE)
    prep_s = time.time() - t0
    cfg = cfg.replace(model={"num_classes": len(ds.class_names)}, train={"self_training": False})
    tr = Trainer(cfg, DATA / "runs" / "epoch-time", TrainData(prep, None, ds.class_names, prep.labels), make_strategy(
        "default"))
    tr.use_tf_data = not feed.startswith("thread")
    tr.feed_niceness = 10 if feed == "thread, low priority" else 0
    tr.tf_data_autotune = feed == "tf.data autotuned"
    times, cpu = [], []
    for e in range(n_epochs):
        t0, c0 = time.time(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        tr.run_epoch(e, None)
        times.append(time.time() - t0)
        cpu.append(resource.getrusage(resource.RUSAGE_SELF).ru_utime - c0)
    return {"sequences": len(prep), "first_epoch_s": times[0], "epoch_s": float(np.median(times[1:])),
            "epoch_times": times[1:], "epoch_cpu_s": cpu[1:], "prepare_s": prep_s}


def full_run(set_name, input_mode, epochs, seed=0, model=None, tag="", train=None, data=None) -> dict:
    from kerasdance.config import RunConfig
    from kerasdance.keras_backend import keras
    from kerasdance.training.trainer import train as train_run

    run_dir = DATA / "runs" / f"full-{set_name}-{input_mode}{tag}-{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    keras.backend.clear_session()
    cfg = RunConfig().replace(data=data or {}, model={"input_mode": input_mode, **(model or {})},
                              train={"epochs": epochs, "seed": seed, **(train or {})})
    t0 = time.time()
    m = train_run(synthetic_set(set_name), run_dir, cfg, cache_dir=CACHE, verbose=0)
    return {"set": set_name, "input": input_mode, "accuracy": m["accuracy"] * 100, "mpjpe_mm": m["mpjpe_mm"],
            "mpjpe_rel_mm": m["mpjpe_rel_mm"], "map_10cm": m["map_10cm"] * 100, "train_s": time.time() - t0,
            "epochs": epochs, "n_test": m["n_test"], **_recipe(cfg)}


#: What a key-point head row was trained with besides its head's name (a name says only what it changes from the
#: defaults of its day): a row counts as done for a head only if all of them match how the head trains today.
RECIPE_FIELDS = ("stem", "keypoint_weight", "keypoint_refine", "keypoint_kernel", "learning_rate", "ohem_ranking",
                 "heatmap_weight", "crop_supersample")


def _recipe(cfg) -> dict:
    """A run config's ``RECIPE_FIELDS``."""
    return dict(zip(RECIPE_FIELDS, (_stem_name(cfg.model), cfg.train.keypoint_weight, cfg.model.keypoint_refine,
                                    cfg.model.keypoint_kernel, cfg.train.learning_rate, cfg.train.ohem_ranking,
                                    cfg.train.heatmap_weight, cfg.data.crop_supersample)))


def _head_key(row: dict) -> tuple:
    return (row["head"], row["seed"], row["epochs"], *(row[k] for k in RECIPE_FIELDS))


#: Key-point variants: data, model and train overrides of the default config. Rows record their ``RECIPE_FIELDS``, so
#: rows of earlier defaults stay readable.
HEADS = {"heat-map, stride 8": {}, "heat-map, stride 4": {"model": {"heatmap_stride": 4}},
         "dense (60 numbers per frame)": {"model": {"keypoint_head": "dense"}},
         "heat-map, stride 8, 3x3 hidden conv": {"model": {"keypoint_kernel": 3}},
         "heat-map, stride 8, key-point weight 3": {"train": {"keypoint_weight": 3.0}},
         "heat-map, stride 8, key-point weight 30": {"train": {"keypoint_weight": 30.0}},
         "heat-map, stride 8, no temporal refinement": {"model": {"keypoint_refine": 0}},
         # Recipe 4's default spelled out (the name its 120-epoch rows were run under).
         "heat-map, stride 8, temporal refinement 5, key-point weight 10": {
             "model": {"keypoint_refine": 5, "keypoint_kernel": 1},
             "train": {"keypoint_weight": 10.0, "learning_rate": 2e-3}},
         # The default of recipe 3 (before 2026-11-30 evening), for the comparison over seeds.
         "heat-map, stride 8, no temporal refinement, key-point weight 3": {
             "model": {"keypoint_refine": 0, "keypoint_kernel": 1},
             "train": {"keypoint_weight": 3.0, "learning_rate": 2e-3}},
         # Today's head on a stem whose first layer is a 4x4 patch conv with stride 4 (no S/2 map; stem "p4-...").
         "heat-map, stride 8, patch-4 stem": {"model": {"stem_filters": (16, 32, 48), "stem_first_stride": 4}},
         "heat-map, stride 8, 64 key-point channels": {"model": {"keypoint_channels": 64}},
         "heat-map, stride 8, no augmentation": {"train": {"augment": False}},
         # Recipe 5's default spelled out (its learning rate pinned since recipe 6 changed it).
         "heat-map, stride 8, 3x3 hidden conv, key-point weight 30": {"model": {"keypoint_kernel": 3},
                                                                       "train": {"keypoint_weight": 30.0,
                                                                                 "learning_rate": 2e-3}},
         "heat-map, stride 8, key-point weight 100": {"train": {"keypoint_weight": 100.0}},
         "heat-map, stride 8, key-point weight 300": {"train": {"keypoint_weight": 300.0}},
         "heat-map, stride 8, key-point weight 100, 64 key-point channels": {"model": {"keypoint_channels": 64},
                                                                            "train": {"keypoint_weight": 100.0}},
         "heat-map, stride 8, key-point weight 100, learning rate 4e-3": {"train": {"keypoint_weight": 100.0,
                                                                                  "learning_rate": 4e-3}},
         "heat-map, stride 8, key-point weight 100, learning rate 8e-3": {"train": {"keypoint_weight": 100.0,
                                                                                  "learning_rate": 8e-3}},
         "heat-map, stride 8, OHEM ranks each loss": {"train": {"ohem_ranking": "each"}},
         "heat-map, stride 8, OHEM ranks the class loss": {"train": {"ohem_ranking": "class"}},
         # The heat-map regulariser (TrainConfig.heatmap_weight, losses.heatmap_loss) at three weights.
         "heat-map, stride 8, heat-map regulariser 3": {"train": {"heatmap_weight": 3.0}},
         "heat-map, stride 8, heat-map regulariser 10": {"train": {"heatmap_weight": 10.0}},
         "heat-map, stride 8, heat-map regulariser 30": {"train": {"heatmap_weight": 30.0}},
         # The crop's pixels as area averages of 2x2 / 4x4 depth samples per cell (DataConfig.crop_supersample).
         "heat-map, stride 8, crop 2x2 samples per pixel": {"data": {"crop_supersample": 2}},
         "heat-map, stride 8, crop 4x4 samples per pixel": {"data": {"crop_supersample": 4}},
         "heat-map, stride 8, two hidden convs": {"model": {"keypoint_layers": 2}},
         "heat-map, stride 8, stem 8-16-48-48": {"model": {"stem_filters": (8, 16, 48, 48)}},
         "heat-map, stride 8, frame-edge cuts": {"train": {"edge_cut_share": 0.3}},
         "heat-map, stride 8, frame-edge cuts in 15% of windows": {"train": {"edge_cut_share": 0.15}},
         "heat-map, stride 8, frame-edge cuts, OHEM ranks the class loss": {"train": {"edge_cut_share": 0.3,
                                                                                      "ohem_ranking": "class"}},
         # The key-point config with half the training windows mirrored (its flip test then sees a familiar input).
         "heat-map, stride 8, frame-edge cuts, OHEM ranks the class loss, mirror": {
             "train": {"edge_cut_share": 0.3, "ohem_ranking": "class", "mirror_augment": True}}}
#: One JSON row per (head, seed, epochs) run; a rerun skips the rows it has and the table shows them all.
HEAD_RESULTS = Path(__file__).resolve().parent / "results" / "keypoint_heads.jsonl"
#: Rows written before these fields were recorded were trained with the defaults of then.
_HEAD_ROW_DEFAULTS = {"stem": "12-24-48-48", "seed": 0, "keypoint_weight": 3.0, "keypoint_refine": 0,
                      "keypoint_kernel": None,  # None: 3 where the head's name says "3x3 hidden conv", else 1
                      "learning_rate": 2e-3, "ohem_ranking": "sum", "heatmap_weight": 0.0, "crop_supersample": 1}


def heads_section(epochs: int, cmd: str, only: list[str] | None = None, seeds: tuple[int, ...] = (0,)) -> None:
    """The key-point heads and losses compared with the same recipe otherwise (msr20 depth, 100% labels)."""
    from kerasdance.config import RunConfig

    rows = [_head_row(r) for r in _jsonl(HEAD_RESULTS)]
    done = {_head_key(r) for r in rows}
    # The stem comparison's runs are this head too (key-point weight 3, no refinement, the recipe of then).
    rows += [_head_row({**r, "head": "heat-map, stride 8", "note": "from the stem comparison"})
             for r in _jsonl(STEM_RESULTS) if r["stem"] != "12-24-48-48"]
    for name in only or []:
        over = HEADS[name]
        cfg = RunConfig().replace(**over)
        for seed in seeds:
            if _head_key({"head": name, "seed": seed, "epochs": epochs, **_recipe(cfg)}) in done:
                continue
            r = full_run("msr20", "depth", epochs, seed=seed, tag=f"-head{list(HEADS).index(name)}", **over)
            row = {"head": name, "seed": seed, **r, "cmd": cmd,
                   "date": time.strftime("%Y-%m-%d", time.gmtime())}
            HEAD_RESULTS.parent.mkdir(parents=True, exist_ok=True)
            with HEAD_RESULTS.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
    out = []
    # Grouped, and ordered, by these in turn.
    keys = ("stem", "epochs", "keypoint_weight", "keypoint_refine", "keypoint_kernel", "learning_rate", "ohem_ranking",
            "crop_supersample", "head")
    for (stem, ep, kw, refine, kernel, lr, ohem, crop_k, head), rs in sorted(_group(rows, keys).items()):
        arch = re.sub(r", (key-point weight [\d.]+|temporal refinement \d+|no temporal refinement|3x3 hidden conv"
                      r"|learning rate [\d.e-]+|OHEM ranks each loss|OHEM ranks the class loss"
                      r"|crop \dx\d samples per pixel)", "", head)
        out.append({"head": arch, "stem": stem, "kw": f"{kw:g}", "refine": refine or "—", "conv": f"{kernel}x{kernel}",
                    "lr": f"{lr:g}", "ohem": ohem, "crop": f"{crop_k}x{crop_k}", "epochs": ep,
                    "seeds": len(rs), "acc": mean_sd(rs, "accuracy"), "mpjpe": mean_sd(rs, "mpjpe_mm", 0),
                    "map": mean_sd(rs, "map_10cm"), "train_s": f"{np.mean([r['train_s'] for r in rs]):.0f}",
                    "dates": ", ".join(sorted({r["date"] for r in rs})),
                    "note": "; ".join(sorted({r["note"] for r in rs if r.get("note")}))})
    body = ["### Key-point heads (issue 3)", "",
            "msr20 depth, 100% labels, cross-subject, same recipe otherwise; mean ± sd over seeds (population sd); "
            "\"kp weight\": the key-point loss weight, \"refine\": the temporal refinement's kernel (— none), "
            "\"kp conv\": the heat-map head's hidden conv, \"OHEM ranks\": what hard-example mining ranks the "
            "examples by (sum: the summed loss; each: the class and key-point losses each by its own; class: the "
            "class loss, key-points on all), \"crop samples\": depth samples averaged per crop pixel. Rows "
            f"from `{HEAD_RESULTS.relative_to(HEAD_RESULTS.parents[2])}` (command and date in each row; the train "
            "time is only comparable between rows of the same date and epochs):", "",
            table(out, [("head", "key-point head"), ("stem", "stem"), ("kw", "kp weight"), ("refine", "refine"),
                        ("conv", "kp conv"), ("lr", "learning rate"), ("ohem", "OHEM ranks"),
                        ("crop", "crop samples"),
                        ("epochs", "epochs"), ("seeds", "seeds"), ("acc", "accuracy %"), ("mpjpe", "MPJPE mm"),
                        ("map", "joints within 10 cm %"), ("train_s", "train s"), ("dates", "dates"),
                        ("note", "note")])]
    write_section("keypoint_heads", "\n".join(body), cmd)
    print("\n".join(body))


def _head_row(r: dict) -> dict:
    """A key-point head row with the fields its day did not record filled in as trained then."""
    r = {**_HEAD_ROW_DEFAULTS, **r}
    if r["keypoint_kernel"] is None:
        r["keypoint_kernel"] = 3 if "3x3 hidden conv" in r["head"] else 1
    return r


#: Per-frame conv stem widths compared (msr20 depth, 100% labels): the training step's cost is mostly the stem's
#: first two layers (32x32 and 16x16 maps of 512 frames a batch), so their width sets the epoch time.
STEMS = {"12-24-48-48": (12, 24, 48, 48), "8-16-32-48": (8, 16, 32, 48)}
STEM_RESULTS = Path(__file__).resolve().parent / "results" / "stems.jsonl"


def stems_section(epochs: int, seeds: list[int], cmd: str) -> None:
    """The stem widths compared with the same recipe over seeds (msr20 depth, 100% labels)."""
    rows = _jsonl(STEM_RESULTS)
    done = {(r["stem"], r["seed"], r["epochs"]) for r in rows}
    for name, filters in STEMS.items():
        for seed in seeds:
            if (name, seed, epochs) in done:
                continue
            r = full_run("msr20", "depth", epochs, seed=seed, model={"stem_filters": filters}, tag=f"-stem{name}")
            row = {"seed": seed, **r, "stem": name, "cmd": cmd, "date": time.strftime("%Y-%m-%d", time.gmtime())}
            STEM_RESULTS.parent.mkdir(parents=True, exist_ok=True)
            with STEM_RESULTS.open("a") as f:
                f.write(json.dumps(row) + "\n")
            rows.append(row)
    default = _stem_name()
    out = []
    for (name, ep), rs in sorted(_group(rows, ("stem", "epochs")).items(), key=lambda kv: (kv[0][1], kv[0][0])):
        out.append({"stem": name + (" (default)" if name == default else ""), "epochs": ep, "seeds": len(rs),
                    "acc": mean_sd(rs, "accuracy"), "mpjpe": mean_sd(rs, "mpjpe_mm", 0),
                    "map": mean_sd(rs, "map_10cm"),
                    "per_seed": " / ".join(f"{r['accuracy']:.1f}" for r in sorted(rs, key=lambda r: r["seed"])),
                    "dates": ", ".join(sorted({r["date"] for r in rs}))})
    body = ["### Stem widths (issue 3)", "",
            "msr20 depth, 100% labels, cross-subject, same recipe otherwise; mean ± sd over seeds (population sd); "
            f"rows from `{STEM_RESULTS.relative_to(STEM_RESULTS.parents[2])}`. The step time of each stem: "
            "`python -m benchmarks.probe_train_step --variants split,stem12`.", "",
            table(out, [("stem", "stem filters"), ("epochs", "epochs"), ("seeds", "seeds"),
                        ("acc", "accuracy %"), ("per_seed", "accuracy per seed %"), ("mpjpe", "MPJPE mm"),
                        ("map", "joints within 10 cm %"), ("dates", "dates")])]
    write_section("stems", "\n".join(body), cmd)
    print("\n".join(body))


def _stem_name(model=None) -> str:
    """A model config's stem (default: today's) as in ``STEMS``' keys: its widths, "p4-" before them when its
    first layer is the stride-4 patch conv."""
    from kerasdance.config import ModelConfig

    model = model or ModelConfig()
    return ("p4-" if model.stem_first_stride == 4 else "") + "-".join(map(str, model.stem_filters))


def _group(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def speed_section(cmd: str) -> None:
    from kerasdance.config import RunConfig
    from kerasdance.models.lstm_cnn import build_lstm_cnn, count_flops

    cfg = RunConfig()
    m = build_lstm_cnn(cfg.model, cfg.data)
    params, flops = m.count_params(), count_flops(m)
    et = epoch_time(synthetic_set("msr20"), cfg)
    body = ["### Training speed (issue 3)", "",
            f"Default model (depth, T={cfg.data.frames}, {cfg.data.crop_size}x{cfg.data.crop_size}x"
            f"{cfg.data.channels}, stem {cfg.model.stem_filters}, LSTM {cfg.model.lstm_units}, "
            f"{cfg.model.keypoint_head} key-point head): **{params:,} parameters, {flops / 1e6:.0f} MFLOPs per "
            "window**.", "",
            f"One supervised training epoch over all {et['sequences']} msr20 depth sequences, batch "
            f"{cfg.train.batch_size}: **{et['epoch_s']:.2f} s** median (first epoch, tracing included: "
            f"{et['first_epoch_s']:.1f} s; target < 3 s; epochs 2-6: "
            f"{', '.join(f'{t:.2f}' for t in et['epoch_times'])} s). Preprocessing the set once: "
            f"{et['prepare_s']:.0f} s (cached afterwards).",
            "", f"Peak memory of the benchmark process: {peak_rss_mb():.0f} MiB."]
    write_section("train_speed", "\n".join(body), cmd)
    print("\n".join(body))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--skip-runs", action="store_true", help="Only the speed section.")
    ap.add_argument("--skip-speed", action="store_true", help="Only the full runs (time the epoch on an idle machine).")
    ap.add_argument("--heads", action="store_true", help="Only the key-point head comparison on msr20.")
    ap.add_argument("--stems", action="store_true", help="Only the stem-width comparison on msr20 (over --seeds).")
    ap.add_argument("--seeds", default=None, help="With --stems (default 0,1,2) or --heads (default 0): the seeds.")
    ap.add_argument("--head", action="append", choices=list(HEADS), metavar="HEAD",
                    help=f"With --heads: the heads to train (repeatable; none: only the table); one of: "
                         f"{', '.join(map(repr, HEADS))}.")
    args = ap.parse_args(argv)
    cmd = "python -m benchmarks.bench_train " + " ".join(sys.argv[1:])
    if args.heads:
        heads_section(args.epochs, cmd, args.head, tuple(int(x) for x in (args.seeds or "0").split(",")))
        return
    if args.stems:
        stems_section(args.epochs, [int(x) for x in (args.seeds or "0,1,2").split(",")], cmd)
        return
    if not args.skip_speed:
        speed_section(cmd)
    if not args.skip_runs:
        rows = [full_run("msr20", "depth", args.epochs), full_run("msr20", "skeleton", args.epochs),
                full_run("dance11", "depth", args.epochs)]
        runs = ["### Full-label runs (issue 3)", "", f"100% labels, cross-subject, {args.epochs} epochs, seed 0:", "",
                table(rows, [("set", "set"), ("input", "input"), ("n_test", "test seqs"), ("accuracy", "accuracy %"),
                             ("mpjpe_mm", "MPJPE mm"), ("mpjpe_rel_mm", "root-rel. MPJPE mm"),
                             ("map_10cm", "joints within 10 cm %"), ("train_s", "train s")]),
                "", f"Peak memory of the benchmark process: {peak_rss_mb():.0f} MiB."]
        write_section("train_runs", "\n".join(runs), cmd)
        print("\n".join(runs))


if __name__ == "__main__":
    main()
