"""EncryptedCharField and EncryptedTextField, proven against the raw column on every database.

Nothing here trusts the field to report what it stored: every claim about the data at rest is
checked by reading the column with a cursor (the ``raw_column`` fixture). The plaintexts used
hold a space or a ``!``, characters base64url never produces, so "the plaintext is not in the
stored text" can only pass when the value really is encrypted.
"""

from __future__ import annotations

import gc
import json
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import FieldError, ValidationError
from django.core.management import call_command
from django.db import DataError, connection, models, transaction
from django.db.models import Q
from django.test import override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from authhero_encrypt.crypto import PREFIX, decrypt_value, encrypt_value, stored_key_id
from authhero_encrypt.exceptions import DecryptionError, EncryptionError, MissingKeyError
from authhero_encrypt.fields import EncryptedCharField, EncryptedTextField
from authhero_encrypt.fields.scalar import MYSQL_MAX_VARCHAR, stored_length
from tests.keys import KEY_A, KEY_B, KEY_C
from tests.testapp.models import Secret

pytestmark = pytest.mark.django_db

TOKEN = "tok en!42"
NOTES = "multi-line notes!\nwith a second line"
TABLE = Secret._meta.db_table
BASE64URL = set(string.ascii_letters + string.digits + "-_")
WRITES = ("INSERT", "UPDATE", "insert", "update")

# SQLite does not enforce VARCHAR lengths, so width claims only mean something elsewhere.
needs_sized_columns = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite does not enforce column widths"
)


def assert_ciphertext(stored: object, plaintext: str, *, key_id: str | None = None) -> None:
    """``stored`` is ``enc:v1:`` ciphertext of ``plaintext``, not the plaintext itself."""
    assert isinstance(stored, str)
    prefix = PREFIX if key_id is None else f"{PREFIX}{key_id}:"
    assert stored.startswith(prefix)
    assert stored != plaintext
    if set(plaintext) - BASE64URL:
        # In the payload: the prefix itself holds ':' and letters a plaintext may be made of.
        assert plaintext not in stored[len(prefix) :]
    assert decrypt_value(stored) == plaintext


def write_raw(pk: object, column: str, value: str | None) -> None:
    """Overwrite one column of one Secret row with SQL, bypassing the field."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(TABLE)} SET {qn(column)} = %s WHERE {qn('id')} = %s", [value, pk]
        )
        assert cursor.rowcount == 1


def insert_raw(label: str, token: str | None, notes: str | None) -> int:
    """Insert a Secret row with SQL, as a table that predates encryption would hold it."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(TABLE)} ({qn('label')}, {qn('token')}, {qn('notes')}) "
            "VALUES (%s, %s, %s)",
            [label, token, notes],
        )
        cursor.execute(f"SELECT MAX({qn('id')}) FROM {qn(TABLE)}")
        pk: int = cursor.fetchone()[0]
    return pk


def column_width(column: str) -> int | None:
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, TABLE)
    return next(info.display_size for info in description if info.name == column)


def tamper(stored: str) -> str:
    """``stored`` with one payload character changed, so GCM authentication must fail."""
    index = len(stored) - 10
    replacement = "A" if stored[index] != "A" else "B"
    return stored[:index] + replacement + stored[index + 1 :]


# Writes -------------------------------------------------------------------------------------


def test_save_stores_ciphertext(raw_column):
    obj = Secret(label="save", token=TOKEN, notes=NOTES)
    obj.save()
    assert_ciphertext(raw_column(Secret, obj.pk, "token"), TOKEN)
    assert_ciphertext(raw_column(Secret, obj.pk, "notes"), NOTES)
    obj.token = "changed value!"
    obj.save(update_fields=["token"])
    assert_ciphertext(raw_column(Secret, obj.pk, "token"), "changed value!")


def test_create_stores_ciphertext(raw_column):
    obj = Secret.objects.create(label="create", token=TOKEN, notes=NOTES)
    assert_ciphertext(raw_column(Secret, obj.pk, "token"), TOKEN)
    assert_ciphertext(raw_column(Secret, obj.pk, "notes"), NOTES)


