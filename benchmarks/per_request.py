"""What one request's queries cost: authhero_encrypt against plain and the bare recipe.

Run from the repository root; this is not part of the test run::

    .venv/bin/python benchmarks/per_request.py [--database sqlite|postgresql] [--rounds 21]
                                               [--calls 200] [--markdown]
                                               [--count-instructions]

The per-request pattern on the 8-column OAuth client row (``benchmarks/suite/models.py``): a
``get()`` by a plaintext column, a list of 20, ``values_list(...).get()``, ``create()``,
``save()``, ``update()`` of a plaintext column, and a test-client request whose view does a
``get()`` and returns the secret's length. Each round times ``--calls`` calls of every
operation for each library one after the other (operations and libraries shuffled per round),
in this process's CPU time; a figure is the median over the rounds of the difference within a
round, in µs per call. "Ours, guard off" is authhero_encrypt with
its query guard short-circuited (``EncryptedCol.as_sql`` replaced by ``Col.as_sql``), so ours
minus it is what the guard itself costs.

``--count-instructions`` counts instructions instead of timing (valgrind's callgrind, see
``benchmarks/suite/instructions.py``): the same operations and libraries, ``--calls`` calls per
sample and ``--rounds`` samples each (``--rounds 3 --calls 50`` takes a few minutes), figures in
thousands of instructions per call. Counts barely move with the machine's load, so they resolve
the guard's few microseconds where CPU time on a shared machine cannot.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("plain", "recipe", "ours", "ours, guard off")
OPERATIONS = ("get", "list of 20", "values_list().get()", "create", "save", "update", "request")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/per_request.py", description=(__doc__ or "").split("\n\n", 1)[0]
    )
    parser.add_argument("--database", choices=("sqlite", "postgresql", "mariadb"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds (21)")
    parser.add_argument("--calls", type=int, default=200, help="calls per timed sample (200)")
    parser.add_argument("--rows", type=int, default=1000, help="rows per table (1000)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--count-instructions",
        action="store_true",
        help="count instructions under valgrind's callgrind instead of timing",
    )
    return parser.parse_args(argv)


def _guard_off() -> Callable[[], None]:
    """Short-circuit the guard; returns the function that puts it back."""
    from django.db.models.expressions import Col

    from authhero_encrypt.fields.expressions import EncryptedCol

    guarded = EncryptedCol.as_sql
    EncryptedCol.as_sql = Col.as_sql  # type: ignore[method-assign]

    def restore() -> None:
        EncryptedCol.as_sql = guarded  # type: ignore[method-assign]

    return restore


def operations(model: Any, rows: list[dict[str, Any]], client: Any, name: str) -> dict[str, Any]:
    """One callable per operation, reading and writing ``model``'s table."""
    target = rows[len(rows) // 2]
    client_id, tenant = target["client_id"], target["tenant_id"]
    saved = model.objects.get(client_id=client_id)
    fresh = {**target, "client_id": "new-client"}
    url = f"/client/{name}/{client_id}/"

    def get() -> None:
        model.objects.get(client_id=client_id)

    def list_of_20() -> None:
        list(model.objects.filter(tenant_id=tenant)[:20])

    def values_list_get() -> None:
        model.objects.values_list("name", "client_secret").get(client_id=client_id)

    def create() -> None:
        model.objects.create(**fresh)

    def save() -> None:
        saved.save()

    def update() -> None:
        model.objects.filter(pk=saved.pk).update(name="Customer portal, renamed")

    def request() -> None:
        response = client.get(url)
        assert response.status_code == 200

    return dict(
        zip(
            OPERATIONS,
            (get, list_of_20, values_list_get, create, save, update, request),
            strict=True,
        )
    )


def prepare(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The tables filled, and each library's operations: ``(models, calls)``."""
    from django.test import Client

    from benchmarks.suite import data, models

    by_library = {
        "plain": models.PlainClient,
        "recipe": models.RecipeClient,
        "ours": models.OursClient,
        "ours, guard off": models.OursClient,
    }
    rows = data.client_rows(args.rows, 7)
    for model in {*by_library.values()}:
        model.objects.bulk_create(model(**row) for row in rows)
    client = Client()
    calls = {
        library: operations(model, rows, client, library.split(",")[0])
        for library, model in by_library.items()
    }
    return by_library, calls


def measure(args: argparse.Namespace) -> dict[tuple[str, str], float]:
    by_library, calls = prepare(args)
    samples: dict[tuple[str, str], list[float]] = {}
    shuffle = random.Random(7)
    ops, libraries = list(OPERATIONS), list(LIBRARIES)
    for round_number in range(args.rounds + 1):  # round 0 warms up
        shuffle.shuffle(ops)
        for op in ops:
            shuffle.shuffle(libraries)
            timed: dict[str, float] = {}
            for library in libraries:
                call = calls[library][op]
                restore = _guard_off() if library == "ours, guard off" else None
                start = time.process_time()
                for _ in range(args.calls):
                    call()
                timed[library] = (time.process_time() - start) / args.calls * 1e6
                if restore is not None:
                    restore()
            if round_number:
                # Differences within the round, of samples taken one after the other.
                for key, value in (
                    ("plain", timed["plain"]),
                    ("recipe", timed["recipe"] - timed["plain"]),
                    ("ours", timed["ours"] - timed["plain"]),
                    ("guard", timed["ours"] - timed["ours, guard off"]),
                ):
                    samples.setdefault((op, key), []).append(value)
        for model in {*by_library.values()}:
            model.objects.filter(client_id="new-client").delete()
    return {pair: statistics.median(values) for pair, values in samples.items()}


def count_instructions(args: argparse.Namespace, counter: Any) -> dict[tuple[str, str], float]:
    """``measure()``'s figures in thousands of instructions per call, under callgrind."""
    by_library, calls = prepare(args)
    idle = statistics.median(counter.count(lambda: None) for _ in range(3))
    samples: dict[tuple[str, str], list[float]] = {}
    for op in OPERATIONS:
        for round_number in range(args.rounds):
            counted: dict[str, float] = {}
            for library in LIBRARIES:
                call = calls[library][op]
                restore = _guard_off() if library == "ours, guard off" else None
                if round_number == 0:
                    call()  # warm the caches and the interpreter's specialisations

                def run(call: Callable[[], None] = call) -> None:
                    for _ in range(args.calls):
                        call()

                counted[library] = (counter.count(run) - idle) / args.calls / 1e3
                if restore is not None:
                    restore()
            for key, value in (
                ("plain", counted["plain"]),
                ("recipe", counted["recipe"] - counted["plain"]),
                ("ours", counted["ours"] - counted["plain"]),
                ("guard", counted["ours"] - counted["ours, guard off"]),
            ):
                samples.setdefault((op, key), []).append(value)
        for model in {*by_library.values()}:
            model.objects.filter(client_id="new-client").delete()
    return {pair: statistics.median(values) for pair, values in samples.items()}


def _compiled_queries() -> dict[str, Any]:
    from benchmarks.suite import models

    return {
        "get": models.OursClient.objects.filter(client_id="x").query,
        "list of 20": models.OursClient.objects.filter(tenant_id="x")[:20].query,
        "values_list().get()": models.OursClient.objects.values_list("name", "client_secret")
        .filter(client_id="x")
        .query,
    }


def count_compile_guard(rounds: int, calls: int, counter: Any) -> dict[str, float]:
    """The guard's share of compiling each read query, in instructions per query."""
    samples: dict[str, list[float]] = {}
    for name, query in _compiled_queries().items():
        query.sql_with_params()
        for _ in range(rounds):
            counted = []
            for guarded in (True, False):
                restore = None if guarded else _guard_off()

                def run(query: Any = query) -> None:
                    for _ in range(calls):
                        query.sql_with_params()

                counted.append(counter.count(run) / calls)
                if restore is not None:
                    restore()
            samples.setdefault(name, []).append(counted[0] - counted[1])
    return {name: statistics.median(values) for name, values in samples.items()}


def compile_guard(rounds: int, calls: int) -> dict[str, float]:
    """The guard's share of compiling each read query, with no database time in the way.

    Compiling (``Query.sql_with_params()``) is where the guard runs; timing it alone, guard on
    and off one after the other, is far less noisy than whole requests on a shared machine.
    """
    queries = _compiled_queries()
    samples: dict[str, list[float]] = {name: [] for name in queries}
    for round_number in range(rounds + 1):
        for name, query in queries.items():
            timed = []
            for guarded in (True, False):
                restore = None if guarded else _guard_off()
                start = time.process_time()
                for _ in range(calls):
                    query.sql_with_params()
                timed.append((time.process_time() - start) / calls * 1e6)
                if restore is not None:
                    restore()
            if round_number:
                samples[name].append(timed[0] - timed[1])
    return {name: statistics.median(values) for name, values in samples.items()}


def render(
    found: dict[tuple[str, str], float], described: str, markdown: bool, unit: str = "µs"
) -> str:
    header = [
        "operation",
        f"plain {unit}",
        f"recipe +{unit}",
        f"ours +{unit}",
        "ours / recipe (added)",
        f"guard {unit}",
    ]
    lines = []
    for op in OPERATIONS:
        plain, recipe = found[(op, "plain")], found[(op, "recipe")]
        ours, guard = found[(op, "ours")], found[(op, "guard")]
        ratio = f"{ours / recipe:.2f}x" if recipe > 1 else "n/a"
        lines.append([op, f"{plain:.1f}", f"{recipe:.1f}", f"{ours:.1f}", ratio, f"{guard:.1f}"])
    if not markdown:
        width = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
        text = [described]
        for row in [header, *lines]:
            text.append("  ".join(str(cell).rjust(w) for cell, w in zip(row, width, strict=True)))
        return "\n".join(text)
    text = [f"#### {described}", "", "| " + " | ".join(header) + " |"]
    text.append("|" + "---|" * len(header))
    text += ["| " + " | ".join(row) + " |" for row in lines]
    return "\n".join(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.suite import instructions  # no Django import: safe before setup

    out = instructions.output_path() if args.count_instructions else None
    if args.count_instructions and out is None:
        script = str(Path(__file__).resolve())
        return instructions.run_under_callgrind(script, sys.argv[1:] if argv is None else argv)
    sys.argv[0] = "benchmarks/per_request.py"
    import os

    os.environ["BENCH_DATABASE"] = args.database
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.suite.settings"
    os.environ["BENCH_ROOT_URLCONF"] = "benchmarks.suite.per_request_urls"
    import django

    django.setup()
    from benchmarks.suite import database

    database.create()
    try:
        if out is not None:
            counter = instructions.Counter(out)
            found = count_instructions(args, counter)
            described = f"{database.describe()}, thousands of instructions per call (callgrind)"
            print(render(found, described, args.markdown, unit="kIr"))
            counted = count_compile_guard(args.rounds, args.calls, counter)
            print()
            print("Guard's share of compiling the query (instructions per query, paired):")
            for name, value in counted.items():
                print(f"- {name}: {value:,.0f}")
            return 0
        found = measure(args)
        print(render(found, database.describe(), args.markdown))
        compiled = compile_guard(args.rounds, args.calls * 10)
        print()
        print("Guard's share of compiling the query (µs per query, median of paired rounds):")
        for name, value in compiled.items():
            print(f"- {name}: {value:.1f}")
    finally:
        database.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
