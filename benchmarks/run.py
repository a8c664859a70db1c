"""Measure what encryption costs: authhero_encrypt against plaintext, the bare recipe and peers.

Run from the repository root; this is not part of the test run::

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/run.py [--database sqlite|postgresql|mariadb] [--rows 100000]
                                       [--repeat 5] [--markdown]

Every figure is a ratio of two cases timed in this one process: the median, over the
repetitions, of the ratio within each repetition, after one warm-up run of every case. The
first table sets every library against plain and authhero_encrypt against the bare recipe (as
a ratio and in µs per row above it) on a 2-column model, an OAuth client row and a connection
options document; the second holds the codec and the comparisons with targets. The
targets of issue 7 are judged on SQLite (``--check`` exits 1 when one is missed); ``--markdown``
prints a section that pastes into ``docs/benchmarks.md``. ``--profile CASE`` runs one case under
pyinstrument (or cProfile when pyinstrument is missing) instead, to see where its time goes.
See ``docs/benchmarks.md`` for what each comparison means.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.suite.cases import Case

ROOT = Path(__file__).resolve().parent.parent
DATABASES = ("sqlite", "postgresql", "mariadb")
SECTIONS = ("codec", "char", "client", "json")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description=(__doc__ or "").split("\n\n", 1)[0],
    )
    parser.add_argument(
        "--database",
        choices=DATABASES,
        default="sqlite",
        help="sqlite (in memory unless --sqlite-file; the default), or a scratch database "
        "'bench_suite' created on the local PostgreSQL or MariaDB server and dropped afterwards "
        "(BENCH_DATABASE_HOST, _PORT, _USER, _PASSWORD, _NAME override the defaults)",
    )
    parser.add_argument(
        "--sqlite-file",
        action="store_true",
        help="SQLite in a temporary file, as a deployed site runs it, instead of in memory",
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows per table (100000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repetitions per case (5)")
    parser.add_argument(
        "--codec-values",
        type=int,
        default=20_000,
        help="codec calls per sample (20000); the codec gets 4 x --repeat samples",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="bulk_create batch_size (default: Django's own; 1000 on MariaDB, whose packet limit "
        "a single 100,000-document INSERT would exceed)",
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        help="cpu: this process's CPU time, the default on SQLite, where all the work happens in "
        "this process, so other processes competing for the machine disturb it least; wall: "
        "elapsed time, the default on PostgreSQL and MariaDB, whose work happens in the server",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for the data and the order (7)")
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only this section (repeatable): codec, char (the 2-column model, with the "
        "peers), client (the OAuth client row), json",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print a Markdown section for docs/benchmarks.md"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed (SQLite only)"
    )
    parser.add_argument(
        "--profile",
        metavar="CASE",
        help="profile one case (e.g. char.read.authhero_encrypt) instead of measuring",
    )
    args = parser.parse_args(argv)
    for name in ("rows", "repeat", "codec_values", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.sqlite_file and args.database != "sqlite":
        parser.error("--sqlite-file goes with --database sqlite")
    if args.clock is None:
        args.clock = "cpu" if args.database == "sqlite" else "wall"
    if args.batch_size is None and args.database == "mariadb":
        args.batch_size = 1000
    return args


def setup(database: str, sqlite_path: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["BENCH_DATABASE"] = database
    os.environ["BENCH_SQLITE_PATH"] = sqlite_path
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.suite.settings"
    import django

    django.setup()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def profile(key: str, cases: Sequence[Case]) -> None:
    by_key = {case.key: case for case in cases}
    if key not in by_key:
        raise SystemExit(f"No case {key!r}; the cases are:\n  " + "\n  ".join(by_key))
    target = by_key[key]
    # Fill the table the case reads (with its library's write case), and warm the case up.
    column = key.partition(".")[0]
    for case in cases:
        if case.key == f"{column}.write.{target.library}" or case is target:
            case.run()
    try:
        from pyinstrument import Profiler
    except ImportError:
        profiler = cProfile.Profile()
        profiler.runcall(target.run)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    with Profiler(interval=0.0005) as instrument:
        target.run()
    print(instrument.output_text(unicode=True, color=False))


def run(args: argparse.Namespace, command: str) -> int:
    from benchmarks.suite import cases, data, database, models, report

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    sections = args.only or list(SECTIONS)
    database.create()
    try:
        progress(f"Preparing {args.rows:,} rows on {database.describe()}...")
        all_cases: list[Case] = []
        if "codec" in sections:
            all_cases += cases.codec_cases(data.secrets(args.codec_values, args.seed), clock)
        kinds = (
            ("char", cases.char_kind, data.token_rows),
            ("client", cases.client_kind, data.client_rows),
            ("json", cases.json_kind, data.option_rows),
        )
        for section, kind, rows in kinds:
            if section in sections:
                orm_rows = rows(args.rows, args.seed)
                all_cases += cases.orm_cases(kind(), orm_rows, args.batch_size, clock)
        if args.profile:
            profile(args.profile, all_cases)
            return 0

        failed = dict(models.UNAVAILABLE)
        codec = [case for case in all_cases if case.key.startswith("codec.")]
        orm = [case for case in all_cases if not case.key.startswith("codec.")]
        samples = report.measure(codec, 4 * args.repeat, args.seed, failed, progress)
        samples |= report.measure(orm, args.repeat, args.seed, failed, progress)
        judged = args.database == "sqlite"
        # The peers are measured with the char cases.
        run_sections = {*sections, "peers"} if "char" in sections else set(sections)
        comparisons = [c for c in cases.comparisons() if c.section in run_sections]
        found = report.rows(comparisons, all_cases, samples, judged=judged)
        summary = report.summary(cases.SUMMARY, cases.SUMMARY_LIBRARIES, all_cases, samples)
        summary_lines = report.render_summary(
            summary, cases.SUMMARY_LIBRARIES, markdown=args.markdown
        )

        described = database.describe()
        batch = args.batch_size or "Django's default"
        facts = [
            f"Command: `{command}`",
            *report.machine(described, [models.FERNET, models.MODEL_FIELDS]),
            f"{args.rows:,} rows per table, bulk_create batch_size {batch}; {args.clock} time; "
            f"{args.repeat} repetitions ({4 * args.repeat} of {args.codec_values:,} calls for "
            "the codec) after one warm-up run; ratio = median of the per-repetition ratios, "
            "spread = their min-max; µs = median time per value or row",
        ]
        notes = [f"Not measured: {library}: {reason}" for library, reason in failed.items()]
        if not judged:
            notes.append("The targets are judged on SQLite only.")
        if "json" in sections and models.FERNET not in failed:
            notes.append(
                f"{models.FERNET}'s EncryptedJSONField encrypts every leaf of the document, each "
                "as its own Fernet token, and reads non-string leaves back as strings: shown for "
                "scale, not a like-for-like field."
            )
        print(report.render(described, facts, summary_lines, found, notes, markdown=args.markdown))
        missed = any(row.verdict == "MISSED" for row in found)
        return 1 if args.check and missed else 0
    finally:
        database.drop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    words = sys.argv[1:] if argv is None else list(argv)
    command = " ".join([".venv/bin/python benchmarks/run.py", *words])
    with tempfile.TemporaryDirectory(prefix="bench_suite_") as scratch:
        path = os.path.join(scratch, "bench.sqlite3") if args.sqlite_file else ""
        setup(args.database, path)
        return run(args, command)


if __name__ == "__main__":
    sys.exit(main())