def test_bulk_create_stores_ciphertext(raw_column):
    Secret.objects.bulk_create(
        [Secret(label=f"bulk{i}", token=f"{TOKEN} {i}", notes=f"{NOTES} {i}") for i in range(3)]
    )
    for i in range(3):
        pk = Secret.objects.values_list("pk", flat=True).get(label=f"bulk{i}")
        assert_ciphertext(raw_column(Secret, pk, "token"), f"{TOKEN} {i}")
        assert_ciphertext(raw_column(Secret, pk, "notes"), f"{NOTES} {i}")


def test_bulk_update_stores_ciphertext(raw_column):
    objs = [Secret.objects.create(label=f"b{i}", token="old value!") for i in range(3)]
    for i, obj in enumerate(objs):
        obj.token = f"{TOKEN} {i}"
        obj.notes = f"{NOTES} {i}"
    Secret.objects.bulk_update(objs, ["token", "notes"])
    for i, obj in enumerate(objs):
        assert_ciphertext(raw_column(Secret, obj.pk, "token"), f"{TOKEN} {i}")
        assert_ciphertext(raw_column(Secret, obj.pk, "notes"), f"{NOTES} {i}")


def test_queryset_update_stores_ciphertext(raw_column):
    obj = Secret.objects.create(label="update", token="old value!")
    assert Secret.objects.filter(pk=obj.pk).update(token=TOKEN, notes=NOTES) == 1
    assert_ciphertext(raw_column(Secret, obj.pk, "token"), TOKEN)
    assert_ciphertext(raw_column(Secret, obj.pk, "notes"), NOTES)


def test_each_write_uses_a_fresh_iv(raw_column):
    first = Secret.objects.create(token=TOKEN)
    second = Secret.objects.create(token=TOKEN)
    assert raw_column(Secret, first.pk, "token") != raw_column(Secret, second.pk, "token")


# Reads --------------------------------------------------------------------------------------


@pytest.fixture
def stored_secret() -> Secret:
    return Secret.objects.create(label="read", token=TOKEN, notes=NOTES)


def test_get_decrypts(stored_secret):
    fresh = Secret.objects.get(pk=stored_secret.pk)
    assert (fresh.token, fresh.notes) == (TOKEN, NOTES)


def test_values_and_values_list_decrypt(stored_secret):
    row = Secret.objects.values("token", "notes").get(pk=stored_secret.pk)
    assert row == {"token": TOKEN, "notes": NOTES}
    assert list(Secret.objects.values_list("token", flat=True)) == [TOKEN]
    assert list(Secret.objects.values_list("label", "notes")) == [("read", NOTES)]


def test_iterator_decrypts(stored_secret):
    Secret.objects.create(label="second", token="second value!")
    tokens = [obj.token for obj in Secret.objects.order_by("pk").iterator(chunk_size=1)]
    assert tokens == [TOKEN, "second value!"]


def test_only_and_defer_decrypt_deferred_loads(stored_secret, django_assert_num_queries):
    only = Secret.objects.only("label").get(pk=stored_secret.pk)
    with django_assert_num_queries(1):
        assert only.token == TOKEN
    deferred = Secret.objects.defer("token", "notes").get(pk=stored_secret.pk)
    with django_assert_num_queries(1):
        assert deferred.notes == NOTES
    assert Secret.objects.only("token").get(pk=stored_secret.pk).token == TOKEN


def test_refresh_from_db_decrypts(stored_secret):
    stored_secret.token = "unsaved"
    stored_secret.refresh_from_db()
    assert stored_secret.token == TOKEN
    stored_secret.notes = "unsaved"
    stored_secret.refresh_from_db(fields=["notes"])
    assert stored_secret.notes == NOTES


# Legacy plaintext, NULL and the empty string --------------------------------------------------


