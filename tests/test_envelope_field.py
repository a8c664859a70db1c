"""EnvelopeEncryptedTextField with the local provider, proven against the raw column.

Runs on SQLite, PostgreSQL and MariaDB (TEST_DATABASE). Every claim about what is at rest is
checked by reading the column with a cursor (``raw_column``).
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core import checks
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, models, transaction
from django.test import override_settings
from django.test.utils import isolate_apps

from authhero_encrypt.crypto import encrypt_value
from authhero_encrypt.envelope.config import dek_cache, reset_envelope
from authhero_encrypt.envelope.format import parse
from authhero_encrypt.envelope.registry import AWS_KMS_BACKEND
from authhero_encrypt.exceptions import DecryptionError, EncryptionError, MissingKeyError
from authhero_encrypt.fields import EnvelopeEncryptedTextField
from authhero_encrypt.inventory import find_targets
from tests.keys import KEY_A, KEY_B, KEY_C, SAMPLE_PEM
from tests.testapp.models import PrivateKey

pytestmark = pytest.mark.django_db

PEM = SAMPLE_PEM
TABLE = PrivateKey._meta.db_table


def write_raw(pk: object, column: str, value: str | None) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(TABLE)} SET {qn(column)} = %s WHERE {qn('id')} = %s", [value, pk]
        )


def test_a_pem_is_ciphertext_at_rest_and_reads_back(raw_column):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    stored = raw_column(PrivateKey, row.pk, "pem")
    assert stored.startswith("env:v1:local::")
    assert "BEGIN PRIVATE KEY" not in stored
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC!" not in stored
    assert PrivateKey.objects.get(pk=row.pk).pem == PEM


@override_settings(ENCRYPTION_KEY_ID="2026-11")
def test_the_active_key_id_is_the_kek_key_id(raw_column):
    row = PrivateKey.objects.create(name="k", pem=PEM)
    assert parse(raw_column(PrivateKey, row.pk, "pem")).key_id == "2026-11"


def test_none_stays_null_and_empty_is_encrypted(raw_column):
    row = PrivateKey.objects.create(name="k", pem=None, bundle="")
    assert raw_column(PrivateKey, row.pk, "pem") is None
    assert raw_column(PrivateKey, row.pk, "bundle").startswith("env:v1:local:")
    fresh = PrivateKey.objects.get(pk=row.pk)
    assert fresh.pem is None
    assert fresh.bundle == ""


def test_legacy_plaintext_is_read_as_is_and_encrypted_on_the_next_write(raw_column):
    row = PrivateKey.objects.create(name="k")
    write_raw(row.pk, "pem", PEM)
    fresh = PrivateKey.objects.get(pk=row.pk)
    assert fresh.pem == PEM
    fresh.save()
    assert raw_column(PrivateKey, row.pk, "pem").startswith("env:v1:")
    assert PrivateKey.objects.get(pk=row.pk).pem == PEM


def test_an_enc_v1_value_is_read_with_the_ring_and_enveloped_on_the_next_write(raw_column):
    row = PrivateKey.objects.create(name="k")
    write_raw(row.pk, "pem", encrypt_value(PEM))
    fresh = PrivateKey.objects.get(pk=row.pk)
    assert fresh.pem == PEM
    fresh.save()
    assert raw_column(PrivateKey, row.pk, "pem").startswith("env:v1:")
    assert PrivateKey.objects.get(pk=row.pk).pem == PEM


def test_an_undecryptable_enc_v1_value_is_refused_on_write_and_read():
    with override_settings(ENCRYPTION_KEY=KEY_C):
        foreign = encrypt_value("x")
    with (
        pytest.raises(DecryptionError, match=r"Cannot store testapp.PrivateKey.pem"),
        transaction.atomic(),
    ):
        PrivateKey.objects.create(name="k", pem=foreign)
    assert PrivateKey.objects.count() == 0
    row = PrivateKey.objects.create(name="k")
    write_raw(row.pk, "pem", foreign)
    with pytest.raises(DecryptionError, match=rf"testapp.PrivateKey.pem \(primary key {row.pk}\)"):
        PrivateKey.objects.get(pk=row.pk)


def test_lookups_are_refused_but_isnull_works():
    PrivateKey.objects.create(name="a", pem=PEM)
    PrivateKey.objects.create(name="b", pem=None)
    for lookup in ("pem", "pem__contains", "pem__startswith", "pem__iexact"):
        with pytest.raises(FieldError, match=r"testapp\.PrivateKey\.pem is encrypted at rest"):
            PrivateKey.objects.filter(**{lookup: PEM}).count()
    with pytest.raises(FieldError):
        PrivateKey.objects.filter(pem__lower="x").count()
    assert PrivateKey.objects.filter(pem__isnull=True).count() == 1
    assert PrivateKey.objects.filter(pem=None).count() == 1
    assert PrivateKey.objects.exclude(pem=None).count() == 1


def test_a_valid_envelope_is_written_verbatim(raw_column):
    source = PrivateKey.objects.create(name="a", pem=PEM)
    stored = raw_column(PrivateKey, source.pk, "pem")
    copy = PrivateKey.objects.create(name="b", pem=stored)
    assert raw_column(PrivateKey, copy.pk, "pem") == stored
    assert PrivateKey.objects.get(pk=copy.pk).pem == PEM


def test_a_tampered_envelope_is_refused_and_nothing_is_written(raw_column):
    row = PrivateKey.objects.create(name="a", pem=PEM)
    stored = raw_column(PrivateKey, row.pk, "pem")
    tampered = stored[:-3] + ("A" if stored[-3] != "A" else "B") + stored[-2:]
    with (
        pytest.raises(DecryptionError, match=r"Cannot store testapp.PrivateKey.pem \(nothing"),
        transaction.atomic(),
    ):
        PrivateKey.objects.create(name="b", pem=tampered)
    assert PrivateKey.objects.count() == 1
    row.pem = tampered
    with pytest.raises(DecryptionError), transaction.atomic():
        row.save()
    assert raw_column(PrivateKey, row.pk, "pem") == stored


def test_a_value_copied_to_another_column_does_not_open(raw_column):
    row = PrivateKey.objects.create(name="a", pem=PEM)
    write_raw(row.pk, "bundle", raw_column(PrivateKey, row.pk, "pem"))
    with pytest.raises(DecryptionError) as caught:
        PrivateKey.objects.get(pk=row.pk)
    message = str(caught.value)
    assert f"Cannot read testapp.PrivateKey.bundle (primary key {row.pk})" in message
    assert "copied from another field" in message
    assert "BEGIN PRIVATE KEY" not in message


def test_a_read_error_names_model_field_and_row_without_the_value(raw_column):
    first = PrivateKey.objects.create(name="a", pem=PEM)
    row = PrivateKey.objects.create(name="b", pem=PEM)
    stored = raw_column(PrivateKey, row.pk, "pem")
    # Flip the wrapped key's first character: a DEK that no longer unwraps.
    head, wrapped, payload = stored.rsplit(":", 2)
    write_raw(row.pk, "pem", f"{head}:{'B' if wrapped[0] == 'A' else 'A'}{wrapped[1:]}:{payload}")
    with pytest.raises(DecryptionError) as caught:
        list(PrivateKey.objects.order_by("pk"))
    message = str(caught.value)
    assert f"Cannot read testapp.PrivateKey.pem (primary key {row.pk})" in message
    assert payload not in message
    assert PrivateKey.objects.get(pk=first.pk).pem == PEM


def test_values_survive_a_key_rotation_while_the_old_key_is_a_fallback():
    with override_settings(ENCRYPTION_KEY_ID="old"):
        row = PrivateKey.objects.create(name="a", pem=PEM)
    with override_settings(
        ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_ID="new", ENCRYPTION_KEY_FALLBACKS=[f"old:{KEY_A}"]
    ):
        assert PrivateKey.objects.get(pk=row.pk).pem == PEM
    with (
        override_settings(ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_ID="new"),
        pytest.raises(MissingKeyError, match="ring key id 'old', which is not configured"),
    ):
        PrivateKey.objects.get(pk=row.pk)


def test_a_removed_key_is_not_served_from_the_cache():
    row = PrivateKey.objects.create(name="a", pem=PEM)
    assert PrivateKey.objects.get(pk=row.pk).pem == PEM
    assert len(dek_cache()) >= 1
    with override_settings(ENCRYPTION_KEY=KEY_B), pytest.raises(DecryptionError):
        PrivateKey.objects.get(pk=row.pk)


@override_settings(ENCRYPTION_KEY=None)
def test_with_encryption_off_values_are_stored_as_plaintext(raw_column):
    row = PrivateKey.objects.create(name="a", pem=PEM)
    assert raw_column(PrivateKey, row.pk, "pem") == PEM


def test_dumpdata_holds_ciphertext_and_loaddata_restores_it(raw_column, tmp_path: Path):
    row = PrivateKey.objects.create(name="a", pem=PEM, bundle=None)
    legacy = PrivateKey.objects.create(name="b")
    write_raw(legacy.pk, "pem", "legacy pem!")
    out = StringIO()
    call_command("dumpdata", "testapp.PrivateKey", stdout=out)
    dump = out.getvalue()
    assert "BEGIN PRIVATE KEY" not in dump
    assert "legacy pem!" not in dump
    records = {record["pk"]: record["fields"] for record in json.loads(dump)}
    # A dump seals the value again (as the enc:v1 fields do): ciphertext, not the row's bytes.
    assert records[row.pk]["pem"].startswith("env:v1:local:")
    assert records[row.pk]["bundle"] is None
    assert records[legacy.pk]["pem"].startswith("env:v1:local:")
    fixture = tmp_path / "keys.json"
    fixture.write_text(dump)
    PrivateKey.objects.all().delete()
    call_command("loaddata", str(fixture), verbosity=0)
    for pk, fields in records.items():
        assert raw_column(PrivateKey, pk, "pem") == fields["pem"]
    assert PrivateKey.objects.get(pk=row.pk).pem == PEM
    assert PrivateKey.objects.get(pk=legacy.pk).pem == "legacy pem!"


def test_the_commands_find_envelope_columns_and_leave_current_values_alone(raw_column):
    row = PrivateKey.objects.create(name="a", pem=PEM)
    stored = raw_column(PrivateKey, row.pk, "pem")
    targets = find_targets(["testapp.PrivateKey"])
    assert [t.field.name for t in targets] == ["pem", "bundle"]
    assert all(t.is_envelope for t in targets)
    call_command("encryption_migrate", "testapp", stdout=StringIO(), stderr=StringIO())
    assert raw_column(PrivateKey, row.pk, "pem") == stored


def test_envelope_context_is_validated_and_deconstructed():
    with pytest.raises(ValueError, match="non-empty string without NUL"):
        EnvelopeEncryptedTextField(envelope_context="")
    _, path, _, kwargs = PrivateKey._meta.get_field("bundle").deconstruct()
    assert path == "authhero_encrypt.fields.EnvelopeEncryptedTextField"
    assert kwargs["envelope_context"] == "testapp.privatekey.bundle-v1"
    assert "envelope_context" not in PrivateKey._meta.get_field("pem").deconstruct()[3]
    assert PrivateKey._meta.get_field("pem").context == "testapp.privatekey.pem"


def test_a_pinned_context_keeps_values_readable_under_a_new_name(raw_column):
    row = PrivateKey.objects.create(name="a", bundle=PEM)
    stored = raw_column(PrivateKey, row.pk, "bundle")
    assert PrivateKey._meta.get_field("bundle").context == "testapp.privatekey.bundle-v1"
    assert PrivateKey.objects.get(pk=row.pk).bundle == PEM
    assert stored.startswith("env:v1:")


def _shared_model(table: str, column: str) -> type[models.Model]:
    class Shared(models.Model):
        secret = EnvelopeEncryptedTextField(db_column=column)

        class Meta:
            app_label = "testapp"
            db_table = table

        def __str__(self) -> str:
            return "shared"

    return Shared


@pytest.mark.parametrize(("table", "column"), [("keys", "pkcs7"), ("clients", "notes")])
@isolate_apps("tests.testapp")
def test_w301_warns_on_a_table_authhero_reads(table, column):
    found = _shared_model(table, column)._meta.get_field("secret").check()
    assert [message.id for message in found] == ["authhero_encrypt.W301"]
    assert isinstance(found[0], checks.Warning)
    assert "ENCRYPTION_AUTHHERO_TABLES" in (found[0].hint or "")


@pytest.mark.parametrize("column", ["pkcs7", "dkim_private_key"])
@isolate_apps("tests.testapp")
def test_w301_ignores_a_column_named_like_authheros_in_a_project_table(column):
    """A column name proves nothing: a Django table such as app_signingkey is not AuthHero's."""
    assert _shared_model("billing_signingkey", column)._meta.get_field("secret").check() == []


