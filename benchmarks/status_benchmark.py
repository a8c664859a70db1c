"""How long ``encryption_status`` takes against a bare prefix count, and its memory with --verify.

Run from the repository root (not part of the test run)::

    .venv/bin/python benchmarks/status_benchmark.py sqlite
    .venv/bin/python benchmarks/status_benchmark.py postgresql [--rows 1000000] [--repeat 7]

One table (``benchmarks/status_app``) with one ``EncryptedCharField`` and one
``JSONPathEncryptedField`` with two fixed paths (``client_secret`` and
``configuration.client_secret``) is filled with ``--rows`` rows of a realistic mix: most values
under the active key (key id ``new``), some under an untagged fallback key, some legacy
plaintext, empty, NULL and missing paths. The ciphertexts are computed before the load and the
rows written with ``COPY`` (PostgreSQL) or ``executemany`` (SQLite), so the load is quick.

In one child process, after one warm-up run of each, ``--repeat`` rounds time, in alternating
order:

* the baseline: ``SELECT COUNT(*) FROM t WHERE token LIKE 'enc:v1:%'``, the issue's yardstick;
* the same prefix count for all three places in one scan (the column and the two JSON paths,
  through the backend's JSON key extraction): what a hand-written query answering only "how
  many are encrypted" costs on this table;
* the command's default run, ``call_command("encryption_status", "status_app")``.

Reported: the median of each and the ratios command / baseline (target <= 1.5) and command /
per-place count. On SQLite the clock is this process's CPU time (all the work happens in it, so
other processes on the machine barely disturb it); on PostgreSQL, whose work happens in the
server and its parallel workers, it is elapsed time.

Then ``--verify`` runs in a child process of its own, whose peak resident memory (``ru_maxrss``
from ``os.wait4``) is reported (target < 150 MB).

SQLite uses a file (``--sqlite-path``, default in the temp directory, deleted afterwards).
PostgreSQL uses a scratch database ``bench_status`` on the server that ``BENCH_PG_HOST``,
``_PORT``, ``_USER`` and ``_PASSWORD`` name (default 127.0.0.1:5432, postgres), created and
dropped by this script.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path
from typing import Any

from scratch_postgres import postgres_settings, recreate_database

ROOT = Path(__file__).resolve().parent.parent
PG_DATABASE = "bench_status"
TABLE = "status_benchmark_row"
ACTIVE_KEY = base64.b64encode(bytes(range(32))).decode()
ACTIVE_ID = "new"
OLD_KEY = base64.b64encode(bytes(range(32, 64))).decode()
DISTINCT = 1000  # distinct ciphertexts per kind, cycled through the rows


def database_settings(args: argparse.Namespace) -> dict[str, Any]:
    if args.database == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": args.sqlite_path}
    return postgres_settings(PG_DATABASE)


def setup_django(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=["authhero_encrypt", "benchmarks.status_app"],
        DATABASES={"default": database_settings(args)},
        ENCRYPTION_KEY=ACTIVE_KEY,
        ENCRYPTION_KEY_ID=ACTIVE_ID,
        ENCRYPTION_KEY_FALLBACKS=[OLD_KEY],
    )
    django.setup()


# Phases, each run in a child process -------------------------------------------------------


def rows(count: int) -> Any:
    """``(id, token, options)`` for every row; the mix is fixed by the row number."""
    from authhero_encrypt.crypto import encrypt_with
    from authhero_encrypt.keys import Key

    new = Key.from_secret(ACTIVE_ID, base64.b64decode(ACTIVE_KEY))
    old = Key.from_secret(None, base64.b64decode(OLD_KEY))
    under_new = [
        encrypt_with(new, f"secret-{i:06d}", prefix="enc:v1:new:") for i in range(DISTINCT)
    ]
    under_old = [encrypt_with(old, f"secret-{i:06d}") for i in range(DISTINCT)]

    def value(i: int) -> str | None:
        kind = i % 100
        if kind < 80:
            return under_new[i % DISTINCT]
        if kind < 90:
            return under_old[i % DISTINCT]
        if kind < 95:
            return f"legacy-secret-{i}"
        return "" if kind < 98 else None

    for i in range(1, count + 1):
        document: dict[str, Any] | None = None
        if i % 25:
            document = {"client_id": f"client-{i}", "domain": "example.com"}
            secret = value(i * 7)
            if secret is not None:
                document["client_secret"] = secret
            document["configuration"] = {"client_secret": value(i * 3), "region": "eu"}
        yield i, value(i), None if document is None else json.dumps(document)


def load(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection, transaction

    from benchmarks.status_app.models import StatusRow

    with connection.schema_editor() as editor:
        editor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        editor.create_model(StatusRow)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {TABLE} (id, token, options) FROM STDIN") as copy:
                for row in rows(args.rows):
                    copy.write_row(row)
        else:
            batch: list[tuple[Any, ...]] = []
            for row in rows(args.rows):
                batch.append(row)
                if len(batch) == 50_000:
                    cursor.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", batch)
                    batch = []
            if batch:
                cursor.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", batch)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"VACUUM ANALYZE {TABLE}")  # outside the transaction
            cursor.execute("SELECT pg_total_relation_size(%s)", [TABLE])
            size = cursor.fetchone()[0]
        else:
            size = os.path.getsize(args.sqlite_path)
    return {"seconds": time.perf_counter() - started, "mb": size / 2**20}


def describe() -> str:
    from django.db import connection

    if connection.vendor == "sqlite":
        return f"SQLite {connection.Database.sqlite_version} (file)"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        return str(cursor.fetchone()[0]).split(" on ")[0]


def timing(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor == "postgresql":
        per_place = (
            f"SELECT COUNT(*) FILTER (WHERE token LIKE 'enc:v1:%%'), "
            f"COUNT(*) FILTER (WHERE options ->> 'client_secret' LIKE 'enc:v1:%%'), "
            f"COUNT(*) FILTER (WHERE options -> 'configuration' ->> 'client_secret' "
            f"LIKE 'enc:v1:%%') FROM {TABLE}"
        )
    else:
        per_place = (
            f"SELECT COUNT(*) FILTER (WHERE token LIKE 'enc:v1:%%'), "
            "COUNT(*) FILTER (WHERE json_extract(options, '$.\"client_secret\"') "
            "LIKE 'enc:v1:%%'), "
            "COUNT(*) FILTER (WHERE "
            'json_extract(options, \'$."configuration"."client_secret"\') '
            f"LIKE 'enc:v1:%%') FROM {TABLE}"
        )

    def baseline() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE token LIKE %s", ["enc:v1:%"])
            return cursor.fetchone()

    def places() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(per_place, [])
            return cursor.fetchone()

    def command() -> Any:
        out = StringIO()
        call_command("encryption_status", "status_app", format="json", stdout=out)
        return json.loads(out.getvalue())["totals"]

    clock = time.process_time if connection.vendor == "sqlite" else time.perf_counter
    cases = {"baseline": baseline, "places": places, "command": command}
    results = {name: case() for name, case in cases.items()}  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for repetition in range(args.repeat):
        order = list(cases) if repetition % 2 == 0 else list(reversed(cases))
        for name in order:
            started = clock()
            cases[name]()
            seconds[name].append(clock() - started)
    return {
        "describe": describe(),
        "clock": "CPU time" if clock is time.process_time else "elapsed time",
        "seconds": seconds,
        "totals": results["command"],
    }


def verify(args: argparse.Namespace) -> dict[str, Any]:
    import resource

    from django.core.management import call_command
    from django.db import connection

    connection.ensure_connection()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = StringIO()
    started = time.perf_counter()
    call_command("encryption_status", "status_app", format="json", verify=True, stdout=out)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rss_before_mb": before,
        "totals": json.loads(out.getvalue())["totals"],
    }


PHASES = {"load": load, "timing": timing, "verify": verify}


def run_phase(args: argparse.Namespace, phase: str) -> dict[str, Any]:
    """Run ``phase`` in a child process; its result, plus the child's peak RSS in MB."""
    argv = [sys.executable, __file__, args.database, "--phase", phase]
    argv += ["--rows", str(args.rows), "--repeat", str(args.repeat)]
    argv += ["--sqlite-path", args.sqlite_path]
    with tempfile.TemporaryFile("w+") as output:
        child = subprocess.Popen(argv, cwd=ROOT, stdout=output)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"phase {phase} failed with status {child.returncode}")
        output.seek(0)
        result = dict(json.loads(output.read().strip().splitlines()[-1]))
    result["rss_peak_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def create_pg_database(args: argparse.Namespace, *, drop: bool) -> None:
    recreate_database(PG_DATABASE, drop_only=drop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("database", choices=["sqlite", "postgresql"], help="the backend to run on")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (1000000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions (7)")
    parser.add_argument(
        "--sqlite-path",
        default=os.path.join(tempfile.gettempdir(), "bench_status.sqlite3"),
        help="SQLite database file, deleted afterwards",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        setup_django(args)
        print(json.dumps(PHASES[args.phase](args)))
        return

    if args.database == "postgresql":
        create_pg_database(args, drop=False)
    try:
        loaded = run_phase(args, "load")
        print(f"  loaded {args.rows:,} rows in {loaded['seconds']:.1f} s", file=sys.stderr)
        timed = run_phase(args, "timing")
        verified = run_phase(args, "verify")
    finally:
        if not args.keep:
            if args.database == "postgresql":
                create_pg_database(args, drop=True)
            elif os.path.exists(args.sqlite_path):
                os.remove(args.sqlite_path)

    median = {name: statistics.median(s) for name, s in timed["seconds"].items()}
    totals = timed["totals"]
    print(f"database        {timed['describe']}, {args.rows:,} rows, {loaded['mb']:.0f} MB")
    print(
        f"values          {totals['encrypted']:,} encrypted, {totals['plaintext']:,} plaintext, "
        f"{totals['empty']:,} empty, {totals['null']:,} null; by key {totals['by_key']}"
    )
    print(
        f"timings         median of {args.repeat} after one warm-up, alternating order, "
        f"{timed['clock']}"
    )
    print(f"  baseline      {median['baseline']:8.3f} s  COUNT(*) WHERE token LIKE 'enc:v1:%'")
    print(f"  per place     {median['places']:8.3f} s  the same prefix count for all 3 places")
    print(f"  command       {median['command']:8.3f} s  encryption_status (default run)")
    print(f"ratio           {median['command'] / median['baseline']:8.2f}  command / baseline")
    print(f"                {median['command'] / median['places']:8.2f}  command / per place")
    print(
        f"--verify        {verified['seconds']:8.1f} s, {verified['totals']['verify']['checked']:,}"
        f" values decrypted, {verified['totals']['verify']['failed']} failed"
    )
    print(
        f"--verify RSS    {verified['rss_before_mb']:8.0f} MB before the run, "
        f"{verified['rss_peak_mb']:.0f} MB peak (target < 150)"
    )


if __name__ == "__main__":
    main()
