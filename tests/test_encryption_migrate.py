"""``manage.py encryption_migrate``, proven against the raw columns on every database.

The scenario is a rotation in progress: the active key is KEY_B with id ``new``; KEY_A (the old
default, which wrote untagged values) and KEY_C (which wrote ``enc:v1:old:``) are fallbacks. The
tables are seeded through the cursor with every kind of stored value, and every claim about the
result is checked by reading the columns back and decrypting with a ring that holds only the
active key.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, models, transaction
from django.test import override_settings

from authhero_encrypt.crypto import PREFIX, decrypt_with, encrypt_with
from authhero_encrypt.inventory import PrimaryKey, encrypted_fields, load_json
from authhero_encrypt.json_text import dumps_exact, loads_exact
from authhero_encrypt.keys import Key, KeyRing
from authhero_encrypt.migrate.batches import MAX_ATTEMPTS
from authhero_encrypt.migrate.swap import Swapper
from tests.keys import KEY_A, KEY_B, KEY_C
from tests.testapp.models import Connection, EmailProvider, MigrationSource, Secret, Swapped

ROOT = Path(__file__).resolve().parent.parent

OLD = Key.from_secret(None, base64.b64decode(KEY_A))
NEW = Key.from_secret("new", base64.b64decode(KEY_B))
OLDER = Key.from_secret("old", base64.b64decode(KEY_C))
STRANGER = Key.from_secret(None, bytes(range(96, 128)))
ONLY_NEW = KeyRing.from_keys(NEW, ())
ROTATED = {
    "ENCRYPTION_KEY": KEY_B,
    "ENCRYPTION_KEY_ID": "new",
    "ENCRYPTION_KEY_FALLBACKS": [KEY_A, f"old:{KEY_C}"],
}
MODELS: tuple[type[models.Model], ...] = (
    Secret,
    Swapped,
    Connection,
    EmailProvider,
    MigrationSource,
)

needs_server = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="concurrent writers need PostgreSQL or MariaDB"
)


def under(key: Key, plaintext: str, tag: str | None = None) -> str:
    return encrypt_with(key, plaintext, prefix=PREFIX if tag is None else f"{PREFIX}{tag}:")


def tampered(stored: str) -> str:
    return stored[:-2] + ("A" if stored[-2] != "A" else "B") + stored[-1]


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def write_raw(
    model: type[models.Model], pk: Any, column: str, value: Any, *, using: str = "default"
) -> None:
    """Store ``value`` as is (a JSON column gets its text), bypassing every field."""
    conn = connections[using]
    is_json = isinstance(model._meta.get_field(column), models.JSONField)
    mark = "%s::jsonb" if is_json and conn.vendor == "postgresql" else "%s"
    if is_json and value is not None:
        value = json.dumps(value)
    table, col = conn.ops.quote_name(model._meta.db_table), conn.ops.quote_name(column)
    with conn.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {col} = {mark} WHERE id = %s", [value, pk])


def snapshot() -> dict[tuple[str, Any, str], Any]:
    """Every encrypted column of every test model, exactly as stored."""
    seen: dict[tuple[str, Any, str], Any] = {}
    with connection.cursor() as cursor:
        for model in MODELS:
            for fld in encrypted_fields(model):
                table = quote(model._meta.db_table)
                cursor.execute(f"SELECT id, {quote(fld.column)} FROM {table} ORDER BY id")
                for pk, raw in cursor.fetchall():
                    seen[model._meta.db_table, pk, fld.column] = raw
    return seen


def assert_under_new(stored: Any, plaintext: str) -> None:
    assert isinstance(stored, str)
    assert stored.startswith("enc:v1:new:"), stored
    assert decrypt_with(ONLY_NEW, stored) == plaintext


def assert_document(model: type[models.Model], pk: Any, column: str, expected: Any) -> None:
    """The stored document equals ``expected`` with every secret leaf under the active key."""
    document = load_json(snapshot()[model._meta.db_table, pk, column])
    if expected is None:
        assert document is None
        return
    trie = model._meta.get_field(column).path_trie  # type: ignore[union-attr]
    secrets = dict(trie.secrets(document))
    for path, stored in secrets.items():
        assert stored.startswith("enc:v1:new:"), (pk, path)
    opened = trie.transform(document, lambda _path, stored: decrypt_with(ONLY_NEW, stored))
    assert opened == expected


def run(*args: str, **options: Any) -> dict[str, Any]:
    """Run the command with ``--format json`` and return its summary."""
    out = StringIO()
    call_command(
        "encryption_migrate", *args, format="json", stdout=out, stderr=StringIO(), **options
    )
    return json.loads(out.getvalue())


def failing_run(*args: str, **options: Any) -> tuple[dict[str, Any], str]:
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "encryption_migrate", *args, format="json", stdout=out, stderr=StringIO(), **options
        )
    return json.loads(out.getvalue()), str(excinfo.value)


def by_field(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{entry['model']}.{entry['field']}": entry for entry in summary["fields"]}


@pytest.fixture
def rotated() -> Iterator[None]:
    with override_settings(**ROTATED):
        yield


# The seeded tables -----------------------------------------------------------------------------

SECRET_ROWS: list[tuple[str, Any, Any]] = [
    # (label, (stored token, plaintext), (stored notes, plaintext)); None = SQL NULL
    ("legacy", ("legacy token!", "legacy token!"), ("", "")),
    ("active", (under(NEW, "active!", "new"), "active!"), (None, None)),
    (
        "fallback",
        (under(OLD, "old untagged!"), "old untagged!"),
        (under(OLDER, "tagged!", "old"), "tagged!"),
    ),
    ("empty", ("", ""), (under(NEW, "active, no id!"), "active, no id!")),
    ("null", (None, None), ("ünïcødé €!\nline two", "ünïcødé €!\nline two")),
]


def connection_docs() -> list[tuple[Any, Any]]:
    """(stored options, expected plaintext options) for the Connection rows."""
    return [
        (
            {
                "client_id": "public-id",
                "client_secret": "legacy secret!",
                "app_secret": 42,
                "configuration": {"client_secret": under(OLDER, "deep!", "old"), "scope": "x"},
                "other_secret": "not a declared path",
            },
            {
                "client_id": "public-id",
                "client_secret": "legacy secret!",
                "app_secret": 42,
                "configuration": {"client_secret": "deep!", "scope": "x"},
                "other_secret": "not a declared path",
            },
        ),
        ({"client_id": "no secrets here"}, {"client_id": "no secrets here"}),
        (None, None),
        (
            {"configuration": "not an object", "twilio_token": under(NEW, "tw!", "new")},
            {"configuration": "not an object", "twilio_token": "tw!"},
        ),
        (
            {"client_secret": "", "app_secret": under(OLD, "app!"), "list": ["x", {"a": 1}]},
            {"client_secret": "", "app_secret": "app!", "list": ["x", {"a": 1}]},
        ),
    ]


def provider_docs() -> list[tuple[Any, Any]]:
    """``credentials`` has ``encrypted_paths=["*"]``: every top-level string, not deeper."""
    return [
        (
            {
                "api_key": "kéy €!",
                "user": under(OLDER, "user!", "old"),
                "password": under(NEW, "pw!", "new"),
                "port": 587,
                "tls": True,
                "smtp": {"password": "nested, not secret"},
            },
            {
                "api_key": "kéy €!",
                "user": "user!",
                "password": "pw!",
                "port": 587,
                "tls": True,
                "smtp": {"password": "nested, not secret"},
            },
        ),
        ({}, {}),
    ]


def seed() -> dict[str, list[Any]]:
    """Create the mixed tables; returns the primary keys per model."""
    pks: dict[str, list[Any]] = {"secret": [], "swapped": [], "connection": [], "provider": []}
    for label, (token, _), (notes, _) in SECRET_ROWS:
        pk = Secret.objects.create(label=label).pk
        write_raw(Secret, pk, "token", token)
        write_raw(Secret, pk, "notes", notes)
        pks["secret"].append(pk)
    for stored in ["swapped legacy!", under(OLD, "swapped old!")]:
        pk = Swapped.objects.create(token="x").pk
        write_raw(Swapped, pk, "token", stored)
        pks["swapped"].append(pk)
    for stored, _ in connection_docs():
        pk = Connection.objects.create(name="c").pk
        write_raw(Connection, pk, "options", stored)
        pks["connection"].append(pk)
    for stored, _ in provider_docs():
        pk = EmailProvider.objects.create(name="p").pk
        write_raw(EmailProvider, pk, "credentials", stored)
        pks["provider"].append(pk)
    source = MigrationSource.objects.create(name="m")
    write_raw(MigrationSource, source.pk, "credentials", {"client_secret": "ms!", "domain": "d"})
    pks["source"] = [source.pk]
    return pks


def assert_everything_migrated(pks: dict[str, list[Any]]) -> None:
    raw = snapshot()
    for pk, (_label, (_, token), (_, notes)) in zip(pks["secret"], SECRET_ROWS, strict=True):
        for column, plaintext in (("token", token), ("notes", notes)):
            if plaintext is None:
                assert raw["testapp_secret", pk, column] is None
            else:
                assert_under_new(raw["testapp_secret", pk, column], plaintext)
    for pk, plaintext in zip(pks["swapped"], ["swapped legacy!", "swapped old!"], strict=True):
        assert_under_new(raw["testapp_swapped", pk, "token"], plaintext)
    for pk, (_, expected) in zip(pks["connection"], connection_docs(), strict=True):
        assert_document(Connection, pk, "options", expected)
    for pk, (_, expected) in zip(pks["provider"], provider_docs(), strict=True):
        assert_document(EmailProvider, pk, "credentials", expected)
    (source,) = pks["source"]
    assert_document(MigrationSource, source, "credentials", {"client_secret": "ms!", "domain": "d"})


# Mixed tables, all databases -------------------------------------------------------------------

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("batch_size", [500, 2])
def test_mixed_tables_end_under_the_active_key(rotated, batch_size):
    pks = seed()
    summary = run(batch_size=batch_size)
    assert_everything_migrated(pks)
    fields = by_field(summary)
    assert fields["testapp.Secret.token"]["values"] == {
        "encrypted": 2,
        "reencrypted": 1,
        "rewrapped": 0,
        "unchanged": 1,
        "failed": 0,
        "skipped": 0,
    }
    assert fields["testapp.Secret.token"]["rows"] == 5
    assert fields["testapp.Secret.token"]["written"] == 3
    assert fields["testapp.Secret.notes"]["values"]["encrypted"] == 2
    assert fields["testapp.Secret.notes"]["values"]["reencrypted"] == 2
    paths = {p["path"]: p for p in fields["testapp.Connection.options"]["paths"]}
    assert [p["path"] for p in fields["testapp.Connection.options"]["paths"]] == [
        "client_secret",
        "app_secret",
        "twilio_token",
        "configuration.client_secret",
    ]
    assert paths["client_secret"]["encrypted"] == 2
    assert paths["app_secret"]["reencrypted"] == 1
    assert paths["twilio_token"]["unchanged"] == 1
    assert paths["configuration.client_secret"]["reencrypted"] == 1
    assert fields["testapp.Connection.options"]["written"] == 2
    star = fields["testapp.EmailProvider.credentials"]
    assert star["paths"] == [
        {
            "path": "*",
            "encrypted": 1,
            "reencrypted": 1,
            "rewrapped": 0,
            "unchanged": 1,
            "failed": 0,
            "skipped": 0,
        }
    ]
    assert summary["totals"]["values"]["failed"] == 0
    assert summary["totals"]["left_over"] == 0
    assert summary["key"]["key_id"] == "new"
    assert summary["dry_run"] is False


def test_the_orm_reads_every_migrated_value(rotated):
    seed()
    run()
    with override_settings(ENCRYPTION_KEY_FALLBACKS=[]):  # the old keys can now go
        tokens = sorted(v or "" for v in Secret.objects.values_list("token", flat=True))
        assert tokens == sorted(t or "" for _l, (_s, t), _n in SECRET_ROWS)
        options = list(Connection.objects.order_by("id").values_list("options", flat=True))
        assert options == [expected for _stored, expected in connection_docs()]


def test_second_run_changes_nothing(rotated):
    seed()
    run(batch_size=3)
    before = snapshot()
    summary = run(batch_size=3)
    assert snapshot() == before
    assert summary["totals"]["written"] == 0
    values = summary["totals"]["values"]
    assert values["encrypted"] == values["reencrypted"] == values["failed"] == 0
    assert values["unchanged"] > 0


def test_dry_run_writes_nothing(rotated):
    pks = seed()
    before = snapshot()
    summary = run(dry_run=True)
    assert snapshot() == before
    assert summary["dry_run"] is True
    assert summary["totals"]["written"] == 13  # what a real run writes, below
    assert by_field(summary)["testapp.Secret.token"]["values"]["encrypted"] == 2
    assert run()["totals"]["written"] == 13
    assert_everything_migrated(pks)


def test_text_summary(rotated):
    seed()
    out = StringIO()
    call_command("encryption_migrate", "testapp.Secret", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "Migrated to key id 'new'" in text
    assert text.count("testapp.Secret.") == 2
    assert "testapp.Connection" not in text
    header = next(line for line in text.splitlines() if line.startswith("Field / path"))
    columns = ["Rows", "Written", "Encrypted", "Re-encrypted", "Unchanged", "Failed", "Skipped"]
    assert header.split() == ["Field", "/", "path", *columns, "Left", "over"]
    token_row = next(line for line in text.splitlines() if line.startswith("testapp.Secret.token"))
    assert token_row.split()[1:] == ["5", "3", "2", "1", "1", "0", "0", "0"]
    assert "Every value is under the active key." in text
    for _label, (token, _), (notes, _) in SECRET_ROWS:
        for stored in (token, notes):
            assert not stored or stored not in text  # never prints a stored value


def test_text_summary_of_a_json_field_lists_its_paths(rotated):
    seed()
    out = StringIO()
    call_command("encryption_migrate", "testapp.EmailProvider", stdout=out)
    lines = out.getvalue().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("testapp.EmailProvider"))
    assert lines[index + 1].split() == ["*", "1", "1", "1", "0", "0"]


def test_dry_run_text_says_so(rotated):
    seed()
    out = StringIO()
    call_command("encryption_migrate", dry_run=True, stdout=out)
    assert out.getvalue().startswith("Dry run: nothing was written.")
    assert "Would write" in out.getvalue()
    assert "Every value would be under the active key." in out.getvalue()


@pytest.mark.parametrize("output", ["text", "json"])
def test_verbosity_0_prints_nothing_but_still_fails(rotated, output):
    pks = seed()
    out, err = StringIO(), StringIO()
    call_command("encryption_migrate", verbosity=0, format=output, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("", "")
    assert_everything_migrated(pks)
    write_raw(Secret, pks["secret"][0], "token", under(STRANGER, "lost!"))
    with pytest.raises(CommandError, match="1 value"):
        call_command("encryption_migrate", verbosity=0, format=output, stdout=out, stderr=err)
    assert (out.getvalue(), err.getvalue()) == ("", "")


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal(rotated):
    seed()
    err = Terminal()
    call_command(
        "encryption_migrate", "testapp.Secret", batch_size=2, stdout=StringIO(), stderr=err
    )
    assert "\rtestapp.Secret.token: 5/5 rows" in err.getvalue()
    assert "rows/s" in err.getvalue()
    assert "\x1b[31m" not in err.getvalue()  # not coloured as an error
    err = Terminal()
    call_command("encryption_migrate", "testapp.Secret", verbosity=0, stdout=StringIO(), stderr=err)
    assert err.getvalue() == ""


def test_progress_without_a_terminal_is_a_line_per_batch_at_verbosity_2(rotated):
    pks = seed()
    err = StringIO()
    call_command(
        "encryption_migrate",
        "testapp.Secret",
        batch_size=2,
        verbosity=2,
        stdout=StringIO(),
        stderr=err,
    )
    lines = [
        line for line in err.getvalue().splitlines() if line.startswith("testapp.Secret.token")
    ]
    assert [line.split(",")[0] for line in lines] == [
        "testapp.Secret.token: 2/5 rows",
        "testapp.Secret.token: 4/5 rows",
        "testapp.Secret.token: 5/5 rows",
    ]
    assert lines[-1].endswith(f"last pk {pks['secret'][-1]}")
    err = StringIO()
    call_command("encryption_migrate", "testapp.Secret", stdout=StringIO(), stderr=err)
    assert err.getvalue() == ""


# Undecryptable values ------------------------------------------------------------------------


def test_undecryptable_values_are_reported_and_untouched(rotated):
    pks = seed()
    bad_token = Secret.objects.create(label="bad").pk
    gone = under(OLDER, "gone!", "gone")
    write_raw(Secret, bad_token, "token", gone)
    write_raw(Secret, bad_token, "notes", "legacy next to a bad token")
    tampered_pk = Secret.objects.create(label="tampered").pk
    forged = tampered(under(NEW, "forged!", "new"))
    write_raw(Secret, tampered_pk, "token", forged)
    bad_doc = {"client_secret": "legacy beside a bad leaf!", "app_secret": under(STRANGER, "x!")}
    bad_doc_pk = Connection.objects.create(name="bad").pk
    write_raw(Connection, bad_doc_pk, "options", bad_doc)
    before = snapshot()

    summary, message = failing_run(batch_size=2)

    assert "3 value(s) failed to decrypt and were left untouched" in message
    assert "ENCRYPTION_KEY_FALLBACKS" in message
    after = snapshot()
    assert after["testapp_secret", bad_token, "token"] == gone
    assert after["testapp_secret", tampered_pk, "token"] == forged
    assert (
        after["testapp_connection", bad_doc_pk, "options"]
        == before["testapp_connection", bad_doc_pk, "options"]
    )
    # The other values of those rows, and every other row, migrated.
    assert_under_new(after["testapp_secret", bad_token, "notes"], "legacy next to a bad token")
    assert_everything_migrated(pks)
    fields = by_field(summary)
    token = fields["testapp.Secret.token"]
    assert token["failed_rows"] == 2
    assert token["values"]["failed"] == 2
    assert [f["pk"] for f in token["failed"]] == [bad_token, tampered_pk]
    assert "'gone'" in token["failed"][0]["reason"]
    assert "forged" not in json.dumps(summary)
    options = fields["testapp.Connection.options"]
    assert options["failed"] == [
        {"pk": bad_doc_pk, "path": "app_secret", "reason": options["failed"][0]["reason"]}
    ]
    paths = {p["path"]: p for p in options["paths"]}
    assert paths["client_secret"]["skipped"] == 1
    assert paths["app_secret"]["failed"] == 1


def test_undecryptable_values_are_named_in_the_text_summary(rotated):
    pk = Secret.objects.create(label="bad").pk
    write_raw(Secret, pk, "token", under(OLDER, "gone!", "gone"))
    out = StringIO()
    with pytest.raises(CommandError, match="1 value"):
        call_command("encryption_migrate", "testapp.Secret", stdout=out)
    assert (
        f"testapp.Secret.token: 1 row(s) left untouched because a value failed to decrypt: pk {pk}"
        in out.getvalue()
    )
    assert "key id 'gone'" in out.getvalue()
    assert "Every value" not in out.getvalue()


def test_a_missing_fallback_added_later_finishes_the_job(rotated):
    pk = Secret.objects.create(label="late").pk
    write_raw(Secret, pk, "token", under(OLDER, "late!", "old"))
    with override_settings(ENCRYPTION_KEY_FALLBACKS=[KEY_A]), pytest.raises(CommandError):
        call_command("encryption_migrate", stdout=StringIO())
    assert run()["totals"]["values"]["reencrypted"] == 1
    assert_under_new(snapshot()["testapp_secret", pk, "token"], "late!")


# Refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("unset", [None, ""])
def test_refuses_without_an_active_key(unset):
    pks = seed()
    before = snapshot()
    no_key = override_settings(ENCRYPTION_KEY=unset, ENCRYPTION_KEY_FALLBACKS=[KEY_A])
    with no_key, pytest.raises(CommandError, match="ENCRYPTION_KEY is not set") as excinfo:
        call_command("encryption_migrate", stdout=StringIO())
    assert "nothing was changed" in str(excinfo.value)
    assert snapshot() == before
    assert pks


def test_refuses_broken_key_settings():
    broken = override_settings(ENCRYPTION_KEY="too short")
    with broken, pytest.raises(CommandError, match="The key settings are invalid: ENCRYPTION_KEY"):
        call_command("encryption_migrate", stdout=StringIO())


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (["nosuchapp"], {}, "No installed app with label 'nosuchapp'"),
        (["testapp.Nope"], {}, "App 'testapp' has no model 'Nope'"),
        ([], {"database": "nosuchdb"}, "Unknown database alias 'nosuchdb'"),
        ([], {"batch_size": 0}, "--batch-size must be at least 1"),
    ],
)
def test_bad_arguments(rotated, args, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("encryption_migrate", *args, stdout=StringIO(), **options)


def test_filters_pick_apps_and_models(rotated):
    pks = seed()
    summary = run("testapp.Swapped", "testapp.MigrationSource")
    assert list(by_field(summary)) == [
        "testapp.Swapped.token",
        "testapp.MigrationSource.credentials",
    ]
    raw = snapshot()
    assert raw["testapp_secret", pks["secret"][0], "token"] == "legacy token!"
    assert_under_new(raw["testapp_swapped", pks["swapped"][0], "token"], "swapped legacy!")
    # TenantCredential (2), UnmanagedClient, PrivateKey's two envelope fields, and the guard
    # tests' GuardAccount (2), GuardPremiumAccount and GuardVaultItem (2)
    assert len(by_field(run("testapp"))) == 16
    assert_everything_migrated(pks)


def test_no_encrypted_fields(rotated):
    out = StringIO()
    call_command("encryption_migrate", "auth", stdout=out)
    assert out.getvalue().strip().endswith("No encrypted fields found.")
    assert run("auth")["fields"] == []


# Compare-and-swap -------------------------------------------------------------------------------


def swapper(model: type[models.Model], column: str) -> Swapper:
    is_json = isinstance(model._meta.get_field(column), models.JSONField)
    return Swapper(connection, model, column, is_json=is_json)


def test_swap_writes_only_rows_that_still_hold_what_was_read(rotated):
    first, second = (Secret.objects.create(label=str(i)).pk for i in range(2))
    write_raw(Secret, first, "token", "read!")
    write_raw(Secret, second, "token", "changed underneath!")
    new_first, new_second = under(NEW, "read!", "new"), under(NEW, "read!", "new")
    with transaction.atomic():
        conflicts = swapper(Secret, "token").swap(
            [(first, "read!", new_first), (second, "read!", new_second)]
        )
    assert conflicts == {second}
    raw = snapshot()
    assert raw["testapp_secret", first, "token"] == new_first
    assert raw["testapp_secret", second, "token"] == "changed underneath!"


@pytest.mark.parametrize(("stored", "read"), [("secret ", "secret"), ("Secret", "secret")])
def test_swap_compares_case_and_trailing_spaces_exactly(rotated, stored, read):
    # MariaDB's collations, utf8mb4_bin included, ignore trailing spaces and the default ones
    # ignore case: a concurrent write that only changed those must still win.
    pk = Secret.objects.create(label="x").pk
    write_raw(Secret, pk, "token", stored)
    with transaction.atomic():
        assert swapper(Secret, "token").swap([(pk, read, "enc:v1:new:AAAA")]) == {pk}
    assert snapshot()["testapp_secret", pk, "token"] == stored


def test_swap_of_a_json_document(rotated):
    pk = Connection.objects.create(name="c").pk
    write_raw(Connection, pk, "options", {"client_secret": "s!", "client_id": "a"})
    (_, raw), *_ = swapper(Connection, "options").reread([pk])
    new = json.dumps({"client_secret": under(NEW, "s!", "new"), "client_id": "a"})
    stale = json.dumps({"client_secret": "s!", "client_id": "b"})
    with transaction.atomic():
        assert swapper(Connection, "options").swap([(pk, stale, new)]) == {pk}
        assert swapper(Connection, "options").swap([(pk, raw, new)]) == set()
    assert_document(Connection, pk, "options", {"client_secret": "s!", "client_id": "a"})


@pytest.fixture
def meddler(monkeypatch: pytest.MonkeyPatch) -> list[tuple[type[models.Model], Any, str, Any]]:
    """A write queued here lands just before the command's next compare-and-swap on its column,
    as a concurrent writer would between the command's read and its write."""
    queue: list[tuple[type[models.Model], Any, str, Any]] = []
    original = Swapper.swap

    def swap(self: Swapper, updates: Any) -> set[Any]:
        for write in queue:
            model, _pk, column, _value = write
            if (self.table, self.col) == (quote(model._meta.db_table), quote(column)):
                queue.remove(write)
                write_raw(*write)
                break
        return original(self, updates)

    monkeypatch.setattr(Swapper, "swap", swap)
    return queue


