"""What an error report shows: no key text and no decrypted plaintext in any frame.

Django's error reports (the technical 500 page, ``AdminEmailHandler``) print the locals of every
frame of every exception in the chain, with ``sensitive_variables`` honoured when DEBUG is off.
"""

from __future__ import annotations

import base64
import html
import json
import sys

import pytest
from django.db import connection
from django.db.models import prefetch_related_objects
from django.test import override_settings
from django.views.debug import ExceptionReporter

from authhero_encrypt.crypto import encrypt_value
from authhero_encrypt.exceptions import DecryptionError, InvalidKeyError
from authhero_encrypt.keys import get_keyring
from tests.testapp.models import (
    Connection,
    GuardAccount,
    GuardVaultItem,
    PrivateKey,
    Secret,
    TenantCredential,
)

pytestmark = pytest.mark.django_db


def report(exc: BaseException) -> str:
    """The HTML report, with every frame's locals, as AdminEmailHandler attaches it."""
    reporter = ExceptionReporter(None, type(exc), exc, exc.__traceback__)
    return html.unescape(reporter.get_traceback_html())


# Module constants, not locals: the test's own frame is part of the report too.
BAD_KEY = base64.b64encode(b"k" * 48).decode()
FIRST_SECRET = "first-secret-decrypted-before-the-failure"


@override_settings(DEBUG=False, ENCRYPTION_KEY=BAD_KEY)
def test_a_malformed_key_met_at_run_time_stays_out_of_the_report():
    with pytest.raises(InvalidKeyError) as caught:
        get_keyring()
    text = report(caught.value)
    assert "ENCRYPTION_KEY must decode to 32 bytes (got 48)" in text
    assert BAD_KEY.rstrip("=") not in text


def seed_half_tampered_connection() -> int:
    """A row whose first secret decrypts and whose nested one does not."""
    row = Connection.objects.create(name="c", options={"client_secret": "x"})
    stored = {
        "client_id": "abc",
        "client_secret": encrypt_value(FIRST_SECRET),
        "configuration": {"client_secret": "enc:v1:" + "A" * 40},
    }
    table = connection.ops.quote_name(Connection._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET options = %s WHERE id = %s",
            [json.dumps(stored), row.pk],
        )
    return row.pk


@override_settings(DEBUG=False)
def test_a_failing_json_read_reports_no_plaintext_of_the_paths_already_decrypted():
    pk = seed_half_tampered_connection()
    with pytest.raises(DecryptionError) as caught:
        Connection.objects.get(pk=pk)
    text = report(caught.value)
    assert "configuration.client_secret" in text
    assert FIRST_SECRET not in text


def test_filter_on_none_is_isnull():
    empty = Secret.objects.create(label="none", token=None)
    Secret.objects.create(label="set", token="value")
    assert list(Secret.objects.filter(token=None)) == [empty]
    assert list(Secret.objects.exclude(token=None).values_list("label", flat=True)) == ["set"]
    # (JSONField=None means the JSON null document, which Django 6.1 deprecates: not asserted.)
    assert Connection.objects.filter(options__isnull=True).count() == 0


def test_exact_with_a_value_is_still_refused():
    from django.core.exceptions import FieldError

    with pytest.raises(FieldError, match="encrypted at rest"):
        Secret.objects.filter(token="value").count()
    with pytest.raises(FieldError, match="is an encrypted path"):
        Connection.objects.filter(options={"client_id": "abc", "client_secret": "x"}).count()


def test_the_report_helper_sees_frame_locals():
    # Guards the two tests above against passing because reports hide locals altogether.
    def leak() -> None:
        marker = "visible-local-value"  # noqa: F841
        raise ValueError("boom")

    try:
        leak()
    except ValueError:
        exc = sys.exc_info()[1]
    assert exc is not None
    with override_settings(DEBUG=False):
        assert "visible-local-value" in report(exc)


# Other rows and other columns: what Django's own frames above the field hold ---------------------