def test_legacy_plaintext_reads_unchanged_then_encrypts_on_save(raw_column):
    pk = insert_raw("legacy", TOKEN, NOTES)
    assert raw_column(Secret, pk, "token") == TOKEN
    obj = Secret.objects.get(pk=pk)
    assert (obj.token, obj.notes) == (TOKEN, NOTES)
    assert Secret.objects.values_list("token", flat=True).get(pk=pk) == TOKEN
    obj.save()
    assert_ciphertext(raw_column(Secret, pk, "token"), TOKEN)
    assert_ciphertext(raw_column(Secret, pk, "notes"), NOTES)
    assert Secret.objects.get(pk=pk).token == TOKEN


def test_none_stays_sql_null(raw_column):
    obj = Secret.objects.create(label="null", token=None, notes=None)
    assert raw_column(Secret, obj.pk, "token") is None
    assert raw_column(Secret, obj.pk, "notes") is None
    fresh = Secret.objects.get(pk=obj.pk)
    assert (fresh.token, fresh.notes) == (None, None)
    Secret.objects.filter(pk=obj.pk).update(token=TOKEN)
    Secret.objects.filter(pk=obj.pk).update(token=None)
    assert raw_column(Secret, obj.pk, "token") is None


def test_empty_string_is_encrypted(raw_column):
    obj = Secret.objects.create(label="empty", token="", notes="")
    assert_ciphertext(raw_column(Secret, obj.pk, "token"), "")
    assert_ciphertext(raw_column(Secret, obj.pk, "notes"), "")
    assert len(raw_column(Secret, obj.pk, "token")) > len(PREFIX)
    assert Secret.objects.get(pk=obj.pk).token == ""


# Values that already carry the prefix ---------------------------------------------------------


def test_ciphertext_under_the_active_key_is_stored_verbatim(raw_column):
    ciphertext = encrypt_value(TOKEN)
    obj = Secret.objects.create(token=ciphertext, notes=ciphertext)
    assert raw_column(Secret, obj.pk, "token") == ciphertext
    assert raw_column(Secret, obj.pk, "notes") == ciphertext
    assert Secret.objects.get(pk=obj.pk).token == TOKEN


@pytest.mark.parametrize(
    ("old_key_id", "fallback"),
    [(None, KEY_B), ("old", f"old:{KEY_B}")],
    ids=["untagged", "tagged"],
)
def test_ciphertext_under_a_fallback_key_is_stored_verbatim(raw_column, old_key_id, fallback):
    with override_settings(ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_ID=old_key_id):
        ciphertext = encrypt_value(TOKEN)
    with override_settings(ENCRYPTION_KEY_FALLBACKS=[fallback]):
        obj = Secret.objects.create(token=ciphertext)
        assert raw_column(Secret, obj.pk, "token") == ciphertext
        assert Secret.objects.get(pk=obj.pk).token == TOKEN
        Secret.objects.filter(pk=obj.pk).update(token=ciphertext)
        assert raw_column(Secret, obj.pk, "token") == ciphertext


def undecryptable_values() -> dict[str, str]:
    with override_settings(ENCRYPTION_KEY=KEY_C):
        wrong_key = encrypt_value(TOKEN)
    with override_settings(ENCRYPTION_KEY=KEY_C, ENCRYPTION_KEY_ID="gone"):
        unknown_id = encrypt_value(TOKEN)
    return {
        "wrong key": wrong_key,
        "unknown key id": unknown_id,
        "tampered": tamper(encrypt_value(TOKEN)),
        "garbage": "enc:v1:not base64 at all!",
        "bare prefix": "enc:v1:",
        "truncated": encrypt_value(TOKEN)[:20],
    }


@pytest.fixture(params=list(undecryptable_values()))
def undecryptable(request: pytest.FixtureRequest) -> str:
    return undecryptable_values()[request.param]


