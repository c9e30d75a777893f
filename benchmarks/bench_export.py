"""TFLite export variants of one trained run: size, accuracy, MPJPE and interpreter latency.

Exports the run in every variant (float32, float16, dynamic range, full int8 with the fused and with the
unrolled LSTM, QAT int8, pruned int8), verifies each on the run's test split with ai-edge-litert (as
``export_run`` does) and times one window with 1 and 2 interpreter threads. Writes the ``export`` section
of BENCHMARKS.md.

    python -m benchmarks.bench_export --run RUN_DIR [--out DIR] [--prune 0.5] [--finetune-epochs 5]
"""

from __future__ import annotations

import argparse
import gzip
import logging
import time
from pathlib import Path

from benchmarks.common import table, write_section

#: (name, export_run keyword arguments); every variant is exported from the same run.
VARIANTS = [
    ("float32", {"format": "float32"}),
    ("float16", {"format": "float16"}),
    ("dynamic", {"format": "dynamic"}),
    ("int8 fused LSTM", {"format": "int8", "unroll": False}),
    ("int8 unrolled", {"format": "int8"}),
    ("QAT int8", {"format": "int8", "qat": True}),
    ("pruned int8", {"format": "int8", "prune": 0.5}),
]

COLUMNS = [
    ("variant", "variant"), ("size_kb", "size (KiB)"), ("gzip_kb", "gzipped (KiB)"),
    ("accuracy_keras", "acc. Keras (%)"), ("accuracy_tflite", "acc. TFLite (%)"),
    ("mpjpe_keras_mm", "MPJPE Keras (mm)"), ("mpjpe_tflite_mm", "MPJPE TFLite (mm)"),
    ("max_abs_diff", "max abs diff"), ("p50_1t", "p50 1 thr (ms)"), ("p99_1t", "p99 1 thr (ms)"),
    ("p50_2t", "p50 2 thr (ms)"), ("p99_2t", "p99 2 thr (ms)"), ("export_s", "export (s)"),
    ("tflite_runtime", "tflite-runtime 2.14"),
]


def run(run_dir: str | Path, out_dir: str | Path, prune: float = 0.5, finetune_epochs: int = 5,
        latency_runs: int = 200, data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
        variants: list[str] | None = None) -> list[dict]:
    """Export ``run_dir`` in every variant into ``out_dir`` and measure each.

    Args:
        run_dir: a trained kerasdance run folder.
        out_dir: where the ``.tflite`` files, sidecars and per-variant report JSONs go.
        prune: target sparsity of the pruned variant.
        finetune_epochs: QAT / pruning fine-tune epochs.
        latency_runs: timed invocations per thread count.
        data_dir: the run's data (default: ``RUN_DIR/data.json``).
        cache_dir: preprocessing cache.
        variants: a subset of the ``VARIANTS`` names (default: all).

    Returns:
        One dict per variant: the ``export_run`` report plus ``variant``, ``size_kb``, ``gzip_kb``, accuracies
        in percent and ``p50_1t``/``p99_1t``/``p50_2t``/``p99_2t`` latencies in ms (or ``error`` when the
        export failed).
    """
    from kerasdance.data.splits import load_train_data
    from kerasdance.errors import KerasdanceError
    from kerasdance.export.exporter import export_run
    from kerasdance.export.quantize import calibration_windows
    from kerasdance.export.verify import measure_latency
    from kerasdance.keras_backend import keras

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    window = None
    for name, kw in VARIANTS:
        if variants is not None and name not in variants:
            continue
        kw = dict(kw)
        if "prune" in kw:
            kw["prune"] = prune
        slug = name.replace(" ", "_")
        path = out_dir / f"{slug}.tflite"
        keras.backend.clear_session()
        t0 = time.time()
        try:
            rep = export_run(run_dir, path, report_path=out_dir / f"{slug}.json", max_drop=100.0, data_dir=data_dir,
                             cache_dir=cache_dir, finetune_epochs=finetune_epochs, latency_runs=latency_runs, **kw)
        except KerasdanceError as e:
            logging.getLogger("kerasdance.bench").error("%s: %s", name, e)
            rows.append({"variant": name, "error": str(e), "export_s": time.time() - t0})
            continue
        if window is None:  # one real test window for the latency of every variant
            from kerasdance.config import RunConfig

            cfg = RunConfig.of_run(run_dir)
            data_from = data_dir or __import__("json").loads((Path(run_dir) / "data.json").read_text())["data_dir"]
            _, test = load_train_data(data_from, cfg, cache_dir)
            window = calibration_windows(test, cfg, n=1)[0]
        lat = {t: measure_latency(path, window, num_threads=t, runs=latency_runs) for t in (1, 2)}
        row = dict(rep)
        row.update(
            variant=name, size_kb=rep["size_bytes"] / 1024, gzip_kb=len(gzip.compress(path.read_bytes())) / 1024,
            accuracy_keras=rep["accuracy_keras"] * 100, accuracy_tflite=rep["accuracy_tflite"] * 100,
            p50_1t=lat[1]["p50"], p99_1t=lat[1]["p99"], p50_2t=lat[2]["p50"], p99_2t=lat[2]["p99"],
            export_s=time.time() - t0,
            tflite_runtime={True: "runs", False: "no", None: "?"}[rep["compat"]["tflite_runtime_2_14"]["runs"]],
        )
        rows.append(row)
    return rows