def test_a_row_changed_underneath_is_reread_and_keeps_the_new_value(rotated, meddler):
    pks = seed()
    first = pks["secret"][0]
    meddler.append((Secret, first, "token", "written meanwhile!"))
    meddler.append(
        (Connection, pks["connection"][0], "options", {"client_secret": "doc meanwhile!"})
    )
    summary = run("testapp.Secret", "testapp.Connection")
    raw = snapshot()
    assert_under_new(raw["testapp_secret", first, "token"], "written meanwhile!")
    assert_document(
        Connection, pks["connection"][0], "options", {"client_secret": "doc meanwhile!"}
    )
    fields = by_field(summary)
    assert fields["testapp.Secret.token"]["retried"] == 1
    assert fields["testapp.Connection.options"]["retried"] == 1
    assert summary["totals"]["left_over"] == 0


def test_a_row_that_keeps_changing_is_left_and_reported(rotated, meddler):
    pk = Secret.objects.create(label="hot").pk
    write_raw(Secret, pk, "token", "v0")
    for i in range(1, MAX_ATTEMPTS + 1):
        meddler.append((Secret, pk, "token", f"v{i}"))
    summary, message = failing_run("testapp.Secret")
    assert "1 row(s) kept changing" in message
    token = by_field(summary)["testapp.Secret.token"]
    assert (token["left_over"], token["left_over_pks"]) == (1, [pk])
    assert token["retried"] == MAX_ATTEMPTS - 1
    last = f"v{MAX_ATTEMPTS}"
    assert snapshot()["testapp_secret", pk, "token"] == last  # the writer's value, not rolled back
    run("testapp.Secret")
    assert_under_new(snapshot()["testapp_secret", pk, "token"], last)