EARLIER_TOKEN = "earlier-row-token-plaintext"
EARLIER_NOTES = "earlier-row-notes-plaintext"
SAME_ROW_TOKEN = "same-row-token-decrypted-first"
EARLIER_JSON = "earlier-row-json-secret-plaintext"


def tampered() -> str:
    return "enc:v1:" + "A" * 40


def seed_two_secret_rows() -> None:
    Secret.objects.create(label="one", token=EARLIER_TOKEN, notes=EARLIER_NOTES)
    bad = Secret.objects.create(label="two", token=SAME_ROW_TOKEN, notes="replaced below")
    table = connection.ops.quote_name(Secret._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET notes = %s WHERE id = %s", [tampered(), bad.pk])


READS = {
    "instances": lambda qs: list(qs),
    "iterator": lambda qs: list(qs.iterator(chunk_size=10)),
    "values": lambda qs: list(qs.values("token", "notes")),
    "values_list": lambda qs: list(qs.values_list("label", "token", "notes")),
}


def both_reports(exc: BaseException) -> str:
    reporter = ExceptionReporter(None, type(exc), exc, exc.__traceback__)
    return html.unescape(reporter.get_traceback_html()) + reporter.get_traceback_text()


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
@override_settings(DEBUG=False)
def test_a_failing_read_reports_no_plaintext_of_other_rows_or_columns(read):
    seed_two_secret_rows()
    with pytest.raises(DecryptionError) as caught:
        read(Secret.objects.order_by("id"))
    text = both_reports(caught.value)
    assert "testapp.Secret.notes" in text
    for plaintext in (EARLIER_TOKEN, EARLIER_NOTES, SAME_ROW_TOKEN):
        assert plaintext not in text


@override_settings(DEBUG=False)
def test_a_failing_json_read_reports_no_plaintext_of_the_previous_row():
    Connection.objects.create(name="one", options={"client_secret": EARLIER_JSON})
    seed_half_tampered_connection()
    with pytest.raises(DecryptionError) as caught:
        list(Connection.objects.order_by("id"))
    text = both_reports(caught.value)
    assert "configuration.client_secret" in text
    assert EARLIER_JSON not in text
    assert FIRST_SECRET not in text


@override_settings(ENCRYPTION_KEY="not a key")
def test_a_malformed_key_at_write_time_names_the_setting():
    with pytest.raises(InvalidKeyError) as caught:
        Secret.objects.create(label="x", token="plain value")
    message = str(caught.value)
    assert "ENCRYPTION_KEY" in message
    assert "testapp.Secret.token" in message
    assert "no configured key decrypts" not in message
    with pytest.raises(InvalidKeyError, match="ENCRYPTION_KEY"):
        Connection.objects.create(name="x", options={"client_secret": "plain"})


# Every read shape, strict mode and a ciphertext no key opens --------------------------------------
# The refused value is planted with raw SQL; the report must show neither it, nor the row's
# other decrypted secrets, nor the previous row's, and must still name the field and the row.

LEFT_BEHIND = "LEFT-BEHIND-4711"
UNSEEN = (LEFT_BEHIND, EARLIER_TOKEN, EARLIER_NOTES, SAME_ROW_TOKEN, EARLIER_JSON)


def write_raw(model: type, pk: object, column: str, value: object) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(model._meta.db_table)} SET {qn(column)} = %s WHERE id = %s", [value, pk]
        )


def bad_value(strict: bool) -> str:
    return LEFT_BEHIND if strict else tampered()


def seed_secret(strict: bool) -> int:
    Secret.objects.create(label="one", token=EARLIER_TOKEN, notes=EARLIER_NOTES)
    bad = Secret.objects.create(label="two", token=SAME_ROW_TOKEN, notes="replaced below")
    write_raw(Secret, bad.pk, "notes", bad_value(strict))
    return bad.pk


