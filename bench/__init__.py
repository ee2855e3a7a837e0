"""Benchmark harness: `python -m bench.run --help` (see docs/benchmarks.md)."""
