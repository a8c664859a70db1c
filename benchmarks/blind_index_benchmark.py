"""What a lookup through a blind index costs against a plaintext indexed column, and how many
HMACs a write computes.

Run from the repository root (not part of the test run)::

    .venv/bin/python benchmarks/blind_index_benchmark.py [--rows 1000000] [--rounds 15]
                                                         [--calls 200]

Two tables (``benchmarks/index_app``) in a scratch PostgreSQL database ``bench_blind_index``
(``BENCH_PG_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD`` name the server; created and dropped by
this script) get ``--rows`` members each: ``IndexedMember`` with an encrypted email and its
unique blind index (strip, casefold), ``PlainMember`` with the same email in a ``db_index``
``CharField``. The ciphertexts and tags are computed in Python beforehand and written with
``COPY``, so the load takes seconds per 100,000 rows.

Lookups: ``--rounds`` rounds of ``--calls`` random existing emails, each looked up by every
case in turn (the order reversed every round; one warm-up round first):
``IndexedMember.objects.filter(email=X).get()`` through the blind index (with the branch for
legacy rows), the same under ``ENCRYPTION_REJECT_PLAINTEXT`` (tag branch only) and during a
key change-over (two tags per value),
``PlainMember.objects.filter(email=X).get()``, and the three queries' SQL alone through the
cursor. Reported: the median and 90th percentile per call and the ratio to the plaintext
lookup (target <= 1.2), then the plans of the queries from ``EXPLAIN (ANALYZE)``.

Writes: the calls of ``compute_tag`` (one per HMAC) made by ``save()``, ``create()``,
``bulk_create()``, ``update()``, ``bulk_update()`` and an upsert, per row, with one index key
and during a change-over (a new key active, the old one a fallback), inside a transaction that
is rolled back. Target: one HMAC per index per key generation (the unique index keeps a tag
under the oldest key too, so two during a change-over).
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scratch_postgres import postgres_settings, recreate_database

ROOT = Path(__file__).resolve().parent.parent
PG_DATABASE = "bench_blind_index"
ENCRYPTION_KEY = base64.b64encode(bytes(range(32))).decode()
INDEX_KEY = base64.b64encode(bytes(range(64, 96))).decode()
NEW_INDEX_KEY = base64.b64encode(bytes(range(96, 128))).decode()
BATCH = 50_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per table (1000000)")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (15)")
    parser.add_argument("--calls", type=int, default=200, help="lookups per case per round (200)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    return parser.parse_args()


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=["authhero_encrypt", "benchmarks.index_app"],
        DATABASES={"default": postgres_settings(PG_DATABASE)},
        ENCRYPTION_KEY=ENCRYPTION_KEY,
        ENCRYPTION_INDEX_KEY=INDEX_KEY,
        ENCRYPTION_INDEX_KEY_ID="i1",
    )
    django.setup()


def email(i: int) -> str:
    return f"member{i:07d}@example.com"


# Load ------------------------------------------------------------------------------------


def indexed_rows(count: int) -> Iterator[tuple[Any, ...]]:
    """``(id, email ciphertext, tag, previous tag)``: tags computed as the field does, in bulk."""
    from authhero_encrypt.blind_index.keys import get_index_keyring
    from authhero_encrypt.blind_index.tags import compute_tag
    from authhero_encrypt.crypto import encrypt_value
    from authhero_encrypt.keys import get_keyring
    from benchmarks.index_app.models import IndexedMember

    field: Any = IndexedMember._meta.get_field("email_index")
    ring = get_index_keyring()
    assert ring.active is not None
    subkey = ring.subkey(ring.active, field.index_label())
    keyring = get_keyring()
    for i in range(1, count + 1):
        value = email(i)
        tag = compute_tag(ring.active.id, subkey, field.normalize(value), bits=256, iterations=0)
        yield i, encrypt_value(value, keyring), tag, tag


def load(rows: int) -> None:
    from django.db import connection, transaction

    from benchmarks.index_app.models import IndexedMember, PlainMember

    started = time.perf_counter()
    with connection.schema_editor() as editor:
        editor.create_model(IndexedMember)
        editor.create_model(PlainMember)
    columns = "(id, email, email_index, email_index_previous)"
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY bench_indexed_member {columns} FROM STDIN") as copy:
            for row in indexed_rows(rows):
                copy.write_row(row)
        with raw.copy("COPY bench_plain_member (id, email) FROM STDIN") as copy:
            for i in range(1, rows + 1):
                copy.write_row((i, email(i)))
    with connection.cursor() as cursor:
        for table in ("bench_indexed_member", "bench_plain_member"):
            cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [rows])
    print(f"loaded {rows:,} rows into each table in {time.perf_counter() - started:.0f} s")


# Lookups ---------------------------------------------------------------------------------


class Settings:
    """Settings changed around one call, switched outside the timed part."""

    def __init__(self, **changes: Any) -> None:
        self.changes = changes

    def __enter__(self) -> None:
        from django.test import override_settings

        self.override = override_settings(**self.changes)
        self.override.enable()
        warm()

    def __exit__(self, *exc: object) -> None:
        self.override.disable()
        warm()


def warm() -> None:
    """Rebuild the key rings a settings change dropped (and their subkeys), off the clock."""
    from authhero_encrypt.keys import get_keyring
    from benchmarks.index_app.models import IndexedMember

    get_keyring()
    index: Any = IndexedMember._meta.get_field("email_index")
    index.match_tags("warm-up")


def strict() -> Settings:
    return Settings(ENCRYPTION_REJECT_PLAINTEXT=True)


def change_over() -> Settings:
    """A new index key active, the old one a fallback: each lookup matches two tags."""
    return Settings(
        ENCRYPTION_INDEX_KEY=NEW_INDEX_KEY,
        ENCRYPTION_INDEX_KEY_ID="i2",
        ENCRYPTION_INDEX_KEY_FALLBACKS=[f"i1:{INDEX_KEY}"],
    )


def sql_only(sql: str, params: Callable[[str], list[Any]]) -> Callable[[str], Any]:
    """The query alone, through Django's cursor: no ORM compiling, no decryption."""
    from django.db import connection

    def run(value: str) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql, params(value))
            return cursor.fetchall()

    return run


