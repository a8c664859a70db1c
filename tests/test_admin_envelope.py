"""The admin on envelope fields: the example's signing keys and DKIM keys (``env:v1``).

The badge names the provider and key that wrapped the data key, never "legacy plaintext" for an
``env:v1`` value; the change form is write-only, so a save that leaves the key keeps its stored
text byte for byte, and one that types a new key seals it afresh; no page holds the PEM or
any of its ciphertext.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from authhero_encrypt.admin import secret_status
from authhero_encrypt.admin.badges import envelope_status, field_status
from authhero_encrypt.envelope.config import reset_envelope
from authhero_encrypt.envelope.format import parse
from example_project.authhero import models as demo
from example_project.authhero.demo_data import DEMO_ROWS, load_demo_data
from tests.admin_helpers import assert_no_secret, form_data, stored_columns, url
from tests.keys import KEY_A

pytestmark = pytest.mark.django_db

KEYED = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "2026-06"}
NEW_PEM = "-----BEGIN PRIVATE KEY-----\nTkVXLURFTU8tS0VZ\n-----END PRIVATE KEY-----\n"
ENVELOPE_ROWS = [row for row in DEMO_ROWS if row.model in ("SigningKey", "CustomDomain")]


@pytest.fixture
def keyed():
    with override_settings(**KEYED):
        reset_envelope()
        load_demo_data()
        yield


def test_envelope_status_labels():
    assert envelope_status(None) == ("empty", "empty")
    assert envelope_status("") == ("empty", "empty")
    assert envelope_status("-----BEGIN") == ("legacy", "legacy plaintext")
    assert envelope_status("env:v1:local:k1:nope:nope") == ("malformed", "malformed")
    assert envelope_status("enc:v1:broken") == secret_status("enc:v1:broken")
    field = demo.SigningKey._meta.get_field("pkcs7")
    with override_settings(**KEYED):
        stored = field.get_prep_value(NEW_PEM)
        assert field_status(field, stored) == ("encrypted", "envelope, local 2026-06")
    # Without that key configured, its id shows the value cannot be read.
    assert field_status(field, stored) == ("unreadable", "unreadable, key 2026-06 not configured")
    # An enc:v1 field reads such text as legacy plaintext, and says so.
    assert secret_status(stored) == ("legacy", "legacy plaintext")


def test_changelists_show_the_kek_and_no_secret(admin_client, keyed):
    for model in (demo.SigningKey, demo.CustomDomain):
        html = admin_client.get(url(model)).content.decode()
        assert "envelope, local 2026-06" in html
        assert_no_secret(html, ENVELOPE_ROWS)
    html = admin_client.get(url(demo.CustomDomain)).content.decode()
    assert "legacy plaintext" in html  # the legacy DKIM key, before any save


def test_a_save_that_leaves_the_key_keeps_it_byte_for_byte(admin_client, keyed):
    obj = demo.SigningKey.objects.get(kid="demo-signing-key-1")
    before = stored_columns(obj)["pkcs7"]
    change = url(demo.SigningKey, "change", obj.pk)
    page = admin_client.get(change).content.decode()
    assert "Currently: envelope, local 2026-06." in page
    assert_no_secret(page, ENVELOPE_ROWS)
    data = {**form_data(page, demo.SigningKey), "type": "jwt_signing_renamed"}
    assert data["pkcs7"] == ""  # write-only: posted empty when untouched
    assert admin_client.post(change, data).status_code == 302
    assert stored_columns(obj)["pkcs7"] == before
    assert demo.SigningKey.objects.get(pk=obj.pk).type == "jwt_signing_renamed"


def test_a_save_with_a_new_key_seals_it(admin_client, keyed):
    obj = demo.SigningKey.objects.get(kid="demo-signing-key-1")
    before = stored_columns(obj)["pkcs7"]
    change = url(demo.SigningKey, "change", obj.pk)
    data = {**form_data(admin_client.get(change).content.decode(), demo.SigningKey)}
    data["pkcs7"] = NEW_PEM
    assert admin_client.post(change, data).status_code == 302
    stored = stored_columns(obj)["pkcs7"]
    assert stored != before
    assert (parse(stored).provider, parse(stored).key_id) == ("local", "2026-06")
    assert "PRIVATE KEY" not in stored
    assert demo.SigningKey.objects.get(pk=obj.pk).pkcs7 == NEW_PEM
    assert NEW_PEM not in admin_client.get(change).content.decode()


def test_an_untouched_save_seals_a_legacy_dkim_key(admin_client, keyed):
    obj = demo.CustomDomain.objects.get(domain="login.legacy-demo.example.com")
    legacy = stored_columns(obj)["dkim_private_key"]
    assert legacy.startswith("-----BEGIN RSA PRIVATE KEY-----")
    change = url(demo.CustomDomain, "change", obj.pk)
    page = admin_client.get(change).content.decode()
    assert "Currently: legacy plaintext." in page
    assert legacy not in page
    assert admin_client.post(change, form_data(page, demo.CustomDomain)).status_code == 302
    stored = stored_columns(obj)["dkim_private_key"]
    assert parse(stored).key_id == "2026-06"
    assert demo.CustomDomain.objects.get(pk=obj.pk).dkim_private_key == legacy