@contextmanager
def refused_write() -> Iterator[pytest.ExceptionInfo[EncryptionError]]:
    """Expect the write inside to fail before any INSERT or UPDATE reaches the database.

    The savepoint only keeps the test's transaction usable (Django marks it for rollback when a
    save fails inside ``atomic``); the captured queries prove nothing was sent to be undone.
    """
    with (
        CaptureQueriesContext(connection) as queries,
        pytest.raises(EncryptionError) as excinfo,
        transaction.atomic(),
    ):
        yield excinfo
    writes = [query["sql"] for query in queries if query["sql"].lstrip()[:6] in WRITES]
    assert writes == []


def assert_refused_write(excinfo: pytest.ExceptionInfo[EncryptionError], value: str) -> None:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, DecryptionError)
    assert "testapp.Secret.token" in message
    assert "nothing was written" in message
    assert value[len(PREFIX) :] not in message or value == PREFIX
    assert KEY_A not in message
    assert isinstance(excinfo.value.__cause__, DecryptionError)


def test_undecryptable_prefixed_value_is_refused_on_create(undecryptable):
    with refused_write() as excinfo:
        Secret.objects.create(label="refused", token=undecryptable)
    assert_refused_write(excinfo, undecryptable)
    with refused_write() as excinfo:
        Secret.objects.bulk_create([Secret(token="fine!"), Secret(token=undecryptable)])
    assert_refused_write(excinfo, undecryptable)
    assert Secret.objects.count() == 0


def test_undecryptable_prefixed_value_leaves_the_old_value(raw_column, undecryptable):
    obj = Secret.objects.create(label="kept", token=TOKEN)
    before = raw_column(Secret, obj.pk, "token")
    obj.token = undecryptable
    with refused_write() as excinfo:
        obj.save()
    assert_refused_write(excinfo, undecryptable)
    with refused_write() as excinfo:
        Secret.objects.filter(pk=obj.pk).update(token=undecryptable)
    assert_refused_write(excinfo, undecryptable)
    with refused_write() as excinfo:
        Secret.objects.bulk_update([obj], ["token"])
    assert_refused_write(excinfo, undecryptable)
    assert raw_column(Secret, obj.pk, "token") == before
    assert Secret.objects.count() == 1


# Encryption switched off ----------------------------------------------------------------------


@pytest.mark.parametrize("unset", [None, ""], ids=["None", "empty"])
def test_key_unset_stores_and_reads_plaintext(raw_column, unset):
    with override_settings(ENCRYPTION_KEY=unset):
        obj = Secret.objects.create(label="plain", token=TOKEN, notes=NOTES)
        assert raw_column(Secret, obj.pk, "token") == TOKEN
        assert raw_column(Secret, obj.pk, "notes") == NOTES
        Secret.objects.bulk_update([obj], ["token"])
        Secret.objects.filter(pk=obj.pk).update(notes="updated notes!")
        assert raw_column(Secret, obj.pk, "token") == TOKEN
        assert raw_column(Secret, obj.pk, "notes") == "updated notes!"
        assert Secret.objects.get(pk=obj.pk).token == TOKEN


@pytest.mark.parametrize("unset", [None, ""], ids=["None", "empty"])
def test_key_unset_refuses_to_hand_out_ciphertext(raw_column, unset):
    obj = Secret.objects.create(label="encrypted", token=TOKEN)
    stored = raw_column(Secret, obj.pk, "token")
    with override_settings(ENCRYPTION_KEY=unset):
        with pytest.raises(MissingKeyError) as excinfo:
            Secret.objects.get(pk=obj.pk)
        message = str(excinfo.value)
        assert "ENCRYPTION_KEY is not set" in message
        assert stored not in message
        assert stored[len(PREFIX) :] not in message
        assert TOKEN not in message
        with pytest.raises(MissingKeyError):
            list(Secret.objects.values_list("token", flat=True))
        with refused_write() as write:
            Secret.objects.create(token=stored)
        assert isinstance(write.value, MissingKeyError)
        assert stored not in str(write.value)
    assert Secret.objects.count() == 1


# Key ids and rotation -------------------------------------------------------------------------