def cases() -> dict[str, tuple[Callable[[str], Any], Any]]:
    """Each lookup, with the context it runs in (entered and left outside the clock)."""
    from contextlib import nullcontext

    from benchmarks.index_app.models import IndexedMember, PlainMember

    index: Any = IndexedMember._meta.get_field("email_index")
    legacy_branch = (
        "SELECT id, email, email_index, email_index_previous FROM bench_indexed_member WHERE "
        "((email_index IS NOT NULL AND email_index IN (%s)) "
        "OR (email_index IS NULL AND email IN (%s)))"
    )
    tag_branch = (
        "SELECT id, email, email_index, email_index_previous FROM bench_indexed_member WHERE "
        "(email_index IS NOT NULL AND email_index IN (%s))"
    )
    return {
        "blind index": (lambda v: IndexedMember.objects.filter(email=v).get(), nullcontext()),
        "blind index, strict mode": (
            lambda v: IndexedMember.objects.filter(email=v).get(),
            strict(),
        ),
        "blind index, change-over (2 tags)": (
            lambda v: IndexedMember.objects.filter(email=v).get(),
            change_over(),
        ),
        "plaintext": (lambda v: PlainMember.objects.filter(email=v).get(), nullcontext()),
        "SQL only: blind index": (
            sql_only(legacy_branch, lambda v: [index.match_tags(v)[0], v]),
            nullcontext(),
        ),
        "SQL only: blind index, strict": (
            sql_only(tag_branch, lambda v: [index.match_tags(v)[0]]),
            nullcontext(),
        ),
        "SQL only: plaintext": (
            sql_only("SELECT id, email FROM bench_plain_member WHERE email = %s", lambda v: [v]),
            nullcontext(),
        ),
    }