def test_a_row_deleted_underneath_is_dropped(rotated, monkeypatch):
    pk = Secret.objects.create(label="gone").pk
    keep = Secret.objects.create(label="kept").pk
    for row in (pk, keep):
        write_raw(Secret, row, "token", "legacy!")
    original = Swapper.swap

    def swap(self: Swapper, updates: Any) -> set[Any]:
        Secret.objects.filter(pk=pk).delete()
        return original(self, updates)

    monkeypatch.setattr(Swapper, "swap", swap)
    summary = run("testapp.Secret")
    assert summary["totals"]["left_over"] == 0
    assert_under_new(snapshot()["testapp_secret", keep, "token"], "legacy!")


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (KeyboardInterrupt(), "Interrupted while migrating testapp.Secret.token, after 4 rows"),
        (DatabaseError("holds 'b legacy!'"), "The database failed (DatabaseError) while"),
    ],
)
def test_a_failure_mid_batch_rolls_that_batch_back(rotated, monkeypatch, error, message):
    pks = [Secret.objects.create(label=str(i)).pk for i in range(4)]
    for pk, plaintext in zip(
        pks, ["a legacy!", "a legacy!", "b legacy!", "b legacy!"], strict=True
    ):
        write_raw(Secret, pk, "token", plaintext)
    original = Swapper.swap
    calls = []

    def swap(self: Swapper, updates: Any) -> set[Any]:
        conflicts = original(self, updates)  # written, inside the batch's transaction...
        calls.append(updates)
        if len(calls) == 2:
            raise error  # ...which this undoes
        return conflicts

    monkeypatch.setattr(Swapper, "swap", swap)
    with pytest.raises(CommandError, match=re.escape(message)) as excinfo:
        call_command("encryption_migrate", "testapp.Secret", batch_size=2, stdout=StringIO())
    assert "rerun to finish" in str(excinfo.value)
    assert "legacy!" not in str(excinfo.value)
    raw = snapshot()
    assert_under_new(raw["testapp_secret", pks[0], "token"], "a legacy!")
    assert_under_new(raw["testapp_secret", pks[1], "token"], "a legacy!")
    assert [raw["testapp_secret", pk, "token"] for pk in pks[2:]] == ["b legacy!", "b legacy!"]
    monkeypatch.setattr(Swapper, "swap", original)
    run("testapp.Secret")
    assert_under_new(snapshot()["testapp_secret", pks[3], "token"], "b legacy!")


