"""The two-table app that ``benchmarks/blind_index_benchmark.py`` looks members up in."""
