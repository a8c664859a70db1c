"""``encryption_migrate`` on envelope columns, proven against the raw column on every database.

The rotation is from ring key ``k1`` (KEY_A) to ``k2`` (KEY_B, ``k1`` kept as a fallback). An
``env:v1`` value under ``k1`` must have only its data key rewrapped: the payload field of the
stored text is compared byte for byte before and after. The aws-kms rotations (local to KMS,
one KMS key to another) are in ``tests/test_envelope_kms.py``, beside the KMS server fixture.
"""

from __future__ import annotations

import base64
import contextlib
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings

from authhero_encrypt.crypto import encrypt_with
from authhero_encrypt.envelope.config import reset_envelope
from authhero_encrypt.envelope.format import parse
from authhero_encrypt.keys import Key
from authhero_encrypt.migrate import migrate
from authhero_encrypt.migrate.swap import Swapper
from tests.keys import KEY_A, KEY_C, RING_K1, RING_K2, SAMPLE_PEM
from tests.testapp.models import PrivateKey

pytestmark = pytest.mark.django_db

OLD = RING_K1
NEW = RING_K2
STRANGER = {"ENCRYPTION_KEY": KEY_C, "ENCRYPTION_KEY_ID": "k9", "ENCRYPTION_KEY_FALLBACKS": []}
TABLE = PrivateKey._meta.db_table


def raw(pk: Any, column: str = "pem") -> Any:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn(column)} FROM {qn(TABLE)} WHERE {qn('id')} = %s", [pk])
        return cursor.fetchone()[0]


def write_raw(pk: Any, value: Any, column: str = "pem") -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(TABLE)} SET {qn(column)} = %s WHERE {qn('id')} = %s", [value, pk]
        )


def payload(stored: str) -> str:
    return stored.rsplit(":", 1)[1]


def seed() -> dict[str, Any]:
    """One row of each kind; the stored texts written under OLD (or STRANGER) settings."""
    with override_settings(**OLD):
        old = PrivateKey.objects.create(name="old", pem=SAMPLE_PEM, bundle="bundle!")
    with override_settings(**NEW):
        current = PrivateKey.objects.create(name="current", pem="current pem!")
    with override_settings(**STRANGER):
        lost = PrivateKey.objects.create(name="lost", pem="lost pem!")
    legacy = PrivateKey.objects.create(name="legacy", pem=None)
    write_raw(legacy.pk, SAMPLE_PEM)
    write_raw(legacy.pk, "", "bundle")
    enc = PrivateKey.objects.create(name="enc", pem=None)
    key_a = Key.from_secret("k1", base64.b64decode(KEY_A))
    write_raw(enc.pk, encrypt_with(key_a, "was enc:v1!", prefix="enc:v1:k1:"))
    null = PrivateKey.objects.create(name="null", pem=None, bundle=None)
    reset_envelope()
    pks = {"old": old.pk, "current": current.pk, "lost": lost.pk, "legacy": legacy.pk}
    pks.update(enc=enc.pk, null=null.pk)
    return {"pks": pks, "before": {name: raw(pk) for name, pk in pks.items()}}


def run_json(*args: str, **options: Any) -> dict[str, Any]:
    out = StringIO()
    with contextlib.suppress(CommandError):
        call_command(
            "encryption_migrate", *args, format="json", stdout=out, stderr=StringIO(), **options
        )
    return json.loads(out.getvalue())