# Concurrency: real writers on their own connections ---------------------------------------------


@needs_server
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_are_never_rolled_back(rotated, monkeypatch):
    rows = 60
    pks = []
    for i in range(rows):
        pk = Secret.objects.create(label=str(i)).pk
        write_raw(Secret, pk, "token", under(OLD, f"seed {i}!") if i % 2 else f"seed {i}!")
        pks.append(pk)
    # Widen the gap between the command's read and its write, where a writer can get in.
    original = Swapper.swap

    def slow_swap(self: Swapper, updates: Any) -> set[Any]:
        time.sleep(0.02)
        return original(self, updates)

    monkeypatch.setattr(Swapper, "swap", slow_swap)
    writers = 3
    last: dict[Any, str] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        mine = pks[n::writers]  # each row has one writer, so its last value is well defined
        rng = random.Random(n)
        try:
            i = 0
            while not stop.is_set():
                pk = rng.choice(mine)
                value = f"writer {n} write {i}!"
                if i % 2:
                    Secret.objects.filter(pk=pk).update(token=value)  # under the active key
                else:
                    write_raw(Secret, pk, "token", value)  # legacy plaintext
                last[pk] = value
                i += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.1)
        retried = 0
        for _attempt in range(3):
            out = StringIO()
            try:
                call_command(
                    "encryption_migrate", "testapp.Secret", batch_size=5, format="json", stdout=out
                )
            except CommandError:  # rows that kept changing: a rerun picks them up
                continue
            finally:
                retried += sum(f["retried"] for f in json.loads(out.getvalue())["fields"])
            break
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert retried > 0  # the writers did get in the way

    ring = KeyRing.from_keys(NEW, [OLD])
    raw = snapshot()
    for i, pk in enumerate(pks):
        expected = last.get(pk, f"seed {i}!")
        assert decrypt_with(ring, raw["testapp_secret", pk, "token"]) == expected, pk
    # The writers stopped after the pass above; what they left as plaintext goes now.
    run("testapp.Secret", batch_size=5)
    raw = snapshot()
    for i, pk in enumerate(pks):
        assert_under_new(raw["testapp_secret", pk, "token"], last.get(pk, f"seed {i}!"))