def test_key_id_writes_the_keyed_form(raw_column):
    with override_settings(ENCRYPTION_KEY_ID="2026-11"):
        obj = Secret.objects.create(token=TOKEN, notes=NOTES)
        stored = raw_column(Secret, obj.pk, "token")
        assert_ciphertext(stored, TOKEN, key_id="2026-11")
        assert stored_key_id(stored) == "2026-11"
        assert_ciphertext(raw_column(Secret, obj.pk, "notes"), NOTES, key_id="2026-11")
        assert Secret.objects.get(pk=obj.pk).token == TOKEN


def test_rows_written_under_retired_keys_still_read(raw_column):
    with override_settings(ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_ID="old"):
        tagged = Secret.objects.create(label="tagged", token="tagged value!")
    with override_settings(ENCRYPTION_KEY=KEY_A, ENCRYPTION_KEY_ID=None):
        untagged = Secret.objects.create(label="untagged", token="untagged value!")
    assert stored_key_id(raw_column(Secret, tagged.pk, "token")) == "old"
    assert stored_key_id(raw_column(Secret, untagged.pk, "token")) is None
    rotated = override_settings(
        ENCRYPTION_KEY=KEY_C,
        ENCRYPTION_KEY_ID="new",
        ENCRYPTION_KEY_FALLBACKS=[f"old:{KEY_B}", KEY_A],
    )
    with rotated:
        assert Secret.objects.get(pk=tagged.pk).token == "tagged value!"
        assert Secret.objects.get(pk=untagged.pk).token == "untagged value!"
        for obj in Secret.objects.all():
            obj.save()
        for pk, value in ((tagged.pk, "tagged value!"), (untagged.pk, "untagged value!")):
            assert_ciphertext(raw_column(Secret, pk, "token"), value, key_id="new")
    # Re-encrypted under the new key only: the old keys alone no longer read it.
    with (
        override_settings(ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_ID="old"),
        pytest.raises(DecryptionError),
    ):
        Secret.objects.get(pk=tagged.pk)


# Lookups --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lookup", "value"),
    [
        ("token", TOKEN),
        ("token__exact", TOKEN),
        ("token__iexact", TOKEN),
        ("token__contains", "tok"),
        ("token__icontains", "tok"),
        ("token__in", [TOKEN]),
        ("token__startswith", "tok"),
        ("token__gt", "a"),
        ("token__regex", "^tok"),
        ("token__lower", TOKEN),
        ("token__lower__exact", TOKEN),
        ("notes__contains", "notes"),
        ("notes__isnull__exact", True),
    ],
)
def test_lookups_are_refused(stored_secret, lookup, value):
    field = lookup.split("__")[0]
    lookup_name = lookup.split("__")[1] if "__" in lookup else "exact"
    with pytest.raises(FieldError) as excinfo:
        Secret.objects.filter(**{lookup: value})
    message = str(excinfo.value)
    assert f"testapp.Secret.{field}" in message
    assert "encrypted" in message
    assert f"'{lookup_name}'" in message
    with pytest.raises(FieldError):
        Secret.objects.exclude(**{lookup: value})


def test_admin_style_q_search_is_refused(stored_secret):
    with pytest.raises(FieldError, match=r"testapp\.Secret\.token"):
        Secret.objects.filter(Q(label__icontains="tok") | Q(token__icontains="tok"))


def test_isnull_works():
    Secret.objects.create(label="set", token=TOKEN)
    Secret.objects.create(label="null", token=None)
    Secret.objects.create(label="empty", token="")
    assert list(Secret.objects.filter(token__isnull=True).values_list("label", flat=True)) == [
        "null"
    ]
    assert set(Secret.objects.filter(token__isnull=False).values_list("label", flat=True)) == {
        "set",
        "empty",
    }
    assert Secret.objects.exclude(Q(token__isnull=True)).count() == 2


# Errors while reading a row -------------------------------------------------------------------


