"""The one-table app that ``benchmarks/status_benchmark.py`` counts."""
