"""Benchmarks: `python -m bench.run` writes docs/benchmarks.md (see bench/run.py)."""
