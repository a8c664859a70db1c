"""How fast ``encryption_migrate`` encrypts a large legacy table, against a plain bulk UPDATE.

Run from the repository root (not part of the test run)::

    .venv/bin/python benchmarks/migrate_benchmark.py sqlite
    .venv/bin/python benchmarks/migrate_benchmark.py postgresql [--rows 1000000] [--repeat 3]

Each repetition loads ``--rows`` rows of legacy plaintext into a fresh table and times, in a
child process of its own:

* the floor: a plain bulk UPDATE of the same rows, in batches of ``--batch-size`` (one
  transaction each), with every ciphertext computed before the clock starts. On PostgreSQL one
  ``UPDATE ... FROM json_array_elements(...)`` statement per batch (the command's statement
  without its compare-and-swap; faster than ``unnest`` of array parameters, which psycopg
  renders client-side), on SQLite ``executemany`` of ``UPDATE ... WHERE id = ?`` (faster there
  than one ``UPDATE ... FROM (VALUES ...)``); no reads, no compare-and-swap, no encryption on
  the clock;
* the command: ``call_command("encryption_migrate", batch_size=...)``, which reads, encrypts
  and compare-and-swaps every row.

The table is reloaded before each, and the order alternates between repetitions. Reported: rows
per second of each (median over repetitions), the ratio command / floor (target >= 0.5), and the
command's resident memory before the run and at its peak (``ru_maxrss``), which stays flat
however many rows there are.

SQLite uses a file (``--sqlite-path``, default in the temp directory, deleted afterwards).
PostgreSQL uses a scratch database ``bench_migrate`` on the server that ``BENCH_PG_HOST``,
``_PORT``, ``_USER`` and ``_PASSWORD`` name (default 127.0.0.1:5432, postgres), created and
dropped by this script.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scratch_postgres import postgres_settings, recreate_database

ROOT = Path(__file__).resolve().parent.parent
PG_DATABASE = "bench_migrate"
KEY = base64.b64encode(bytes(range(32, 64))).decode()
KEY_ID = "new"


def database_settings(args: argparse.Namespace) -> dict[str, Any]:
    if args.database == "sqlite":
        config: dict[str, Any] = {"ENGINE": "django.db.backends.sqlite3", "NAME": args.sqlite_path}
        if args.sqlite_wal:
            config["OPTIONS"] = {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            }
        return config
    return postgres_settings(PG_DATABASE)


def setup_django(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=["authhero_encrypt", "benchmarks.migrate_app"],
        DATABASES={"default": database_settings(args)},
        ENCRYPTION_KEY=KEY,
        ENCRYPTION_KEY_ID=KEY_ID,
    )
    django.setup()


def legacy_token(i: int) -> str:
    return f"legacy-token-{i:08d}-{(i * 2654435761) % 2**32:08x}"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# Phases, each run in a child process -------------------------------------------------------


def load(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh table of ``--rows`` legacy plaintext rows, ids 1..rows."""
    from django.db import connection, transaction

    from benchmarks.migrate_app.models import MigrateRow

    with connection.schema_editor() as editor:
        editor.execute(f"DROP TABLE IF EXISTS {MigrateRow._meta.db_table}")
        editor.create_model(MigrateRow)
    table = MigrateRow._meta.db_table
    chunk = 100_000
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(1, args.rows + 1, chunk):
            stop = min(start + chunk, args.rows + 1)
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} (id, token) FROM STDIN") as copy:
                    for i in range(start, stop):
                        copy.write_row((i, legacy_token(i)))
            else:
                cursor.executemany(
                    f"INSERT INTO {table} (id, token) VALUES (%s, %s)",
                    [(i, legacy_token(i)) for i in range(start, stop)],
                )
    # Start each timed phase from a settled database: the load (and the previous phase's
    # writes) flushed, so no checkpoint of theirs runs on the clock.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"VACUUM ANALYZE {table}")  # outside the transaction
            cursor.execute("CHECKPOINT")  # needs a superuser (or pg_checkpoint on 15+)
        else:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a no-op without WAL
    return {}


