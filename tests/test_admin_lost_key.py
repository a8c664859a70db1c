"""The admin with a lost key: rows no configured key opens can be listed, repaired and cleared.

The rows are written under the key id ``2025-01``; the tests then run with only ``2026-06``
configured (the key is lost: its id shows it) or with ``2025-01`` pointing at other key bytes
(the id looks fine; decrypting fails). Every page renders, says ``unreadable`` in red, and holds
no ciphertext, with ``DEBUG=True`` too; saving leaves an unreadable secret byte for byte unless
it is replaced or cleared.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from authhero_encrypt.admin import options
from example_project.authhero import models as demo
from tests.admin_helpers import form_data, stored_columns, url
from tests.keys import KEY_A, KEY_B, KEY_C

pytestmark = pytest.mark.django_db

OLD = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "2025-01", "ENCRYPTION_KEY_FALLBACKS": []}
LOST = {"ENCRYPTION_KEY": KEY_B, "ENCRYPTION_KEY_ID": "2026-06", "ENCRYPTION_KEY_FALLBACKS": []}
WRONG = {**LOST, "ENCRYPTION_KEY_FALLBACKS": [f"2025-01:{KEY_C}"]}
SECRET = "Sup3r-Secret-Passw0rd"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def rows() -> dict[str, Any]:
    with override_settings(**OLD):
        client = demo.Client.objects.create(client_id="lost-1", name="Lost", client_secret=SECRET)
        conn = demo.Connection.objects.create(
            name="lost-conn",
            strategy="oidc",
            options={"client_id": "cid", "client_secret": SECRET, "issuer": "https://x"},
        )
        key = demo.SigningKey.objects.create(kid="lost-kid", cert="public cert", pkcs7=PEM)
    return {"client": client, "conn": conn, "key": key}


def assert_clean(html: str) -> None:
    assert "enc:v1:" not in html
    assert "env:v1:" not in html
    assert SECRET not in html
    assert "MIIEvQIBADANBg" not in html


@pytest.mark.parametrize("settings", [LOST, WRONG], ids=["key-id-not-configured", "wrong-key"])
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_change_pages_render_and_say_unreadable(admin_client, rows, settings, debug):
    with override_settings(**settings, DEBUG=debug):
        for obj in rows.values():
            response = admin_client.get(url(type(obj), "change", obj.pk))
            assert response.status_code == 200, type(obj)
            html = response.content.decode()
            assert "unreadable" in html
            assert_clean(html)
            listed = admin_client.get(url(type(obj))).content.decode()
            assert_clean(listed)
            change = url(type(obj), "change", obj.pk)
            for page in (
                change.replace("/change/", "/delete/"),
                change.replace("/change/", "/history/"),
            ):
                other = admin_client.get(page)
                assert other.status_code == 200, page
                assert_clean(other.content.decode())
            if settings is LOST:
                # Only the id tells, on the list: no decryption there.
                assert "authhero-status-unreadable" in listed
                assert "encrypted, key 2025-01" not in listed


def test_other_fields_save_and_the_unreadable_secret_stays_byte_for_byte(admin_client, rows):
    client, conn, key = rows["client"], rows["conn"], rows["key"]
    with override_settings(**LOST):
        for obj, change in (
            (client, {"name": "Renamed"}),
            (conn, {"strategy": "saml"}),
            (key, {"type": "jwt_other"}),
        ):
            before = stored_columns(obj)
            page = admin_client.get(url(type(obj), "change", obj.pk)).content.decode()
            data = {**form_data(page, type(obj)), **change}
            response = admin_client.post(url(type(obj), "change", obj.pk), data)
            assert response.status_code == 302, response.context["adminform"].form.errors
            assert stored_columns(obj) == before
            field, value = next(iter(change.items()))
            assert type(obj)._default_manager.values_list(field, flat=True).get(pk=obj.pk) == value


def test_an_unreadable_secret_can_be_replaced_or_cleared(admin_client, rows):
    client, key = rows["client"], rows["key"]
    with override_settings(**LOST):
        page = admin_client.get(url(demo.SigningKey, "change", key.pk)).content.decode()
        data = {**form_data(page, demo.SigningKey), "pkcs7": "NEW PEM"}
        assert admin_client.post(url(demo.SigningKey, "change", key.pk), data).status_code == 302
        assert demo.SigningKey.objects.get(pk=key.pk).pkcs7 == "NEW PEM"
        assert stored_columns(key)["pkcs7"].startswith("env:v1:local:2026-06:")
        page = admin_client.get(url(demo.Client, "change", client.pk)).content.decode()
        data = {**form_data(page, demo.Client), "client_secret_clear": "on"}
        assert admin_client.post(url(demo.Client, "change", client.pk), data).status_code == 302
        assert stored_columns(client)["client_secret"] in (None, "")


def test_a_document_with_an_unreadable_leaf_needs_it_replaced_to_change(admin_client, rows):
    conn = rows["conn"]
    with override_settings(**LOST):
        before = stored_columns(conn)
        page = admin_client.get(url(demo.Connection, "change", conn.pk)).content.decode()
        data = form_data(page, demo.Connection)
        edited = data["options"].replace('"https://x"', '"https://y"')
        response = admin_client.post(
            url(demo.Connection, "change", conn.pk), {**data, "options": edited}
        )
        assert response.status_code == 200  # the form again, with the error
        html = response.content.decode()
        assert "cannot be read with the configured keys" in html
        assert_clean(html)
        assert stored_columns(conn) == before
        replaced = edited.replace('"********"', '"typed-again"')
        assert '"typed-again"' in replaced
        response = admin_client.post(
            url(demo.Connection, "change", conn.pk), {**data, "options": replaced}
        )
        assert response.status_code == 302
        options = demo.Connection.objects.get(pk=conn.pk).options
        assert options["client_secret"] == "typed-again"
        assert options["issuer"] == "https://y"


def test_the_technical_500_page_of_a_failure_holds_no_ciphertext(admin_user, rows, monkeypatch):
    # Should a read still fail inside an admin view (here: the lenient load is taken away),
    # Django's debug page prints the locals of every frame; the ORM's frames hold the stored
    # row. The error reaches it without them.
    client = rows["client"]

    def strict(obj: Any, fields: Any, raw_of: Any) -> Any:
        return type(obj)._default_manager.get(pk=obj.pk)  # decrypts: fails

    monkeypatch.setattr(options, "load_leniently", strict)
    browser = Client(raise_request_exception=False)
    browser.force_login(admin_user)
    with override_settings(**LOST, DEBUG=True):
        response = browser.get(url(demo.Client, "change", client.pk))
    assert response.status_code == 500
    html = response.content.decode()
    assert "DecryptionError" in html
    assert "Local vars" in html or "local vars" in html.lower()
    assert_clean(html)
