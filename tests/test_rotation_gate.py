"""The exit statuses that gate a key rotation, on every database.

``encryption_status --check`` fails on values no configured key reads when their key ids show
it; ``encryption_status --require-active-key`` fails while any value is not under the active key;
``encryption_migrate`` fails when a recount after the run finds values it did not bring under the
active key, and ``encryption_migrate --check`` when it would write anything.
"""

from __future__ import annotations

import base64
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from authhero_encrypt.crypto import encrypt_with
from authhero_encrypt.keys import Key
from authhero_encrypt.migrate import engine
from tests.keys import KEY_A, KEY_B
from tests.testapp.models import Secret

pytestmark = pytest.mark.django_db

OLD = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "2025-01", "ENCRYPTION_KEY_FALLBACKS": []}
BOTH = {
    "ENCRYPTION_KEY": KEY_B,
    "ENCRYPTION_KEY_ID": "2026-06",
    "ENCRYPTION_KEY_FALLBACKS": [f"2025-01:{KEY_A}"],
}
NEW_ONLY = {**BOTH, "ENCRYPTION_KEY_FALLBACKS": []}
# The active key without an id, the old one as an id-less fallback: nothing in the stored
# text tells their values apart.
UNTAGGED_BOTH = {"ENCRYPTION_KEY": KEY_B, "ENCRYPTION_KEY_ID": None}
UNTAGGED_BOTH["ENCRYPTION_KEY_FALLBACKS"] = [KEY_A]
UNTAGGED_NEW_ONLY = {"ENCRYPTION_KEY": KEY_B, "ENCRYPTION_KEY_ID": None}
UNTAGGED_NEW_ONLY["ENCRYPTION_KEY_FALLBACKS"] = []


def status(*args: str, **options: Any) -> tuple[int, str]:
    """The exit status and stdout of ``encryption_status testapp.Secret``."""
    out = StringIO()
    try:
        call_command("encryption_status", "testapp.Secret", *args, stdout=out, **options)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def migrate(**options: Any) -> tuple[int, str, str]:
    """The exit status, stdout and the error of ``encryption_migrate testapp.Secret``."""
    out = StringIO()
    try:
        call_command(
            "encryption_migrate", "testapp.Secret", stdout=out, stderr=StringIO(), **options
        )
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), ""
    except CommandError as exc:
        return 1, out.getvalue(), str(exc)
    return 0, out.getvalue(), ""


def raw_tokens() -> list[str]:
    table = connection.ops.quote_name(Secret._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {table} ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def under_old() -> None:
    with override_settings(**OLD):
        for n in range(3):
            Secret.objects.create(label=f"s{n}", token=f"secret {n}")


def test_check_fails_without_verify_when_no_configured_key_reads_the_values(under_old):
    # Row 1: the new key active with no fallback. The key ids show that nothing can read
    # the values; --check said 0 while printing so.
    with override_settings(**NEW_ONLY):
        code, out = status(check=True)
        assert "3 encrypted value(s) cannot be read with the configured keys" in out
        assert code == 1
        code, out = status(check=True, format="json")
        report = json.loads(out)
        assert report["totals"]["unreadable"] == 3
        assert report["check"] == {"ok": False, "on_active_key": False, "indexes_ok": True}
    with override_settings(**BOTH):
        assert status(check=True)[0] == 0  # the fallback reads them: nothing lost yet


def test_require_active_key_holds_until_every_value_is_under_the_new_key(under_old):
    # Row 2: with the old key as fallback everything reads, so --check passes, but dropping
    # the old key would lose the data: the gate says so, and passes once migrated.
    with override_settings(**BOTH):
        assert status(check=True)[0] == 0
        assert status(check=True, verify=True)[0] == 0
        code, out = status(require_active_key=True)
        assert code == 1
        assert "3 encrypted value(s) are under another key than the active one" in out
        report = json.loads(status(require_active_key=True, format="json")[1])
        assert report["totals"]["not_under_active_key"] == {"other_keys": 3, "unattributed": 0}
        assert report["check"] == {"ok": True, "on_active_key": False, "indexes_ok": True}
        assert migrate()[0] == 0
        assert status(require_active_key=True)[0] == 0
    with override_settings(**NEW_ONLY):
        assert status(require_active_key=True)[0] == 0


def test_require_active_key_fails_on_plaintext_and_without_a_key():
    with override_settings(ENCRYPTION_KEY=None, ENCRYPTION_KEY_ID=None):
        Secret.objects.create(label="plain", token="still plaintext")  # no key: stored as is
        assert status(require_active_key=True)[0] == 1
    with override_settings(**NEW_ONLY):
        assert status(require_active_key=True)[0] == 1  # plaintext
        assert migrate()[0] == 0
        assert status(require_active_key=True)[0] == 0


def test_untagged_values_need_verify_while_an_untagged_fallback_could_have_written_them():
    old = Key.from_secret(None, base64.b64decode(KEY_A))
    Secret.objects.create(label="old", token="x")
    table = connection.ops.quote_name(Secret._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET token = %s",
            [encrypt_with(old, "written by the old key")],
        )
    with override_settings(**UNTAGGED_BOTH):
        code, out = status(require_active_key=True)
        assert code == 1
        assert "only --verify tells whether the active key opens them" in out
        # --verify opens it, with the fallback: under the old key.
        assert status(require_active_key=True, verify=True)[0] == 1
        assert migrate()[0] == 0  # re-encrypted with the active key
        assert status(require_active_key=True)[0] == 1  # still unattributed by prefix
        assert status(require_active_key=True, verify=True)[0] == 0
    with override_settings(**UNTAGGED_NEW_ONLY):
        # No other key it can be under: prefixes tell.
        assert status(require_active_key=True)[0] == 0


def test_migrate_check_exits_1_when_it_would_write(under_old):
    before = raw_tokens()
    with override_settings(**BOTH):
        code, out, _ = migrate(dry_run=True, check=True)
        assert code == 1
        assert "Dry run: nothing was written" in out
        assert migrate(check=True)[0] == 1  # --check implies --dry-run
        assert raw_tokens() == before
        assert migrate(dry_run=True)[0] == 0  # without --check a dry run only reports
        assert migrate()[0] == 0
        assert migrate(dry_run=True, check=True)[0] == 0  # nothing left to write


def test_migrate_fails_when_a_writer_with_the_old_key_leaves_values_behind(under_old, monkeypatch):
    # Row 2: a process still configured with the old key writes while the run goes on. The
    # run never sees those values; the recount after it does.
    original = engine.FieldMigrator.run

    def run_and_meddle(self: Any, sink: Any) -> Any:
        result = original(self, sink)
        old = Key.from_secret("2025-01", base64.b64decode(KEY_A))
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(Secret._meta.db_table)
            cursor.execute(
                f"UPDATE {table} SET token = %s WHERE label IN ('s0', 's1')",
                [encrypt_with(old, "late", prefix="enc:v1:2025-01:")],
            )
        return result

    with override_settings(**BOTH):
        monkeypatch.setattr(engine.FieldMigrator, "run", run_and_meddle)
        code, out, error = migrate()
        assert code == 1
        assert "a recount after the run finds 2 value(s) not under the active key" in error
        assert "2 under other keys" in error
        assert "Every value is under the active key" not in out
        monkeypatch.setattr(engine.FieldMigrator, "run", original)
        report = json.loads(migrate(format="json")[1])
        assert report["remaining"] == {"plaintext": 0, "other_keys": 0, "unattributed": 0}
        assert status(require_active_key=True)[0] == 0