# Crash safety: SIGKILL in the middle of a run ---------------------------------------------------

CHILD = r"""
import json, os, sys, time
config = json.loads(os.environ["MIGRATE_CHILD"])
import django
from django.conf import settings
import tests.settings as base
values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
values.update(DATABASES={"default": config["database"]}, **config["keys"])
settings.configure(**values)
django.setup()
from django.core.management import call_command
from django.db import connection
step = config["step"]
if step == "setup":
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO testapp_secret (label, token, notes) VALUES (%s, %s, %s)",
            config["rows"],
        )
elif step == "migrate":
    from authhero_encrypt.migrate.swap import Swapper
    if config["slow"]:
        original = Swapper.swap
        def swap(self, updates):
            conflicts = original(self, updates)
            time.sleep(0.05)  # inside the batch's transaction: a kill here must roll back
            return conflicts
        Swapper.swap = swap
    call_command("encryption_migrate", "testapp.Secret", batch_size=10, verbosity=2)
elif step == "dump":
    with connection.cursor() as cursor:
        cursor.execute("SELECT label, token, notes FROM testapp_secret ORDER BY id")
        print(json.dumps(cursor.fetchall()))
"""


def child(config: dict[str, Any], **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "MIGRATE_CHILD": json.dumps(config)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env, text=True, **kwargs)


