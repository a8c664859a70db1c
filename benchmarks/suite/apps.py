from __future__ import annotations

from django.apps import AppConfig


class BenchSuiteConfig(AppConfig):
    name = "benchmarks.suite"
    # A label of its own, so its tables can never be mistaken for the test app's.
    label = "bench_suite"
    verbose_name = "authhero_encrypt benchmarks"
    default_auto_field = "django.db.models.BigAutoField"
