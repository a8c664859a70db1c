"""The one-table app that ``benchmarks/migrate_benchmark.py`` migrates."""
