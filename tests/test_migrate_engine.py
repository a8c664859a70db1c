"""``authhero_encrypt.migrate``: ``migrate()`` called from Python, without ``call_command``.

The command's own behaviour is in ``test_encryption_migrate.py``; these tests hold the engine to
what a deploy script relies on: the stored values changed (read back raw), a report object,
nothing printed, and a clear exception for every bad argument.
"""

from __future__ import annotations

import base64
import json
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import override_settings

from authhero_encrypt.crypto import decrypt_with, encrypt_with
from authhero_encrypt.exceptions import InvalidKeyError, MissingKeyError
from authhero_encrypt.keys import Key, KeyRing
from authhero_encrypt.migrate import (
    MigrationInterrupted,
    MigrationReport,
    MigrationStopped,
    migrate,
)
from authhero_encrypt.migrate.render import render_json
from authhero_encrypt.migrate.swap import Swapper
from tests.keys import KEY_A, KEY_B
from tests.test_status_engine import documented_call, signature_text
from tests.testapp.models import Secret, Swapped

pytestmark = pytest.mark.django_db

NEW = Key.from_secret("new", base64.b64decode(KEY_B))
STRANGER = Key.from_secret(None, bytes(range(96, 128)))
ROTATED = override_settings(
    ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_ID="new", ENCRYPTION_KEY_FALLBACKS=[KEY_A]
)


def write_raw(pk: int, token: str | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_secret SET token = %s WHERE id = %s", [token, pk])


def read_raw(pk: int) -> Any:
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM testapp_secret WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def legacy() -> int:
    pk = Secret.objects.create(label="x").pk
    write_raw(pk, "legacy token!")
    return pk


@ROTATED
def test_migrate_rewrites_and_reports(legacy: int, capsys: Any) -> None:
    report = migrate(["testapp.Secret"], using="default")
    assert isinstance(report, MigrationReport)
    stored = read_raw(legacy)
    assert stored.startswith("enc:v1:new:")
    assert decrypt_with(KeyRing.from_keys(NEW, ()), stored) == "legacy token!"
    assert report.ok
    assert report.problems() == []
    assert (report.totals()["written"], report.totals()["values"]["encrypted"]) == (1, 1)
    assert [f.label for f in report.fields] == ["testapp.Secret.token", "testapp.Secret.notes"]
    assert capsys.readouterr() == ("", "")


@ROTATED
def test_dry_run_writes_nothing(legacy: int) -> None:
    report = migrate(["testapp.Secret"], dry_run=True)
    assert read_raw(legacy) == "legacy token!"
    assert report.dry_run
    assert report.totals()["written"] == 1


@ROTATED
def test_a_value_that_fails_is_in_the_report_not_raised(legacy: int) -> None:
    unreadable = encrypt_with(STRANGER, "s")
    write_raw(legacy, unreadable)
    report = migrate(["testapp.Secret"])
    assert read_raw(legacy) == unreadable
    assert not report.ok
    assert "1 value(s) failed to decrypt" in report.problems()[0]


@ROTATED
def test_the_report_is_what_the_command_prints(legacy: int) -> None:
    report = migrate(["testapp.Secret"], dry_run=True)
    out = StringIO()
    call_command("encryption_migrate", "testapp.Secret", dry_run=True, format="json", stdout=out)
    assert out.getvalue() == render_json(report) + "\n"
    assert json.loads(out.getvalue()) == json.loads(json.dumps(report.as_json(), default=str))


@ROTATED
def test_progress_and_log(legacy: int, monkeypatch: Any) -> None:
    told: list[tuple[str, int, list[int]]] = []

    class Sink:
        def __init__(self, label: str, total: int) -> None:
            told.append((label, total, []))

        def advance(self, rows: int, last_pk: Any) -> None:
            told[-1][2].append(rows)

        def finish(self, last_pk: Any) -> None:
            told[-1][2].append(-1)

    logged: list[str] = []
    monkeypatch.setattr(Swapped._meta, "db_table", "testapp_not_migrated")
    report = migrate(["testapp.Secret", "testapp.Swapped"], progress=Sink, log=logged.append)
    assert told == [("testapp.Secret.token", 1, [1, -1]), ("testapp.Secret.notes", 1, [1, -1])]
    assert logged == report.skipped
    assert logged == [
        "Skipping testapp.Swapped: its table 'testapp_not_migrated' does not exist in database "
        "'default' (run migrate first)."
    ]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1, not 0"),
        ({"using": "elsewhere"}, ValueError, "Unknown database alias 'elsewhere'"),
        ({"targets": ["nope"]}, LookupError, "No installed app with label 'nope'"),
    ],
)
@ROTATED
def test_bad_arguments(arguments: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        migrate(**arguments)


def test_no_key_to_migrate_to() -> None:
    with override_settings(ENCRYPTION_KEY=None), pytest.raises(MissingKeyError, match="not set"):
        migrate()
    broken = override_settings(ENCRYPTION_KEY="too short")
    with broken, pytest.raises(InvalidKeyError, match="The key settings are invalid"):
        migrate()


@ROTATED
@pytest.mark.parametrize(
    ("error", "stopped", "message"),
    [
        (OperationalError("gone"), MigrationStopped, "The database failed (OperationalError)"),
        (KeyboardInterrupt(), MigrationInterrupted, "Interrupted"),
    ],
)
def test_a_run_that_stops_part_way(
    legacy: int, monkeypatch: Any, error: BaseException, stopped: type[BaseException], message: str
) -> None:
    def swap(self: Swapper, updates: Any) -> set[Any]:
        raise error

    monkeypatch.setattr(Swapper, "swap", swap)
    with pytest.raises(
        stopped, match=re.escape(f"{message} while migrating testapp.Secret.token")
    ) as caught:
        migrate(["testapp.Secret"])
    assert caught.value.__cause__ is error
    assert "gone" not in str(caught.value)  # the driver's text may quote values
    assert [f.rows for f in caught.value.report.fields] == [1]  # type: ignore[attr-defined]
    assert read_raw(legacy) == "legacy token!"
    # Ctrl-C stays a KeyboardInterrupt for a script; a database failure is an Exception.
    assert issubclass(stopped, KeyboardInterrupt) == isinstance(error, KeyboardInterrupt)


def test_the_documented_signature_is_the_real_one() -> None:
    assert documented_call("key_rotation.md", "migrate") == signature_text(migrate)