def unreadable_values() -> dict[str, Callable[[str], str]]:
    """Ways to spoil a stored value, each given the row's stored ciphertext."""

    def unknown_id(stored: str) -> str:
        return f"{PREFIX}retired:{stored[len(PREFIX) :]}"

    def wrong_key(stored: str) -> str:
        with override_settings(ENCRYPTION_KEY=KEY_C):
            return encrypt_value(TOKEN)

    return {"tampered": tamper, "unknown key id": unknown_id, "wrong key": wrong_key}


@pytest.fixture(params=list(unreadable_values()))
def unreadable_row(request: pytest.FixtureRequest, raw_column) -> tuple[int, str]:
    # A few rows around it, so naming the right primary key is not luck.
    Secret.objects.bulk_create([Secret(label=f"other{i}", token=TOKEN) for i in range(3)])
    obj = Secret.objects.create(label="broken", token=TOKEN)
    Secret.objects.create(label="after", token=TOKEN)
    spoil = unreadable_values()[request.param]
    # The row is found again with LIKE, where '_' is a wildcard to escape; make sure the value
    # holds one, so that escaping is exercised on every run rather than on about half of them.
    for _ in range(100):
        obj.save()  # a fresh IV each time
        bad = spoil(raw_column(Secret, obj.pk, "token"))
        if "_" in bad:
            break
    assert "_" in bad
    write_raw(obj.pk, "token", bad)
    return obj.pk, bad


def assert_read_error(exc: BaseException, pk: int, stored: str) -> None:
    message = str(exc)
    assert isinstance(exc, DecryptionError)
    assert isinstance(exc.__cause__, DecryptionError)
    assert "testapp.Secret.token" in message
    assert f"primary key {pk}" in message
    assert TOKEN not in message
    assert stored not in message
    assert stored.rsplit(":", 1)[1] not in message
    for key in (KEY_A, KEY_B, KEY_C):
        assert key not in message


def test_read_error_names_model_field_and_primary_key(unreadable_row):
    pk, stored = unreadable_row
    with pytest.raises(DecryptionError) as excinfo:
        Secret.objects.get(pk=pk)
    assert_read_error(excinfo.value, pk, stored)


def test_read_error_through_values_and_iterator(unreadable_row):
    pk, stored = unreadable_row
    with pytest.raises(DecryptionError) as excinfo:
        list(Secret.objects.values("label", "token"))
    assert_read_error(excinfo.value, pk, stored)
    with pytest.raises(DecryptionError) as excinfo:
        list(Secret.objects.values_list("token", flat=True).iterator())
    assert_read_error(excinfo.value, pk, stored)
    # On PostgreSQL the failed iteration leaves Django's server-side cursor to be closed when its
    # generator is collected; collect it now, inside the transaction that opened it, or its
    # CLOSE fails later and aborts whichever transaction is open then.
    del excinfo
    gc.collect()


def test_read_error_keeps_the_key_id_it_needed(raw_column):
    obj = Secret.objects.create(token=TOKEN)
    stored = raw_column(Secret, obj.pk, "token")
    write_raw(obj.pk, "token", f"{PREFIX}retired:{stored[len(PREFIX) :]}")
    with pytest.raises(DecryptionError) as excinfo:
        Secret.objects.get(pk=obj.pk)
    assert excinfo.value.key_id == "retired"
    assert "'retired'" in str(excinfo.value)


def test_read_error_leaves_the_transaction_usable(unreadable_row):
    pk, _ = unreadable_row
    with pytest.raises(DecryptionError):
        Secret.objects.get(pk=pk)
    # Looking up the primary key for the message must not break the caller's transaction.
    assert Secret.objects.filter(label="after").count() == 1


# Length ---------------------------------------------------------------------------------------