def seed_account(strict: bool) -> int:
    GuardAccount.objects.create(name="one", client_secret=EARLIER_TOKEN)
    bad = GuardAccount.objects.create(name="two", client_secret="replaced below")
    GuardVaultItem.objects.create(account=bad, secret=EARLIER_NOTES)
    write_raw(GuardAccount, bad.pk, "client_secret", bad_value(strict))
    return bad.pk


def seed_item(strict: bool) -> int:
    account = GuardAccount.objects.create(name="one", client_secret=EARLIER_TOKEN)
    GuardVaultItem.objects.create(account=account, secret=EARLIER_NOTES)
    bad = GuardVaultItem.objects.create(account=account, secret="replaced below")
    write_raw(GuardVaultItem, bad.pk, "secret", bad_value(strict))
    return bad.pk


def seed_connection(strict: bool) -> int:
    Connection.objects.create(name="one", options={"client_secret": EARLIER_JSON})
    bad = Connection.objects.create(name="two", options={"client_secret": "x"})
    stored = {
        "client_id": "abc",
        "app_secret": encrypt_value(SAME_ROW_TOKEN),
        "configuration": {"client_secret": bad_value(strict)},
    }
    write_raw(Connection, bad.pk, "options", json.dumps(stored))
    return bad.pk


def seed_private_key(strict: bool) -> int:
    PrivateKey.objects.create(name="one", pem=EARLIER_TOKEN, bundle=EARLIER_NOTES)
    bad = PrivateKey.objects.create(name="two", pem="replaced below", bundle=SAME_ROW_TOKEN)
    write_raw(PrivateKey, bad.pk, "pem", LEFT_BEHIND if strict else "env:v1:" + "A" * 60)
    return bad.pk


def seed_tenant(strict: bool) -> tuple[str, str]:
    # A composite primary key, which Django folds into a tuple in the rows above the converter.
    TenantCredential.objects.create(tenant="t", name="a", secret=EARLIER_TOKEN)
    TenantCredential.objects.create(tenant="t", name="b", secret=SAME_ROW_TOKEN, options={})
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(TenantCredential._meta.db_table)} SET options = %s WHERE name = 'b'",
            [json.dumps({"client_secret": bad_value(strict)})],
        )
    return ("t", "b")