def markdown(rows: list[dict], run_dir: str | Path) -> str:
    """The BENCHMARKS.md section for ``rows``."""
    ok = [r for r in rows if "error" not in r]
    body = ["### TFLite export variants", "",
            f"One run (`{run_dir}`), every variant verified on its test split with ai-edge-litert, one window at a "
            "time (batch 1). Latency: one window (input quantisation and LSTM state reset included), "
            "p50/p99 of repeated invocations on the same interpreter. 'max abs diff' is the largest |TFLite - "
            "Keras| over logits and key-points of the test windows (for QAT / pruning: against the fine-tuned "
            "Keras model that was converted; 'acc. Keras' is always the run's own model). 'gzipped' shows what "
            "pruning buys: the .tflite stores zeros densely. The tflite-runtime column repeats "
            "../shared/DEPENDENCIES.md's measurements, it was not re-measured.", "",
            table(ok, COLUMNS)]
    for r in rows:
        if "error" in r:
            body += ["", f"- **{r['variant']}** failed: {r['error']}"]
    extra = [r for r in ok if "accuracy_keras_finetuned" in r]
    if extra:
        body += ["", "Fine-tuned Keras models before conversion: " + "; ".join(
            f"{r['variant']}: {r['accuracy_keras_finetuned'] * 100:.1f}% accuracy, "
            f"{r['mpjpe_keras_finetuned_mm']:.1f} mm MPJPE" + (f", sparsity {r['sparsity']:.2f}" if "sparsity" in r
                                                               else "") for r in extra) + "."]
    return "\n".join(body)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a trained kerasdance run folder")
    ap.add_argument("--out", default=None, help="where the exports go (default: RUN_DIR/exports)")
    ap.add_argument("--data", default=None, help="the run's data folder (default: RUN_DIR/data.json)")
    ap.add_argument("--cache", default=None, help="preprocessing cache folder")
    ap.add_argument("--prune", type=float, default=0.5, help="target sparsity of the pruned variant")
    ap.add_argument("--finetune-epochs", type=int, default=5)
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument("--variants", nargs="*", default=None, help=f"subset of {[v for v, _ in VARIANTS]}")
    ap.add_argument("--no-write", action="store_true", help="print the table, do not touch BENCHMARKS.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.out) if args.out else Path(args.run) / "exports"
    rows = run(args.run, out, prune=args.prune, finetune_epochs=args.finetune_epochs, latency_runs=args.latency_runs,
               data_dir=args.data, cache_dir=args.cache, variants=args.variants)
    md = markdown(rows, args.run)
    print(md)
    if not args.no_write:
        cmd = f"python -m benchmarks.bench_export --run {args.run}"
        if args.prune != 0.5:
            cmd += f" --prune {args.prune}"
        if args.finetune_epochs != 5:
            cmd += f" --finetune-epochs {args.finetune_epochs}"
        write_section("export", md, command=cmd)
    return rows


if __name__ == "__main__":
    main()
