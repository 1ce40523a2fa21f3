"""Benchmarks for the bridge (`make bench`): see benchmarks/run.py and BENCHMARKS.md."""