@pytest.mark.parametrize("declared", [["custom_domains"], ("custom_domains",), "custom_domains"])
@isolate_apps("tests.testapp")
def test_w301_warns_on_a_table_the_settings_say_authhero_shares(declared):
    field = _shared_model("custom_domains", "dkim_private_key")._meta.get_field("secret")
    assert field.check() == []
    with override_settings(ENCRYPTION_AUTHHERO_TABLES=declared):
        assert [message.id for message in field.check()] == ["authhero_encrypt.W301"]


def test_w301_is_quiet_elsewhere():
    assert PrivateKey._meta.get_field("pem").check() == []


def test_a_write_error_carries_no_plaintext():
    with (
        override_settings(
            ENCRYPTION_ENVELOPE_PROVIDER="aws-kms",
            ENCRYPTION_ENVELOPE_PROVIDERS={"aws-kms": {"BACKEND": AWS_KMS_BACKEND}},
        ),
        pytest.raises(EncryptionError) as caught,
        transaction.atomic(),
    ):
        PrivateKey.objects.create(name="a", pem=PEM)
    assert "has no key_id in its OPTIONS" in str(caught.value)
    assert "BEGIN PRIVATE KEY" not in str(caught.value)
    assert PrivateKey.objects.count() == 0


def test_reset_envelope_empties_the_cache():
    PrivateKey.objects.create(name="a", pem=PEM)
    cache = dek_cache()
    assert len(cache) == 1
    reset_envelope(setting="ENCRYPTION_ENVELOPE_CACHE_TTL")
    assert len(cache) == 0
    assert dek_cache() is not cache