def lookups(args: argparse.Namespace) -> None:
    from benchmarks.index_app.models import IndexedMember, PlainMember

    timed = cases()
    rng = random.Random(20)
    results: dict[str, list[float]] = {name: [] for name in timed}
    for round_ in range(args.rounds + 1):  # round 0 warms caches, plans and the connection
        order = list(timed) if round_ % 2 else list(reversed(timed))
        for _ in range(args.calls):
            value = email(rng.randint(1, args.rows))
            for name in order:  # interleaved call by call: the machine's noise hits all alike
                lookup, context = timed[name]
                with context:
                    started = time.perf_counter()
                    found = lookup(value)
                    elapsed = time.perf_counter() - started
                assert found, name
                if round_:
                    results[name].append(elapsed)
    print(f"\n{args.rounds} rounds x {args.calls} calls of each, {args.rows:,} rows per table")
    print("| lookup | median per call | p90 per call | vs plaintext |")
    print("|---|---:|---:|---:|")
    for name, times in results.items():
        base = statistics.median(results["SQL only: plaintext" if "SQL" in name else "plaintext"])
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"| {name} | {median * 1e6:.0f} µs | {p90 * 1e6:.0f} µs | {median / base:.2f}x |")
    wanted = email(args.rows // 2)
    plans = (
        ("blind index", IndexedMember.objects.filter(email=wanted)),
        ("plaintext", PlainMember.objects.filter(email=wanted)),
    )
    for name, queryset in plans:
        print(f"\nEXPLAIN (ANALYZE) {name}: {queryset.query}\n")
        print(queryset.explain(analyze=True))
    for name, context in (("strict mode", strict()), ("change-over", change_over())):
        with context:
            queryset = IndexedMember.objects.filter(email=wanted)
            print(f"\nEXPLAIN (ANALYZE) blind index, {name}: {queryset.query}\n")
            print(queryset.explain(analyze=True))


# HMACs per write -------------------------------------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        from authhero_encrypt.blind_index import tags

        self.calls += 1
        return tags.compute_tag(*args, **kwargs)


def writes() -> list[tuple[str, float]]:
    """HMACs per row of each write, in a transaction rolled back."""
    from django.db import transaction

    from authhero_encrypt.blind_index import field as field_module
    from benchmarks.index_app.models import IndexedMember as M

    counter = Counter()
    original = field_module.compute_tag
    field_module.compute_tag = counter  # type: ignore[assignment]

    def per_row(rows: int, action: Callable[[], Any]) -> float:
        counter.calls = 0
        action()
        return counter.calls / rows

    ten = range(10)
    try:
        with transaction.atomic():
            loaded = list(M.objects.order_by("pk")[:10])
            results = [
                ("Model(...).save()", per_row(1, lambda: M(email="a@bench").save())),
                ("objects.create()", per_row(1, lambda: M.objects.create(email="b@bench"))),
                (
                    "bulk_create() of 10",
                    per_row(10, lambda: M.objects.bulk_create([M(email=f"c{i}@b") for i in ten])),
                ),
                (
                    "filter(pk=).update(email=)",
                    per_row(1, lambda: M.objects.filter(pk=loaded[0].pk).update(email="d@b")),
                ),
                ("save() of a loaded row", per_row(1, lambda: loaded[1].save())),
                ("bulk_update() of 10", per_row(10, lambda: bulk_update(loaded))),
                (
                    "upsert (update_conflicts) of 1",
                    per_row(1, lambda: upsert(M, loaded[2].pk)),
                ),
            ]
            transaction.set_rollback(True)
    finally:
        field_module.compute_tag = original
    return results


def bulk_update(loaded: list[Any]) -> None:
    for i, member in enumerate(loaded):
        member.email = f"e{i}@bench"
    type(loaded[0]).objects.bulk_update(loaded, ["email"])


def upsert(model: Any, pk: int) -> None:
    model.objects.bulk_create(
        [model(pk=pk, email="f@bench")],
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["email"],
    )


def hmac_table() -> None:
    from django.test import override_settings

    one = writes()
    with override_settings(
        ENCRYPTION_INDEX_KEY=NEW_INDEX_KEY,
        ENCRYPTION_INDEX_KEY_ID="i2",
        ENCRYPTION_INDEX_KEY_FALLBACKS=[f"i1:{INDEX_KEY}"],
    ):
        change_over = writes()
    print("\nHMACs per row written (one unique index: its column and <name>_previous)")
    print("| write | one key (target 1) | change-over (target 2) |")
    print("|---|---:|---:|")
    for (name, single), (_name, both) in zip(one, change_over, strict=True):
        print(f"| {name} | {single:g} | {both:g} |")


def main() -> None:
    args = parse_args()
    recreate_database(PG_DATABASE)
    setup_django()
    try:
        load(args.rows)
        hmac_table()
        lookups(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            recreate_database(PG_DATABASE, drop_only=True)


if __name__ == "__main__":
    main()