def floor(args: argparse.Namespace) -> dict[str, Any]:
    """A plain batched UPDATE of precomputed ciphertexts: what writing the rows costs alone."""
    from django.db import connection, transaction

    from authhero_encrypt.crypto import encrypt_value
    from benchmarks.migrate_app.models import MigrateRow

    table = MigrateRow._meta.db_table
    values = [encrypt_value(legacy_token(i)) for i in range(1, args.rows + 1)]
    size = args.batch_size
    started, cpu = time.perf_counter(), time.process_time()
    with connection.cursor() as cursor:
        for start in range(0, args.rows, size):
            ids = list(range(start + 1, min(start + size, args.rows) + 1))
            new = values[start : start + size]
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    # The command's statement without the compare-and-swap and RETURNING.
                    cursor.execute(
                        f"UPDATE {table} AS t SET token = v.new FROM (SELECT "
                        "(e->>0)::bigint AS id, e->>1 AS new FROM json_array_elements(%s::json) "
                        "AS e) AS v WHERE t.id = v.id",
                        [json.dumps(list(zip(ids, new, strict=True)), ensure_ascii=False)],
                    )
                else:
                    cursor.executemany(
                        f"UPDATE {table} SET token = %s WHERE id = %s",
                        list(zip(new, ids, strict=True)),
                    )
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def command(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection

    from authhero_encrypt.crypto import decrypt_value
    from benchmarks.migrate_app.models import MigrateRow

    connection.ensure_connection()
    before = rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    call_command("encryption_migrate", "migrate_app", batch_size=args.batch_size, verbosity=0)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = rss_mb()
    table = MigrateRow._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE token NOT LIKE %s", ["enc:v1:new:%"])
        (left,) = cursor.fetchone()
        cursor.execute(f"SELECT id, token FROM {table} WHERE id IN (1, %s)", [args.rows])
        for pk, stored in cursor.fetchall():
            assert decrypt_value(stored) == legacy_token(pk), pk
    assert left == 0, f"{left} rows were not migrated"
    return {"seconds": seconds, "cpu": cpu, "rss_before_mb": before, "rss_peak_mb": peak}


PHASES = {"load": load, "floor": floor, "command": command}


def run_phase(args: argparse.Namespace, phase: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, args.database, "--phase", phase]
    argv += ["--rows", str(args.rows), "--batch-size", str(args.batch_size)]
    argv += ["--sqlite-path", args.sqlite_path] + (["--sqlite-wal"] if args.sqlite_wal else [])
    done = subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# The orchestrating process ------------------------------------------------------------------


def create_pg_database(args: argparse.Namespace, *, drop: bool) -> None:
    recreate_database(PG_DATABASE, drop_only=drop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("database", choices=["sqlite", "postgresql"], help="the backend to run on")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (1000000)")
    parser.add_argument("--batch-size", type=int, default=500, help="rows per batch (500)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (3)")
    parser.add_argument(
        "--sqlite-path",
        default=os.path.join(tempfile.gettempdir(), "bench_migrate.sqlite3"),
        help="SQLite database file, deleted afterwards",
    )
    parser.add_argument(
        "--sqlite-wal",
        action="store_true",
        help="SQLite in WAL mode with synchronous=NORMAL: commits stop waiting for the disk, "
        "so the comparison is of CPU work (default: Django's rollback journal)",
    )
    parser.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        setup_django(args)
        print(json.dumps(PHASES[args.phase](args)))
        return

    if args.database == "postgresql":
        create_pg_database(args, drop=False)
    try:
        floors: list[dict[str, Any]] = []
        commands: list[dict[str, Any]] = []
        for repetition in range(args.repeat):
            order = ["floor", "command"] if repetition % 2 == 0 else ["command", "floor"]
            for phase in order:
                run_phase(args, "load")
                result = run_phase(args, phase)
                rate = args.rows / result["seconds"]
                print(
                    f"  run {repetition + 1} {phase:>7}: {rate:>9,.0f} rows/s, "
                    f"{result['cpu']:.2f} s of CPU in this process",
                    file=sys.stderr,
                )
                if phase == "floor":
                    floors.append(result)
                else:
                    commands.append(result)
    finally:
        if args.database == "postgresql":
            create_pg_database(args, drop=True)
        else:
            for suffix in ("", "-wal", "-shm", "-journal"):
                if os.path.exists(args.sqlite_path + suffix):
                    os.remove(args.sqlite_path + suffix)

    floor_rate = args.rows / statistics.median(f["seconds"] for f in floors)
    command_rate = args.rows / statistics.median(c["seconds"] for c in commands)
    # Each repetition's floor and command ran back to back, so their ratio is the least
    # disturbed by whatever else the machine was doing; the headline is its median.
    ratios = [f["seconds"] / c["seconds"] for f, c in zip(floors, commands, strict=True)]
    cpu_ratios = [f["cpu"] / c["cpu"] for f, c in zip(floors, commands, strict=True)]
    mode = " (WAL, synchronous=NORMAL)" if args.database == "sqlite" and args.sqlite_wal else ""
    print(
        f"database      {args.database}{mode}, {args.rows:,} legacy rows, batch {args.batch_size}"
    )
    print(f"floor         {floor_rate:>12,.0f} rows/s  (plain bulk UPDATE, precomputed values)")
    print(f"command       {command_rate:>12,.0f} rows/s  (encryption_migrate)")
    print(
        f"ratio         {statistics.median(ratios):>12.2f}  (command / floor, median of "
        f"{', '.join(f'{r:.2f}' for r in ratios)}; target >= 0.5)"
    )
    print(
        f"CPU ratio     {statistics.median(cpu_ratios):>12.2f}  (floor's CPU time / the command's, "
        "in their own processes: less disturbed by other load; the server's work on "
        "PostgreSQL is not in it)"
    )
    print(
        f"command RSS   {max(c['rss_before_mb'] for c in commands):>9.0f} MB before the run, "
        f"{max(c['rss_peak_mb'] for c in commands):.0f} MB peak"
    )


if __name__ == "__main__":
    main()