def test_rotation_rewraps_seals_and_leaves_the_rest():
    data = seed()
    pks, before = data["pks"], data["before"]
    with override_settings(**NEW):
        summary = run_json("testapp.PrivateKey")
    pem = next(f for f in summary["fields"] if f["field"] == "pem")
    assert pem["format"] == "env:v1"
    assert pem["values"] == {
        "encrypted": 1,
        "reencrypted": 1,
        "rewrapped": 1,
        "unchanged": 1,
        "failed": 1,
        "skipped": 0,
    }
    assert summary["envelope"] == {"provider": "local", "key_id": "k2"}
    # Rewrapped: only the KEK fields changed, the sealed payload is byte for byte the old one.
    moved = raw(pks["old"])
    assert (parse(moved).provider, parse(moved).key_id) == ("local", "k2")
    assert parse(before["old"]).key_id == "k1"
    assert payload(moved) == payload(before["old"])
    assert parse(moved).wrapped != parse(before["old"]).wrapped
    # Already under the active KEK, and the undecryptable one: byte for byte as they were.
    assert raw(pks["current"]) == before["current"]
    assert raw(pks["lost"]) == before["lost"]
    assert raw(pks["null"]) is None
    # Legacy plaintext and enc:v1 values are sealed into env:v1 under the active KEK.
    for name in ("legacy", "enc"):
        assert parse(raw(pks[name])).key_id == "k2"
    # The failure names the row and never the value.
    assert [f["pk"] for f in pem["failed"]] == [pks["lost"]]
    assert "k9" in pem["failed"][0]["reason"]
    assert "lost pem" not in json.dumps(summary)
    # Everything reads back with the new key alone (the old one is no longer needed).
    with override_settings(**{**NEW, "ENCRYPTION_KEY_FALLBACKS": []}):
        reset_envelope()
        values = dict(PrivateKey.objects.exclude(pk=pks["lost"]).values_list("name", "pem"))
    assert values == {
        "old": SAMPLE_PEM,
        "current": "current pem!",
        "legacy": SAMPLE_PEM,
        "enc": "was enc:v1!",
        "null": None,
    }
    bundle = next(f for f in summary["fields"] if f["field"] == "bundle")
    assert (bundle["values"]["rewrapped"], bundle["values"]["encrypted"]) == (1, 1)  # "" too


def test_a_second_run_changes_nothing():
    data = seed()
    with override_settings(**NEW):
        run_json("testapp.PrivateKey")
        after = {name: raw(pk) for name, pk in data["pks"].items()}
        again = run_json("testapp.PrivateKey")
    assert {name: raw(pk) for name, pk in data["pks"].items()} == after
    assert again["totals"]["written"] == 0
    assert again["totals"]["values"]["unchanged"] == 6  # pem: 4 (and one failed), bundle: 2


def test_dry_run_decides_everything_and_writes_nothing():
    data = seed()
    with override_settings(**NEW):
        summary = run_json("testapp.PrivateKey", dry_run=True)
    assert {name: raw(pk) for name, pk in data["pks"].items()} == data["before"]
    assert summary["dry_run"] is True
    assert summary["totals"]["values"]["rewrapped"] == 2
    assert summary["totals"]["written"] == 5


def test_text_report_has_a_rewrapped_column_and_names_the_failed_row():
    data = seed()
    out = StringIO()
    with override_settings(**NEW), pytest.raises(CommandError, match="1 value"):
        call_command("encryption_migrate", "testapp.PrivateKey", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "Envelope fields: data keys wrapped by local key k2." in text
    header = next(line for line in text.splitlines() if line.startswith("Field / path"))
    columns = ["Written", "Encrypted", "Re-encrypted", "Rewrapped", "Unchanged", "Failed"]
    assert header.split()[4:10] == columns
    assert "2 rewrapped" in text
    assert f"pk {data['pks']['lost']}" in text
    assert "lost pem" not in text
    assert data["before"]["lost"] not in text


def test_enc_v1_only_report_keeps_its_columns():
    out = StringIO()
    with override_settings(**NEW):
        call_command("encryption_migrate", "testapp.Secret", stdout=out, stderr=StringIO())
    assert "rewrapped" not in out.getvalue().lower()
    assert "Envelope" not in out.getvalue()


def test_a_row_changed_underneath_is_reread_and_keeps_the_new_value(monkeypatch):
    data = seed()
    pk = data["pks"]["old"]
    original = Swapper.swap
    meddled: list[Any] = []

    def swap(self: Swapper, updates: Any) -> set[Any]:
        if not meddled and self.table == connection.ops.quote_name(TABLE):
            meddled.append(pk)
            write_raw(pk, "written meanwhile!")
        return original(self, updates)

    monkeypatch.setattr(Swapper, "swap", swap)
    with override_settings(**NEW):
        report = migrate(["testapp.PrivateKey"], using="default")
        reset_envelope()
        assert PrivateKey.objects.get(pk=pk).pem == "written meanwhile!"
    assert parse(raw(pk)).key_id == "k2"
    assert report.fields[0].retried == 1
    assert report.fields[0].left_over == 0


def test_a_broken_provider_setting_stops_before_anything_is_read():
    data = seed()
    with (
        override_settings(**NEW, ENCRYPTION_ENVELOPE_PROVIDER="vault"),
        pytest.raises(CommandError, match="envelope settings are invalid"),
    ):
        call_command("encryption_migrate", "testapp", stdout=StringIO(), stderr=StringIO())
    assert {name: raw(pk) for name, pk in data["pks"].items()} == data["before"]