def finish(config: dict[str, Any]) -> str:
    proc = child(config, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


@pytest.mark.django_db(transaction=True)
def test_killed_run_leaves_nothing_half_written_and_a_rerun_finishes(tmp_path):
    if connection.vendor == "sqlite":
        database: dict[str, Any] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "crash.sqlite3"),
        }
        setup = True
    else:
        settings_dict = connection.settings_dict
        database = {
            key: settings_dict[key]
            for key in ("ENGINE", "NAME", "HOST", "PORT", "USER", "PASSWORD", "OPTIONS")
        }
        setup = False  # the test database already has the tables
    expected = [(f"row {i}", f"token {i}!", f"notes {i}\n!") for i in range(300)]
    stored = [
        (
            label,
            token if i % 3 else under(OLDER, token, "old"),
            notes if i % 2 else under(OLD, notes),
        )
        for i, (label, token, notes) in enumerate(expected)
    ]
    config: dict[str, Any] = {"database": database, "keys": ROTATED, "rows": stored, "slow": True}
    if setup:
        finish({**config, "step": "setup"})
    else:
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO testapp_secret (label, token, notes) VALUES (%s, %s, %s)", stored
            )

    proc = child({**config, "step": "migrate"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    batches = 0
    for line in proc.stderr:
        if line.startswith("testapp.Secret.token: "):
            batches += 1
            if batches == 7:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    ring = KeyRing.from_keys(NEW, [OLD, OLDER])
    halfway = json.loads(finish({**config, "step": "dump"}))
    migrated = 0
    for (label, token, notes), row in zip(expected, halfway, strict=True):
        # Every value is either still what it was or fully migrated: never lost, never garbled.
        assert row[0] == label
        assert decrypt_with(ring, row[1]) == token
        assert decrypt_with(ring, row[2]) == notes
        migrated += row[1].startswith("enc:v1:new:")
    assert 0 < migrated < len(expected)  # the kill did land mid-run

    log = finish({**config, "step": "migrate", "slow": False})
    assert "Every value is under the active key." in log
    done = json.loads(finish({**config, "step": "dump"}))
    for (label, token, notes), row in zip(expected, done, strict=True):
        assert row[0] == label
        assert_under_new(row[1], token)
        assert_under_new(row[2], notes)


# Composite primary keys, unmanaged models ------------------------------------------------------


def insert_raw(table: str, **columns: Any) -> None:
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    values = [json.dumps(v) if isinstance(v, dict) else v for v in columns.values()]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})", values)


