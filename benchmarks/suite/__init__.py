"""The ratio benchmarks of issue 7, run by ``benchmarks/run.py``; never part of the test run.

Everything the benchmark needs lives here: its settings, its models (app label ``bench_suite``),
the data it writes, the timed cases and the table it prints.
"""