def test_max_length_validates_the_plaintext():
    field = Secret._meta.get_field("token")
    assert field.max_length == 100
    Secret(token="x" * 100).full_clean()
    Secret(token="😀" * 100).full_clean()
    with pytest.raises(ValidationError) as excinfo:
        Secret(token="x" * 101).full_clean()
    assert "token" in excinfo.value.message_dict
    form_field = field.formfield()
    assert form_field.max_length == 100
    assert form_field.clean("x" * 100) == "x" * 100
    with pytest.raises(ValidationError):
        form_field.clean("x" * 101)


@needs_sized_columns
def test_column_is_sized_for_the_ciphertext():
    assert column_width("token") == stored_length(100)
    assert column_width("label") == 50


@needs_sized_columns
@pytest.mark.parametrize("key_id", [None, "k" * 64], ids=["untagged", "longest-key-id"])
def test_widest_plaintext_fits_the_column(raw_column, key_id):
    # The column must refuse what does not fit, or a successful save would prove nothing.
    with pytest.raises(DataError), transaction.atomic():
        insert_raw("overflow", "x" * (stored_length(100) + 1), None)
    widest = "😀" * 100
    with override_settings(ENCRYPTION_KEY_ID=key_id):
        obj = Secret.objects.create(label="wide", token=widest)
        stored = raw_column(Secret, obj.pk, "token")
        assert_ciphertext(stored, widest, key_id=key_id)
        assert len(stored) <= stored_length(100)
        assert Secret.objects.get(pk=obj.pk).token == widest


def test_ten_thousand_character_text(raw_column):
    value = ("abc😀日本語é " * 1200)[:10_000]
    assert len(value) == 10_000
    obj = Secret.objects.create(notes=value)
    assert_ciphertext(raw_column(Secret, obj.pk, "notes"), value)
    assert Secret.objects.get(pk=obj.pk).notes == value


# Field checks and deconstruction ----------------------------------------------------------------


def throwaway_model(field: models.Field[Any, Any]) -> type[models.Model]:
    with isolate_apps("tests.testapp"):
        meta = type("Meta", (), {"app_label": "testapp"})
        attrs = {"__module__": __name__, "Meta": meta, "secret": field}
        return type("Throwaway", (models.Model,), attrs)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, []),
        ({"null": True, "blank": True}, []),
        ({"unique": True}, ["authhero_encrypt.E101"]),
        ({"db_index": True}, ["authhero_encrypt.E102"]),
        ({"primary_key": True}, ["authhero_encrypt.E103"]),
        ({"unique": True, "db_index": True}, ["authhero_encrypt.E101", "authhero_encrypt.E102"]),
    ],
)
@pytest.mark.parametrize("field_class", [EncryptedCharField, EncryptedTextField])
def test_field_checks(field_class, kwargs, expected):
    if field_class is EncryptedCharField:
        kwargs = {"max_length": 20, **kwargs}
    model = throwaway_model(field_class(**kwargs))  # defining it must not raise
    # Django's own checks may add warnings of theirs (MySQL cannot index TEXT: fields.W162).
    errors = [e for e in model.check(databases=["default"]) if e.id.startswith("authhero_encrypt.")]
    assert [error.id for error in errors] == expected
    for error in errors:
        assert error.obj is model._meta.get_field("secret")
        assert error.hint


@pytest.mark.skipif(connection.vendor != "mysql", reason="only MySQL/MariaDB cap VARCHAR")
def test_char_field_too_wide_for_mariadb():
    # 3050 is the longest plaintext whose ciphertext column MySQL/MariaDB can hold.
    assert stored_length(3050) <= MYSQL_MAX_VARCHAR < stored_length(3051)
    model = throwaway_model(EncryptedCharField(max_length=3051))
    assert [error.id for error in model.check(databases=["default"])] == ["authhero_encrypt.E104"]
    assert throwaway_model(EncryptedCharField(max_length=3050)).check(databases=["default"]) == []
    assert throwaway_model(EncryptedCharField(max_length=3051)).check() == []


