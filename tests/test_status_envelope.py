"""``encryption_status`` on envelope columns: counted per provider and key id, never echoed.

Rows are written through the field under two ring keys (``k1``, ``k2``) and raw for the rest:
legacy plaintext, ``""``, an ``enc:v1`` value, text with the ``env:v1:`` prefix that does not
parse (holding a made-up secret that must not appear in any output), and NULL.
"""

from __future__ import annotations

import base64
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from authhero_encrypt.crypto import encrypt_with
from authhero_encrypt.envelope.config import reset_envelope
from authhero_encrypt.keys import Key
from authhero_encrypt.status import status
from tests.keys import KEY_A, KEY_C, RING_K1, RING_K2, SAMPLE_PEM
from tests.testapp.models import PrivateKey

pytestmark = pytest.mark.django_db

K1 = RING_K1
K2 = RING_K2
SECRET = "Sup3r-Secret-Passw0rd"
MALFORMED_TEXT = f"env:v1:local:k1:{SECRET}:AAAA"


def write_raw(pk: Any, value: Any, column: str = "pem") -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(PrivateKey._meta.db_table)} SET {qn(column)} = %s WHERE id = %s",
            [value, pk],
        )


@pytest.fixture
def seeded() -> dict[str, Any]:
    with override_settings(**K1):
        PrivateKey.objects.create(name="a", pem=SAMPLE_PEM)
    with override_settings(**K2):
        PrivateKey.objects.create(name="b", pem="b pem!", bundle="b bundle!")
        PrivateKey.objects.create(name="c", pem="c pem!")
    legacy = PrivateKey.objects.create(name="legacy")
    write_raw(legacy.pk, SAMPLE_PEM)
    write_raw(legacy.pk, "", "bundle")
    enc = PrivateKey.objects.create(name="enc")
    key = Key.from_secret("k1", base64.b64decode(KEY_A))
    write_raw(enc.pk, encrypt_with(key, "enc pem!", prefix="enc:v1:k1:"))
    broken = PrivateKey.objects.create(name="broken")
    write_raw(broken.pk, MALFORMED_TEXT)
    PrivateKey.objects.create(name="null")
    reset_envelope()
    return {"broken": broken.pk}


def run(*args: str, **options: Any) -> str:
    out = StringIO()
    try:
        call_command("encryption_status", *args, stdout=out, stderr=StringIO(), **options)
    except SystemExit as exc:
        out.write(f"[exit {exc.code}]")
    return out.getvalue()


def fields(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["field"]: f for f in report["fields"]}


def test_counts_per_provider_and_key_id(seeded):
    with override_settings(**K2):
        report = json.loads(run("testapp.PrivateKey", format="json"))
    pem = fields(report)["pem"]
    assert pem["format"] == "env:v1"
    assert {k: pem[k] for k in ("encrypted", "plaintext", "empty", "no_value")} == {
        "encrypted": 5,
        "plaintext": 1,
        "empty": 0,
        "no_value": 1,
    }
    assert pem["by_key"] == {"(malformed)": 1, "k1": 1, "local:k1": 1, "local:k2": 2}
    bundle = fields(report)["bundle"]
    assert [bundle[k] for k in ("encrypted", "plaintext", "empty", "no_value")] == [1, 1, 1, 5]
    assert bundle["by_key"] == {"local:k2": 1}
    assert report["key"]["envelope"] == {"provider": "local", "key_id": "k2"}
    # The malformed value is the only one no configured key can read, as far as labels tell.
    assert report["totals"]["unreadable"] == 1
    assert SECRET not in json.dumps(report)


def test_text_names_the_kek_and_never_echoes_a_malformed_value(seeded):
    with override_settings(**K2):
        text = run("testapp.PrivateKey")
    assert "(malformed): 1, k1: 1, local k1: 1, local k2: 2" in text
    assert "Envelope: new data keys are wrapped by local key id k2" in text
    assert SECRET not in text


def test_a_key_missing_from_the_ring_makes_values_unreadable(seeded):
    with override_settings(ENCRYPTION_KEY=KEY_C, ENCRYPTION_KEY_ID="k3"):
        report = json.loads(run("testapp.PrivateKey", format="json"))
    # local:k1, local:k2, the enc:v1 k1 value and the malformed one (bundle's local:k2 too).
    assert report["totals"]["unreadable"] == 6


def test_verify_opens_every_envelope_value_and_names_the_failures(seeded):
    with override_settings(**K2):
        report = status(["testapp.PrivateKey"], verify=True)
    pem, bundle = report.tallies
    assert (pem.checked, pem.failed, pem.failed_pks) == (5, 1, [seeded["broken"]])
    assert pem.first_error is not None
    assert SECRET not in pem.first_error
    assert (bundle.checked, bundle.failed) == (1, 0)
    with override_settings(**{**K2, "ENCRYPTION_KEY_FALLBACKS": []}):
        reset_envelope()
        report = status(["testapp.PrivateKey"], verify=True)
    # Without k1: the value wrapped by k1 and the enc:v1 value under k1 fail too.
    assert report.tallies[0].failed == 3
    assert "k1" in (report.tallies[0].first_error or "")


def test_check_fails_for_plaintext_not_for_values_under_an_older_kek(seeded):
    with override_settings(**K2):
        assert run("testapp.PrivateKey", check=True, verbosity=0) == "[exit 1]"  # plaintext
        PrivateKey.objects.filter(name="legacy").delete()
        # A malformed value no key can read: its prefix shows it, no --verify needed.
        assert run("testapp.PrivateKey", check=True, verbosity=0) == "[exit 1]"
        PrivateKey.objects.filter(name="broken").delete()
        assert run("testapp.PrivateKey", check=True, verbosity=0) == ""  # k1 values: still 0
        assert run("testapp.PrivateKey", check=True, verify=True, verbosity=0) == ""
        # But they are not under the active KEK: the rotation gate holds until they are.
        assert run("testapp.PrivateKey", require_active_key=True, verbosity=0) == "[exit 1]"


def test_aws_kms_values_need_no_key_ring_to_pass_check():
    # A well-formed aws-kms value: a 60-byte wrapped key is enough for the parser.
    blob = base64.urlsafe_b64encode(bytes(60)).decode().rstrip("=")
    body = base64.urlsafe_b64encode(bytes(40)).decode().rstrip("=")
    arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    row = PrivateKey.objects.create(name="kms")
    write_raw(row.pk, f"env:v1:aws-kms:{arn}:{blob}:{body}")
    with override_settings(ENCRYPTION_KEY=None, ENCRYPTION_KEY_FALLBACKS=None):
        report = status(["testapp.PrivateKey"])
        assert report.by_key == {f"aws-kms:{arn}": 1}
        assert report.unreadable == 0
        assert report.ok
        write_raw(row.pk, f"env:v1:local:k1:{blob}:{body}", "bundle")
        assert not status(["testapp.PrivateKey"]).ok  # a local value and no key ring