SECRETS = Secret.objects.order_by("id")
RAW_SECRETS = f"SELECT * FROM {Secret._meta.db_table} ORDER BY id"
SHAPES = {
    "instances": (seed_secret, "Secret.notes", lambda pk: list(SECRETS.all())),
    "get": (seed_secret, "Secret.notes", lambda pk: Secret.objects.get(pk=pk)),
    "iterator": (seed_secret, "Secret.notes", lambda pk: list(SECRETS.iterator())),
    "iterator_chunks": (
        seed_secret,
        "Secret.notes",
        lambda pk: list(SECRETS.iterator(chunk_size=1)),
    ),
    "values": (seed_secret, "Secret.notes", lambda pk: list(SECRETS.values())),
    "values_list": (seed_secret, "Secret.notes", lambda pk: list(SECRETS.values_list())),
    "flat": (
        seed_secret,
        "Secret.notes",
        lambda pk: list(SECRETS.values_list("notes", flat=True)),
    ),
    "named": (
        seed_secret,
        "Secret.notes",
        lambda pk: list(SECRETS.values_list("label", "token", "notes", named=True)),
    ),
    "raw": (seed_secret, "Secret.notes", lambda pk: list(Secret.objects.raw(RAW_SECRETS))),
    "only": (seed_secret, "Secret.notes", lambda pk: list(SECRETS.only("token", "notes"))),
    "deferred": (seed_secret, "Secret.notes", lambda pk: SECRETS.defer("notes").get(pk=pk).notes),
    "in_bulk": (seed_secret, "Secret.notes", lambda pk: SECRETS.in_bulk([pk - 1, pk])),
    "in_bulk_all": (seed_secret, "Secret.notes", lambda pk: SECRETS.in_bulk()),
    "fk": (
        seed_account,
        "GuardAccount.client_secret",
        lambda pk: GuardVaultItem.objects.get(account_id=pk).account,
    ),
    "select_related": (
        seed_account,
        "GuardAccount.client_secret",
        lambda pk: list(GuardVaultItem.objects.select_related("account")),
    ),
    "prefetch": (
        seed_item,
        "GuardVaultItem.secret",
        lambda pk: list(GuardAccount.objects.prefetch_related("items")),
    ),
    "reverse": (
        seed_item,
        "GuardVaultItem.secret",
        lambda pk: list(GuardAccount.objects.get().items.order_by("id")),
    ),
    "composite": (
        seed_tenant,
        "TenantCredential.options",
        lambda pk: list(
            TenantCredential.objects.order_by("name").values_list("pk", "secret", "options")
        ),
    ),
    "json": (seed_connection, "Connection.options", lambda pk: list(Connection.objects.all())),
    "json_values": (
        seed_connection,
        "Connection.options",
        lambda pk: list(Connection.objects.values_list("name", "options")),
    ),
    "json_key": (
        seed_connection,
        "Connection.options",
        lambda pk: list(Connection.objects.values("options__configuration")),
    ),
    "envelope": (seed_private_key, "PrivateKey.pem", lambda pk: list(PrivateKey.objects.all())),
    "envelope_flat": (
        seed_private_key,
        "PrivateKey.pem",
        lambda pk: list(PrivateKey.objects.values_list("pem", "bundle")),
    ),
}


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "undecryptable"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("debug", [False, True], ids=["debug_off", "debug_on"])
def test_no_read_shape_reports_the_refused_value_or_other_plaintext(shape, strict, debug):
    seed, field, read = shape
    pk = seed(strict)
    with override_settings(DEBUG=debug, ENCRYPTION_REJECT_PLAINTEXT=strict):
        with pytest.raises(DecryptionError) as caught:
            read(pk)
        text = both_reports(caught.value)
    assert f"testapp.{field}" in str(caught.value)
    assert f"primary key {pk!r}" in str(caught.value)
    leaked = [plaintext for plaintext in UNSEEN if plaintext in text]
    assert not leaked, leaked


def test_the_unseen_values_are_what_the_rows_hold():
    # Guards the test above against seeds that never store what it looks for.
    pk = seed_secret(strict=True)
    with override_settings(ENCRYPTION_REJECT_PLAINTEXT=False):
        assert Secret.objects.get(pk=pk).notes == LEFT_BEHIND
        assert Secret.objects.get(pk=pk).token == SAME_ROW_TOKEN
        assert Secret.objects.get(pk=pk - 1).notes == EARLIER_NOTES


def test_blanking_leaves_the_callers_own_lists_alone():
    # GuardVaultItem rows are four columns wide, as this list of accounts is long: only Django's
    # row variables are blanked, never a list of the caller's that happens to be as long.
    accounts = [GuardAccount.objects.create(name=f"a{i}") for i in range(4)]
    item = GuardVaultItem.objects.create(account=accounts[0], secret="replaced below")
    write_raw(GuardVaultItem, item.pk, "secret", LEFT_BEHIND)
    with override_settings(ENCRYPTION_REJECT_PLAINTEXT=True), pytest.raises(DecryptionError):
        prefetch_related_objects(accounts, "items")
    assert all(isinstance(account, GuardAccount) for account in accounts)


def test_from_db_value_called_directly_still_raises():
    connection_ = connection
    field = Secret._meta.get_field("notes")
    strict = override_settings(ENCRYPTION_REJECT_PLAINTEXT=True)
    with strict, pytest.raises(DecryptionError, match="strict mode refuses plaintext"):
        field.from_db_value(LEFT_BEHIND, None, connection_)
    assert field.from_db_value(encrypt_value("kept"), None, connection_) == "kept"