@pytest.mark.parametrize(
    ("name", "path", "kwargs"),
    [
        (
            "token",
            "authhero_encrypt.fields.EncryptedCharField",
            {"max_length": 100, "null": True, "blank": True},
        ),
        ("notes", "authhero_encrypt.fields.EncryptedTextField", {"null": True, "blank": True}),
    ],
)
def test_deconstruct_uses_the_public_path(name, path, kwargs):
    field = Secret._meta.get_field(name)
    assert field.deconstruct() == (name, path, [], kwargs)
    name, path, args, kwargs = field.deconstruct()
    clone = type(field)(*args, **kwargs)
    assert clone.max_length == field.max_length


# dumpdata and loaddata --------------------------------------------------------------------------


def test_dumpdata_writes_ciphertext_and_loaddata_restores_it(raw_column, tmp_path: Path):
    kept = Secret.objects.create(label="one", token=TOKEN, notes=NOTES)
    empty = Secret.objects.create(label="two", token=None, notes="")
    legacy = insert_raw("three", "legacy value!", None)
    out = StringIO()
    call_command("dumpdata", "testapp.Secret", stdout=out)
    dump = out.getvalue()
    for plaintext in (TOKEN, NOTES, "legacy value!"):
        assert plaintext not in dump
    records = {record["pk"]: record["fields"] for record in json.loads(dump)}
    assert set(records) == {kept.pk, empty.pk, legacy}
    assert_ciphertext(records[kept.pk]["token"], TOKEN)
    assert_ciphertext(records[kept.pk]["notes"], NOTES)
    assert records[empty.pk]["token"] is None
    assert_ciphertext(records[empty.pk]["notes"], "")
    assert_ciphertext(records[legacy]["token"], "legacy value!")

    fixture = tmp_path / "secrets.json"
    fixture.write_text(dump)
    Secret.objects.all().delete()
    call_command("loaddata", str(fixture), verbosity=0)
    assert Secret.objects.count() == 3
    for pk, fields in records.items():
        assert raw_column(Secret, pk, "token") == fields["token"]
        assert raw_column(Secret, pk, "notes") == fields["notes"]
    assert Secret.objects.get(pk=kept.pk).token == TOKEN
    assert Secret.objects.get(pk=legacy).token == "legacy value!"


def test_loaddata_refuses_ciphertext_from_an_unknown_key(tmp_path: Path):
    with override_settings(ENCRYPTION_KEY=KEY_C):
        foreign = encrypt_value(TOKEN)
    fixture = tmp_path / "foreign.json"
    fixture.write_text(
        json.dumps(
            [{"model": "testapp.secret", "pk": 1, "fields": {"label": "x", "token": foreign}}]
        )
    )
    with pytest.raises(DecryptionError):
        call_command("loaddata", str(fixture), verbosity=0)
    assert Secret.objects.count() == 0


# Properties -------------------------------------------------------------------------------------

# Lone surrogates cannot be encoded as UTF-8 (EncryptionError, as in AuthHero). NUL is kept:
# the column only ever sees base64url, so even PostgreSQL, which refuses NUL in text, stores it.
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=100)
# Stored as is when the key is unset, so NUL is left out where the database refuses it.
storable_text = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        exclude_characters="\x00" if connection.vendor == "postgresql" else "",
    )
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=any_text, notes=any_text)
def test_round_trip_through_the_database(raw_column, token, notes):
    obj = Secret.objects.create(token=token, notes=notes)
    assert_ciphertext(raw_column(Secret, obj.pk, "token"), token)
    assert_ciphertext(raw_column(Secret, obj.pk, "notes"), notes)
    fresh = Secret.objects.get(pk=obj.pk)
    assert (fresh.token, fresh.notes) == (token, notes)


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(notes=storable_text.filter(lambda text: not text.startswith(PREFIX)))
def test_plaintext_round_trip_with_the_key_unset(raw_column, notes):
    with override_settings(ENCRYPTION_KEY=None):
        obj = Secret.objects.create(notes=notes)
        assert raw_column(Secret, obj.pk, "notes") == notes
        assert Secret.objects.get(pk=obj.pk).notes == notes
