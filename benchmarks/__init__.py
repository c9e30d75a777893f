"""Benchmarks: each script measures one thing and writes its section of BENCHMARKS.md."""