def read_raw(table: str, column: str, where: str, params: list[Any]) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote(column)} FROM {quote(table)} WHERE {where}", params)
        return cursor.fetchone()[0]


TENANT_ROWS = [("t1", "a"), ("t1", "b"), ("t1", "c"), ("t2", "a"), ("t2", "b")]


@pytest.mark.parametrize("row_values", [True, False])
def test_composite_primary_keys_are_paged_through_and_named(rotated, monkeypatch, row_values):
    from tests.testapp.models import TenantCredential

    if not row_values:  # the expanded OR form that backends without row values get
        monkeypatch.setattr(PrimaryKey, "ROW_VALUE_VENDORS", frozenset())
    table = TenantCredential._meta.db_table
    for tenant, name in TENANT_ROWS:
        broken = (tenant, name) == ("t1", "c")
        insert_raw(
            table,
            tenant=tenant,
            name=name,
            secret=tampered(under(NEW, "x", "new")) if broken else f"{tenant}/{name} legacy!",
            options={"client_secret": under(OLD, f"{tenant}/{name} json!")},
        )
    summary, message = failing_run("testapp.TenantCredential", batch_size=2)
    fields = by_field(summary)
    secret = fields["testapp.TenantCredential.secret"]
    assert secret["rows"] == 5
    assert secret["values"]["encrypted"] == 4
    assert [(f["pk"], f["path"]) for f in secret["failed"]] == [(["t1", "c"], None)]
    assert fields["testapp.TenantCredential.options"]["values"]["reencrypted"] == 5
    assert "1 value(s) failed to decrypt" in message
    for tenant, name in TENANT_ROWS:
        where, params = "tenant = %s AND name = %s", [tenant, name]
        stored = read_raw(table, "secret", where, params)
        if (tenant, name) != ("t1", "c"):
            assert_under_new(stored, f"{tenant}/{name} legacy!")
        document = load_json(read_raw(table, "options", where, params))
        assert_under_new(document["client_secret"], f"{tenant}/{name} json!")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("encryption_migrate", "testapp.TenantCredential", stdout=out)
    assert "pk ('t1', 'c')" in out.getvalue()


def test_a_whole_app_with_a_composite_key_model_is_migrated(rotated):
    """Before: the composite-key model stopped the run with a ValueError and no summary."""
    from tests.testapp.models import TenantCredential

    insert_raw(TenantCredential._meta.db_table, tenant="t", name="n", secret="legacy!")
    pk = Secret.objects.create(label="x").pk
    write_raw(Secret, pk, "token", "legacy too!")
    summary = run("testapp")
    assert by_field(summary)["testapp.TenantCredential.secret"]["values"]["encrypted"] == 1
    assert_under_new(snapshot()["testapp_secret", pk, "token"], "legacy too!")


def test_unmanaged_models_with_a_table_are_migrated(rotated):
    insert_raw("testapp_unmanaged_client", id=1, client_secret="legacy secret!")
    insert_raw("testapp_unmanaged_client", id=2, client_secret=under(OLD, "old!"))
    summary = run("testapp.UnmanagedClient")
    values = by_field(summary)["testapp.UnmanagedClient.client_secret"]["values"]
    assert (values["encrypted"], values["reencrypted"]) == (1, 1)
    stored = read_raw("testapp_unmanaged_client", "client_secret", "id = %s", [1])
    assert_under_new(stored, "legacy secret!")
    assert summary["excluded"] == []


def test_unmanaged_models_without_a_table_are_named_as_left_out(rotated):
    out = StringIO()
    call_command("encryption_migrate", "testapp.UnmanagedGhost", stdout=out, stderr=StringIO())
    assert (
        "Left out testapp.UnmanagedGhost: unmanaged, and its table 'testapp_no_such_table' does "
        "not exist in database 'default'." in out.getvalue()
    )
    assert run("testapp.UnmanagedGhost")["excluded"] == [
        {
            "model": "testapp.UnmanagedGhost",
            "reason": "unmanaged, and its table 'testapp_no_such_table' does not exist in "
            "database 'default'",
        }
    ]


