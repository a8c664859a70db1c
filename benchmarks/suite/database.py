"""The benchmark's database: a scratch database on a server, or SQLite in memory."""

from __future__ import annotations

import sqlite3

from django.apps import apps
from django.db import connection, connections

from benchmarks.suite.settings import SCRATCH_NAME, VENDOR


def create() -> None:
    """Create the scratch database (server vendors) and the benchmark tables in it."""
    if VENDOR != "sqlite":
        server = connections["server"]
        name = server.ops.quote_name(SCRATCH_NAME)
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            if server.vendor == "mysql":
                # utf8mb4_bin, as the test settings use: a binary collation for base64 text.
                cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            else:
                cursor.execute(f"CREATE DATABASE {name}")
        server.close()
    with connection.schema_editor() as editor:
        for model in apps.get_app_config("bench_suite").get_models():
            editor.create_model(model)


def drop() -> None:
    connection.close()
    if VENDOR == "sqlite":
        return
    server = connections["server"]
    with server.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {server.ops.quote_name(SCRATCH_NAME)}")
    server.close()


def describe() -> str:
    """The database server and version, for the report."""
    if connection.vendor == "sqlite":
        where = "in memory" if connection.settings_dict["NAME"] == ":memory:" else "in a file"
        return f"SQLite {sqlite3.sqlite_version} ({where})"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = str(cursor.fetchone()[0])
    if connection.vendor == "postgresql":
        return version.split(" on ")[0].split(",")[0]
    return f"MariaDB {version.split('-')[0]}" if "MariaDB" in version else f"MySQL {version}"
