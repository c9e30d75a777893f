"""The live path beside the offline figures: what a user sees frame by frame against the papers' clip accuracy.

For each run: export float32 and int8 (``kerasdance.export``, verified on the test split: the offline clip
figures of the ``.tflite``), then replay the test recordings through the device's tracker and the same
``.tflite`` (``kerasdance_edge.live_eval``), each recording alone and back to back. Writes BENCHMARKS.md
"Live path".

    python -m benchmarks.bench_live --run benchmarks/.data/runs/repro-recipe6-0 [--run ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import table, write_section

FORMATS = ("float32", "int8")


def measure(run_dir: Path, fmt: str) -> dict:
    from kerasdance.export.exporter import export_run
    from kerasdance_edge.interpreter import EdgeModel
    from kerasdance_edge.live_eval import evaluate_live

    out = run_dir / "exports" / f"{fmt}.tflite"
    report_path = out.with_suffix(".report.json")
    if out.exists() and report_path.exists():
        rep = json.loads(report_path.read_text())
    else:
        rep = export_run(run_dir, out, format=fmt, report_path=report_path, max_drop=100.0,
                         cache_dir=run_dir.parent.parent / "cache")
    data_dir = json.loads((run_dir / "data.json").read_text())["data_dir"]
    live = evaluate_live(EdgeModel(out), data_dir)["modes"]
    a, c = live["alone"], live["continuous"]
    return {"run": run_dir.name, "format": fmt,
            "offline_acc": rep["accuracy_tflite"] * 100, "offline_mpjpe": rep["mpjpe_tflite_mm"],
            "alone_end_acc": a["move_accuracy_at_end"] * 100, "alone_frames_acc": a["move_accuracy_frames"] * 100,
            "alone_move_share": a["move_frames_share"] * 100, "alone_mpjpe": a["mpjpe_mm"],
            "first_kp": a["first_keypoints_frames_median"],
            "cont_frames_acc": c["move_accuracy_frames"] * 100, "cont_shown_acc": c["move_accuracy_shown"] * 100,
            "cont_mpjpe": c["mpjpe_mm"], "cont_10cm": c["map_10cm"] * 100,
            "lag_med": c["lag_s_median"], "lag_p90": c["lag_s_p90"], "missed": c["move_changes_missed"],
            "changes": c["move_changes"], "latency": c["latency_ms_p50"],
            "ratio": c["move_accuracy_frames"] / rep["accuracy_tflite"] * 100}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, help="a trained run folder (repeat for seeds)")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = ap.parse_args(argv)
    rows = [measure(Path(r), fmt) for r in args.run for fmt in FORMATS]
    print(json.dumps(rows, indent=2))
    if args.no_write:
        return
    body = ["### Live path: the device's tracker frame by frame, beside the offline clip figures (issue 25)", "",
            "Offline: `kerasdance export`'s verification of the `.tflite` (each test clip resampled whole to T frames, "
            "one crop per clip). Live: `kerasdance-edge eval` with the same `.tflite` (the tracker's sliding window "
            "of T / 15 s, a crop per window, no future frames). *Alone*: the tracker reset before each test "
            "recording; *back to back*: the test recordings in a seeded random order, never reset. Move accuracy "
            "over frames counts a frame without a move (the window's first T - 1 frames) as wrong; lag: from a "
            "move change to the first frame showing the new move (changes never caught before the next one are "
            "counted apart). Synthetic msr20, cross-subject test subjects:", "",
            table(rows, [("run", "run"), ("format", "format"), ("offline_acc", "offline acc %"),
                         ("offline_mpjpe", "offline MPJPE mm"), ("alone_end_acc", "alone: acc at end %"),
                         ("alone_frames_acc", "alone: acc all frames %"),
                         ("alone_move_share", "alone: frames w/ move %"),
                         ("alone_mpjpe", "alone MPJPE mm"), ("first_kp", "first key-points (frames)"),
                         ("cont_frames_acc", "b2b: acc all frames %"), ("cont_shown_acc", "b2b: acc shown %"),
                         ("ratio", "b2b / offline acc %"), ("cont_mpjpe", "b2b MPJPE mm"),
                         ("cont_10cm", "b2b within 10 cm %"), ("lag_med", "lag median s"), ("lag_p90", "lag p90 s"),
                         ("missed", "changes missed"), ("changes", "changes"), ("latency", "latency p50 ms")]), "",
            "Targets (issue 25): back-to-back per-frame move accuracy >= 95% of offline; live MPJPE within 5 mm of "
            "offline; key-points within 1 frame of a person appearing; median lag <= 0.5 s."]
    cmd = "python -m benchmarks.bench_live " + " ".join(f"--run {r}" for r in args.run)
    write_section("live", "\n".join(body), cmd)


if __name__ == "__main__":
    main()
