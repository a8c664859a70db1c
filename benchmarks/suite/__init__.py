"""The ratio benchmarks of issues 7 and 14, run by ``benchmarks/run.py``; not part of the tests.

Everything the benchmark needs lives here: its settings, its models (app label ``bench_suite``),
the data it writes, the timed cases and the table it prints.
"""
