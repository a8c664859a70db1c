"""Status badges: the classification of stored text, and the badges the changelist shows."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import override_settings

from authhero_encrypt.admin import document_status, secret_status
from authhero_encrypt.crypto import encrypt_with
from authhero_encrypt.keys import Key
from example_project.authhero import models as demo
from tests.admin_helpers import url
from tests.keys import KEY_B, KEY_C

pytestmark = pytest.mark.django_db


# Classification ----------------------------------------------------------------------------------


# The key ids the classification tests name are configured: otherwise they are "unreadable".
KNOWN_IDS = override_settings(
    ENCRYPTION_KEY_FALLBACKS=[f"k1:{KEY_B}", f"{'k' * 100}:{KEY_C}"],
)


@KNOWN_IDS
def test_secret_status():
    key = Key.from_secret(None, bytes(range(32)))
    assert secret_status(None) == ("empty", "empty")
    assert secret_status("") == ("empty", "empty")
    assert secret_status("plain") == ("legacy", "legacy plaintext")
    assert secret_status(encrypt_with(key, "x")) == ("encrypted", "encrypted, (no key id)")
    # GCM does not pad: an encrypted empty string is recognised by its length alone.
    assert secret_status(encrypt_with(key, "")) == ("empty", "empty")
    assert secret_status(encrypt_with(key, "x", prefix="enc:v1:k1:")) == (
        "encrypted",
        "encrypted, key k1",
    )
    # A key id is shown only from a value that parses as a whole; anything else is "malformed".
    payload = encrypt_with(key, "x")[len("enc:v1:") :]
    for stored in (
        "enc:v1:<b>:AAAA",
        "enc:v1:Str0ng-Passw0rd_LEAKME:x",
        "enc:v1:Str0ng-Passw0rd_LEAKME",
        f"enc:v1:Str0ng-Passw0rd_LEAKME:{payload[:20]}",  # 15 bytes: truncated
        f"enc:v1:Str0ng Passw0rd LEAKME:{payload}",
        "enc:v1:",
    ):
        assert secret_status(stored) == ("malformed", "malformed")
    # AuthHero writes key ids of any length; a padded payload is well formed too.
    long_id = "k" * 100
    assert secret_status(f"enc:v1:{long_id}:{payload}") == (
        "encrypted",
        f"encrypted, key {long_id}",
    )
    padded = payload + "=" * (-len(payload) % 4)
    assert secret_status(f"enc:v1:k1:{padded}") == ("encrypted", "encrypted, key k1")
    assert secret_status("enc:v1:k1:" + encrypt_with(key, "", pad=True)[7:]) == ("empty", "empty")


@KNOWN_IDS
def test_document_status():
    field = demo.Connection._meta.get_field("options")
    trie = field.path_trie
    key = Key.from_secret(None, bytes(range(32)))
    one, two = encrypt_with(key, "a", prefix="enc:v1:k1:"), encrypt_with(key, "b")
    assert document_status(trie, None) == ("empty", "empty")
    assert document_status(trie, {"client_id": "x"}) == ("empty", "empty")
    assert document_status(trie, {"client_secret": one}) == ("encrypted", "encrypted, key k1")
    assert document_status(trie, {"client_secret": one, "app_secret": two}) == (
        "encrypted",
        "encrypted, several keys",
    )
    assert document_status(trie, {"client_secret": one, "app_secret": "p"}) == (
        "legacy",
        "legacy plaintext",
    )
    leak = "enc:v1:Str0ng-Passw0rd_LEAKME:x"
    assert document_status(trie, {"client_secret": leak, "app_secret": "p"}) == (
        "malformed",
        "malformed",
    )


# In the changelist -------------------------------------------------------------------------------


def test_list_badges_follow_what_is_stored(admin_client, demo_rows):
    html = admin_client.get(url(demo.Client)).content.decode()
    cells = dict(
        re.findall(
            r'<th class="field-client_id"><a [^>]*>([^<]+)</a></th>.*?<span[^>]*>([^<]+)<', html
        )
    )
    assert cells == {
        "demo-backend-7b21e0": "encrypted, (no key id)",
        "demo-m2m-4d88c2": "encrypted, (no key id)",
        "demo-spa-1f3c9a": "empty",
        "legacy-portal-9e01aa": "legacy plaintext",
    }
    html = admin_client.get(url(demo.Connection)).content.decode()
    assert 'title="client_secret: legacy plaintext">legacy plaintext</span>' in html
    assert (
        'title="configuration.client_secret: encrypted, (no key id)">encrypted, (no key id)</span>'
        in html
    )


@override_settings(ENCRYPTION_KEY_ID="k2026")
def test_badge_names_the_key_id(admin_client):
    obj = demo.Client.objects.create(client_id="keyed", name="k", client_secret="s-keyed-1")
    assert demo.Client.objects.filter(pk=obj.pk).exists()
    html = admin_client.get(url(demo.Client)).content.decode()
    assert ">encrypted, key k2026</span>" in html
    html = admin_client.get(url(demo.Client, "change", obj.pk)).content.decode()
    assert "Currently: encrypted, key k2026." in html


def test_changelist_lists_rows_no_configured_key_opens(admin_client):
    # Written with another key under an id this project does not know: the list never
    # decrypts, so it still shows the row, says it cannot be read (red, not the green
    # "encrypted") and which key it needs.
    foreign = encrypt_with(Key.from_secret("old", bytes(range(32, 64))), "x", prefix="enc:v1:old:")
    obj = demo.Client.objects.create(client_id="foreign-key-row", name="f")
    table = connection.ops.quote_name(demo.Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET client_secret = %s WHERE id = %s", [foreign, obj.pk])
    html = admin_client.get(url(demo.Client)).content.decode()
    assert "foreign-key-row" in html
    assert "authhero-status-unreadable" in html
    assert ">unreadable, key old not configured</span>" in html
    assert ">encrypted, key old</span>" not in html
    assert "enc:v1:" not in html


def test_changelist_never_echoes_a_malformed_value(admin_client, demo_rows):
    obj = demo.Client.objects.get(client_id="demo-backend-7b21e0")
    table = connection.ops.quote_name(demo.Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET client_secret = %s WHERE id = %s",
            ["enc:v1:Str0ng-Passw0rd_LEAKME:x", obj.pk],
        )
    html = admin_client.get(url(demo.Client)).content.decode()
    assert "demo-backend-7b21e0" in html
    assert "LEAKME" not in html
    assert '<span class="authhero-status authhero-status-malformed">malformed</span>' in html