# JSON documents: only the secret leaves change --------------------------------------------------

PRECISE = (
    '{"zeta": 1, "client_secret": "legacy!", "pi": 3.141592653589793238462643383279, '
    '"big": 1e400, "small": -1.5E-320, "ints": [12345678901234567890123, 2.50, -0], '
    '"configuration": {"client_secret": "deep!", "ratio": 0.1000000000000000055511151231257827}, '
    '"alpha": "\\u00e9t\\u00e9"}'
)


def stored_text(model: type[models.Model], pk: Any, column: str) -> str:
    """A JSON column as the database hands back its text (PostgreSQL's jsonb as ``::text``)."""
    col = quote(column) + ("::text" if connection.vendor == "postgresql" else "")
    with connection.cursor() as cursor:
        table = quote(model._meta.db_table)
        cursor.execute(f"SELECT {col} FROM {table} WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def write_text(model: type[models.Model], pk: Any, column: str, text: str) -> None:
    mark = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {quote(column)} = {mark} WHERE id = %s", [text, pk])


def without_secrets(text: str) -> Any:
    """The document with every number as its text and the secret leaves blanked."""
    document = loads_exact(text)
    trie = Connection._meta.get_field("options").path_trie  # type: ignore[attr-defined]
    return trie.transform(document, lambda _path, _value: "<secret>")


@pytest.mark.parametrize("batch_size", [500, 2])
def test_non_secret_json_values_come_back_as_they_were(rotated, batch_size):
    """Numbers of any precision or range and the key order (where the backend keeps it) are
    untouched; before, PostgreSQL lost digits and SQLite/MariaDB refused 1e400 (Infinity),
    which also aborted the rest of the table."""
    pks = [Connection.objects.create(name=str(i)).pk for i in range(6)]
    for pk in pks:
        write_text(Connection, pk, "options", PRECISE)
    before = {pk: stored_text(Connection, pk, "options") for pk in pks}
    summary = run("testapp.Connection", batch_size=batch_size)
    for pk in pks:
        after = stored_text(Connection, pk, "options")
        assert list(json.loads(after)) == list(json.loads(before[pk]))  # key order
        assert dumps_exact(without_secrets(after)) == dumps_exact(without_secrets(before[pk]))
        document = json.loads(after)
        assert_under_new(document["client_secret"], "legacy!")
        assert_under_new(document["configuration"]["client_secret"], "deep!")
    if connection.vendor != "postgresql":  # jsonb writes numbers its own way
        assert "3.141592653589793238462643383279" in after
        assert "1e400" in after
    options = by_field(summary)["testapp.Connection.options"]
    assert options["values"]["encrypted"] == 12
    assert options["failed_rows"] == options["write_failed"] == 0


def test_a_row_the_database_refuses_is_named_and_the_rest_goes_on(rotated, monkeypatch):
    pks = [Secret.objects.create(label=str(i)).pk for i in range(6)]
    for pk in pks:
        write_raw(Secret, pk, "token", f"legacy {pk}!")
    refused = pks[2]
    original = Swapper.swap

    def swap(self: Swapper, updates: Any) -> set[Any]:
        conflicts = original(self, updates)
        if any(u[0] == refused for u in updates):
            # A real refusal by the database, inside the batch's transaction: a duplicate key.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {quote('testapp_secret')} (id, label) VALUES (%s, 'dup')",
                    [pks[0]],
                )
        return conflicts

    monkeypatch.setattr(Swapper, "swap", swap)
    summary, message = failing_run("testapp.Secret", batch_size=4)
    token = by_field(summary)["testapp.Secret.token"]
    assert token["write_failed"] == 1
    assert token["write_failures"] == [
        {"pk": refused, "reason": "the database refused the new value (IntegrityError)"}
    ]
    assert token["values"]["encrypted"] == 5
    assert "1 row(s) could not be written" in message
    raw = snapshot()
    for pk in pks:
        if pk == refused:
            assert raw["testapp_secret", pk, "token"] == f"legacy {pk}!"
        else:
            assert_under_new(raw["testapp_secret", pk, "token"], f"legacy {pk}!")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("encryption_migrate", "testapp.Secret", stdout=out)
    assert f"could not be written, the database refused the new value: pk {refused}" in (
        out.getvalue()
    )
    monkeypatch.setattr(Swapper, "swap", original)
    run("testapp.Secret")
    assert_under_new(snapshot()["testapp_secret", refused, "token"], f"legacy {refused}!")


# Key ids in the output -------------------------------------------------------------------------

LEAK = "Str0ng-Passw0rd_LEAKME"


@pytest.mark.parametrize("output", ["text", "json"])
def test_malformed_key_ids_never_reach_the_output(rotated, output):
    pk = Secret.objects.create(label="x").pk
    write_raw(Secret, pk, "token", f"enc:v1:{LEAK}:x")
    cpk = Connection.objects.create(name="c").pk
    write_raw(Connection, cpk, "options", {"client_secret": f"enc:v1:{LEAK}:{'A' * 36}"})
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "encryption_migrate",
            "testapp.Secret",
            "testapp.Connection",
            format=output,
            stdout=out,
            stderr=out,
        )
    assert "LEAKME" not in out.getvalue() + str(excinfo.value)
    assert f"pk {pk}" in out.getvalue() or f'"pk": {pk}' in out.getvalue()
