"""The scratch PostgreSQL database the status and migrate benchmarks build their tables in.

``BENCH_PG_HOST``, ``_PORT``, ``_USER`` and ``_PASSWORD`` override the local defaults.
"""

from __future__ import annotations

import os
from typing import Any


def postgres_settings(name: str) -> dict[str, Any]:
    env = os.environ.get
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "HOST": env("BENCH_PG_HOST", "127.0.0.1"),
        "PORT": env("BENCH_PG_PORT", "5432"),
        "USER": env("BENCH_PG_USER", "postgres"),
        "PASSWORD": env("BENCH_PG_PASSWORD", ""),
    }


def recreate_database(name: str, *, drop_only: bool = False) -> None:
    """Drop the database ``name`` if it exists and, unless ``drop_only``, create it empty."""
    import psycopg

    config = postgres_settings(name)
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"],
        user=config["USER"],
        password=config["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        if not drop_only:
            conn.execute(f"CREATE DATABASE {name}")
