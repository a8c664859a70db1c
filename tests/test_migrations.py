"""Migrations of encrypted fields: clean autodetection, and swapping a CharField for one."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from authhero_encrypt.crypto import PREFIX, decrypt_value
from authhero_encrypt.fields.scalar import stored_length
from tests.testapp.models import Swapped

TABLE = Swapped._meta.db_table
BEFORE = [("testapp", "0001_initial")]
LEGACY = ["legacy one!", "legacy two!", "😀 four bytes!"]


def test_makemigrations_is_clean(db):
    out = StringIO()
    # --check exits non-zero (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


def test_swap_migration_only_alters_the_column_type():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    migration = loader.get_migration("testapp", "0002_encrypt_swapped_token")
    [operation] = migration.operations
    _, path, args, kwargs = operation.field.deconstruct()
    assert args == []
    assert path == "authhero_encrypt.fields.EncryptedCharField"
    assert kwargs == {"max_length": 40}


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes("testapp")


def migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()


def token_width() -> int | None:
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, TABLE)
    return next(info.display_size for info in description if info.name == "token")


def raw_tokens() -> dict[int, str]:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('id')}, {qn('token')} FROM {qn(TABLE)}")
        return dict(cursor.fetchall())


@pytest.fixture
def at_0001(transactional_db: None) -> Iterator[None]:
    """The test app migrated back to 0001, and forward to the latest again afterwards."""
    migrate(BEFORE)
    try:
        yield
    finally:
        migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_swapping_a_char_field_keeps_old_rows_readable(at_0001):
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for value in LEGACY:
            cursor.execute(f"INSERT INTO {qn(TABLE)} ({qn('token')}) VALUES (%s)", [value])
    if connection.vendor != "sqlite":
        assert token_width() == 40

    migrate(latest())

    if connection.vendor != "sqlite":
        assert token_width() == stored_length(40)
    before = raw_tokens()
    assert sorted(before.values()) == sorted(LEGACY)  # the migration rewrote nothing
    rows = list(Swapped.objects.order_by("pk"))
    assert [row.token for row in rows] == LEGACY
    for row in rows:
        row.save()
    after = raw_tokens()
    for row in rows:
        stored = after[row.pk]
        assert stored.startswith(PREFIX)
        assert row.token not in stored
        assert decrypt_value(stored) == row.token
    assert [row.token for row in Swapped.objects.order_by("pk")] == LEGACY
    created = Swapped.objects.create(token="x" * 40)
    assert raw_tokens()[created.pk].startswith(PREFIX)
