"""Multi-line secrets in the admin: text fields edit in a write-only textarea.

A PEM pasted into the textarea reaches the server with CRLF newlines (browsers submit every
textarea newline so); it is stored with LF, as the file held it, and reads back byte for byte.
"""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

from authhero_encrypt.admin.formfields import WriteOnlySecretField, secret_formfield
from authhero_encrypt.admin.widgets import WriteOnlySecretWidget
from authhero_encrypt.fields import EncryptedTextField
from example_project.authhero import models as demo
from tests.admin_helpers import form_data, stored_columns, url
from tests.keys import KEY_A

pytestmark = pytest.mark.django_db

KEYED = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "2026-06", "ENCRYPTION_KEY_FALLBACKS": []}
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "\n".join("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC" + str(n) for n in range(8))
    + "\n-----END PRIVATE KEY-----\n"
)


def test_text_fields_get_a_textarea_char_fields_a_password_input():
    text = secret_formfield(EncryptedTextField(blank=True))
    assert isinstance(text, WriteOnlySecretField)
    assert isinstance(text.widget, WriteOnlySecretWidget)
    assert text.widget.multiline
    html = str(text.widget.render("notes", ["typed secret\nline two", False]))
    assert "<textarea" in html
    assert "typed secret" not in html  # never rendered with a value
    assert 'type="password"' not in html
    char = secret_formfield(demo.Client._meta.get_field("client_secret"))
    assert not char.widget.multiline
    assert 'type="password"' in str(char.widget.render("s", ["x", False]))


def test_crlf_from_the_browser_is_stored_as_lf():
    field = secret_formfield(EncryptedTextField(blank=True))
    field.configure(keep_current=True, help_text="")
    assert field.clean([PEM.replace("\n", "\r\n"), False]) == PEM
    assert field.clean(["", False]).value == "keep"
    assert field.clean(["", True]).value == "clear"


@override_settings(**KEYED)
def test_a_pem_posted_with_crlf_reads_back_byte_identical(admin_client):
    key = demo.SigningKey.objects.create(kid="pem-kid", cert="c", pkcs7="old pem")
    page = admin_client.get(url(demo.SigningKey, "change", key.pk)).content.decode()
    textarea = re.search(r'<textarea name="pkcs7"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert textarea is not None
    assert textarea.group(1).strip() == ""  # write-only: never the stored value
    assert "old pem" not in page
    data = {**form_data(page, demo.SigningKey), "pkcs7": PEM.replace("\n", "\r\n")}
    response = admin_client.post(url(demo.SigningKey, "change", key.pk), data)
    assert response.status_code == 302
    assert demo.SigningKey.objects.get(pk=key.pk).pkcs7.encode() == PEM.encode()
    stored = stored_columns(key)["pkcs7"]
    assert stored.startswith("env:v1:local:2026-06:")
    # Left blank: kept byte for byte.
    page = admin_client.get(url(demo.SigningKey, "change", key.pk)).content.decode()
    data = {**form_data(page, demo.SigningKey), "type": "jwt_other"}
    assert admin_client.post(url(demo.SigningKey, "change", key.pk), data).status_code == 302
    assert stored_columns(key)["pkcs7"] == stored
