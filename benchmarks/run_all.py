"""``make bench``: every benchmark, each writing its section of BENCHMARKS.md.

The full set takes about an hour on 2 cores; run one script alone to refresh one section.
"""

from __future__ import annotations

from benchmarks import bench_synth, bench_train, label_efficiency


def main() -> None:
    bench_synth.main() if hasattr(bench_synth, "main") else bench_synth.run()
    bench_train.main([])
    label_efficiency.main([])
    try:
        from benchmarks import bench_edge, bench_export
    except ImportError:
        return
    bench_export.main([]) if hasattr(bench_export, "main") else None
    bench_edge.main([]) if hasattr(bench_edge, "main") else None


if __name__ == "__main__":
    main()
