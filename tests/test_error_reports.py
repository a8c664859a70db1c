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
from django.test import override_settings
from django.views.debug import ExceptionReporter

from authhero_encrypt.crypto import encrypt_value
from authhero_encrypt.exceptions import DecryptionError, InvalidKeyError
from authhero_encrypt.keys import get_keyring
from tests.testapp.models import Connection, Secret

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
