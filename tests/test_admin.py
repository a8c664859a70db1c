"""The admin mixin, through Django's test client on the example project's admin.

Forms are posted as a browser would post them: the fields are read back from the rendered HTML
(so a secret that leaked into a value attribute would be posted, and caught), never built from
the form object. What is at rest is read with raw cursor queries.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import pytest
from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.signals import got_request_exception
from django.db import connection, models, transaction
from django.db.models.signals import post_save, pre_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.views.debug import ExceptionReporter

from authhero_encrypt.admin import (
    MASK,
    RETYPE,
    EncryptedFieldsAdminMixin,
    JSONKeyColumn,
    MaskedJSONField,
    WriteOnlySecretField,
    document_status,
    secret_status,
)
from authhero_encrypt.admin import columns as admin_columns
from authhero_encrypt.admin.badges import leaf_statuses
from authhero_encrypt.admin.sensitive import mark_secrets_sensitive
from authhero_encrypt.crypto import decrypt_value, encrypt_with, is_encrypted
from authhero_encrypt.fields import EncryptedCharField, JSONPathEncryptedField
from authhero_encrypt.inventory import encrypted_fields, load_json
from authhero_encrypt.keys import Key
from example_project.authhero import demo_data
from example_project.authhero import models as demo
from example_project.authhero.demo_data import (
    DEMO_ROWS,
    DemoRow,
    load_demo_data,
    secret_values,
    write_plaintext,
)
from tests.testapp.models import Secret, Swapped

pytestmark = pytest.mark.django_db

DEMO_MODELS = sorted({row.model for row in DEMO_ROWS})
EDITABLE_ROWS = [row for row in DEMO_ROWS if row.model != "SigningKey"]


# Helpers -----------------------------------------------------------------------------------------


class _FormReader(HTMLParser):
    """The name/value pairs a browser would submit for the form with ``form_id``."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, str] = {}
        self.textarea: str | None = None
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.inside = attr.get("id") == self.form_id
        if not self.inside or ("name" not in attr and tag != "option"):
            return
        if tag == "input":
            kind = attr.get("type", "text")
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attr:
                    self.data[attr["name"]] = attr.get("value", "on")
                return
            self.data[attr["name"]] = attr.get("value", "")
        elif tag == "textarea":
            self.textarea = attr["name"]
            self.data[self.textarea] = ""
        elif tag == "select":
            self.select = attr["name"]
        elif tag == "option" and self.select and "selected" in attr:
            self.data[self.select] = attr.get("value", "")

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.data[self.textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea" and self.textarea is not None:
            # Browsers drop the one newline that follows <textarea>.
            text = self.data[self.textarea]
            self.data[self.textarea] = text[1:] if text.startswith("\n") else text
            self.textarea = None
        elif tag == "select":
            self.select = None
        elif tag == "form":
            self.inside = False


def form_data(html: str, model: type[models.Model]) -> dict[str, str]:
    reader = _FormReader(f"{model._meta.model_name}_form")
    reader.feed(html)
    assert reader.data, "no change form in the page"
    return reader.data


def url(model: type[models.Model], action: str = "changelist", pk: Any = None) -> str:
    meta = model._meta
    base = f"/admin/{meta.app_label}/{meta.model_name}/"
    if action == "changelist":
        return base
    if action == "add":
        return base + "add/"
    return f"{base}{pk}/change/"


def stored_columns(obj: models.Model) -> dict[str, Any]:
    """Every encrypted column of ``obj`` exactly as stored."""
    fields = encrypted_fields(type(obj))
    if type(obj) is demo.SigningKey:
        fields = [obj._meta.get_field("pkcs7")]
    table = connection.ops.quote_name(obj._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    pk = connection.ops.quote_name(obj._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {pk} = %s", [obj.pk])
        row = cursor.fetchone()
    return {f.name: value for f, value in zip(fields, row, strict=False)}


def ciphertexts(stored: dict[str, Any]) -> list[str]:
    """The enc:v1 values inside stored columns (scalars, and leaves of JSON documents)."""
    found: list[str] = []
    for value in stored.values():
        if isinstance(value, (str, bytes)):
            text = value.decode() if isinstance(value, bytes) else value
            found += re.findall(r"enc:v1:[A-Za-z0-9_:-]+", text)
    return found


def assert_no_secret(html: str, rows: Any = DEMO_ROWS) -> None:
    """Neither a demo secret nor any stored ciphertext (nor its payload) is in ``html``."""
    assert "enc:v1:" not in html
    for row in rows:
        for secret in secret_values(row):
            assert secret not in html, f"{row.model} secret leaked"
            assert json.dumps(secret)[1:-1] not in html
        obj = row.model_class._default_manager.get(**row.lookup)
        for stored in ciphertexts(stored_columns(obj)):
            assert stored.rpartition(":")[2][:24] not in html


def obj_of(row: DemoRow) -> Any:
    return row.model_class._default_manager.get(**row.lookup)


def stored_states(obj: models.Model) -> dict[str, set[str]]:
    """The badge states of every encrypted column of ``obj`` as stored (each leaf of a document)."""
    states: dict[str, set[str]] = {}
    for field in encrypted_fields(type(obj)):
        stored = stored_columns(obj)[field.name]
        if isinstance(field, JSONPathEncryptedField):
            leaves = leaf_statuses(field.path_trie, load_json(stored))
            states[field.name] = {state for _path, state, _label in leaves}
        else:
            states[field.name] = {secret_status(stored)[0]}
    return states


def assert_saved(row: DemoRow, before: dict[str, Any]) -> None:
    """After an untouched save: ciphertext kept byte for byte, legacy plaintext now encrypted.

    A document that held legacy plaintext is written whole, so its other leaves are encrypted
    afresh; every value still reads back as the demo's plaintext.
    """
    obj = obj_of(row)
    after = stored_columns(obj)
    for name, states in stored_states(obj).items():
        assert "legacy" not in states, f"{row.model}.{name} still holds legacy plaintext"
        if not row.legacy:
            assert after[name] == before[name]
        if name in row.values:
            field: Any = obj._meta.get_field(name)
            assert field.value_from_object(obj) == row.values[name]


@pytest.fixture
def demo_rows() -> tuple[DemoRow, ...]:
    created, legacy = load_demo_data()
    assert (created, legacy) == (len(DEMO_ROWS), sum(row.legacy for row in DEMO_ROWS))
    return DEMO_ROWS


# List and change pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", DEMO_MODELS)
def test_changelist_shows_identifiers_and_no_secret(admin_client, demo_rows, model_name):
    model = apps.get_model("authhero", model_name)
    response = admin_client.get(url(model))
    assert response.status_code == 200
    html = response.content.decode()
    for row in demo_rows:
        if row.model == model_name:
            assert row.shown in html
    assert_no_secret(html)


@pytest.mark.parametrize("row", DEMO_ROWS, ids=lambda row: f"{row.model}-{row.shown}")
def test_change_page_shows_identifier_and_no_secret(admin_client, demo_rows, row):
    response = admin_client.get(url(row.model_class, "change", obj_of(row).pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert row.shown in html
    assert_no_secret(html)


def test_list_badges_follow_what_is_stored(admin_client, demo_rows):
    html = admin_client.get(url(demo.Client)).content.decode()
    cells = dict(
        re.findall(
            r'<th class="field-client_id"><a [^>]*>([^<]+)</a></th>.*?<span[^>]*>([^<]+)<', html
        )
    )
    assert cells == {
        "demo-backend-7b21e0": "encrypted",
        "demo-m2m-4d88c2": "encrypted",
        "demo-spa-1f3c9a": "empty",
        "legacy-portal-9e01aa": "legacy plaintext",
    }
    html = admin_client.get(url(demo.Connection)).content.decode()
    assert 'title="client_secret: legacy plaintext">legacy plaintext</span>' in html
    assert 'title="configuration.client_secret: encrypted">encrypted</span>' in html


@override_settings(ENCRYPTION_KEY_ID="k2026")
def test_badge_names_the_key_id(admin_client):
    obj = demo.Client.objects.create(client_id="keyed", name="k", client_secret="s-keyed-1")
    assert demo.Client.objects.filter(pk=obj.pk).exists()
    html = admin_client.get(url(demo.Client)).content.decode()
    assert ">encrypted, key k2026</span>" in html
    html = admin_client.get(url(demo.Client, "change", obj.pk)).content.decode()
    assert "Currently: encrypted, key k2026." in html


def test_changelist_reads_stored_forms_without_a_query_per_row(admin_client, demo_rows):
    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert admin_client.get(url(demo.Connection)).status_code == 200
        return len(context.captured_queries)

    before = queries()
    for index in range(10):
        demo.Connection.objects.create(
            name=f"extra-{index}", strategy="oidc", options={"client_id": f"x{index}"}
        )
    assert queries() == before


def test_changelist_lists_rows_no_configured_key_opens(admin_client):
    # Written with another key under an id this project does not know: the list never
    # decrypts, so it still shows the row and says which key it needs.
    foreign = encrypt_with(Key.from_secret("old", bytes(range(32, 64))), "x", prefix="enc:v1:old:")
    obj = demo.Client.objects.create(client_id="foreign-key-row", name="f")
    table = connection.ops.quote_name(demo.Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET client_secret = %s WHERE id = %s", [foreign, obj.pk])
    html = admin_client.get(url(demo.Client)).content.decode()
    assert "foreign-key-row" in html
    assert ">encrypted, key old</span>" in html
    assert "enc:v1:" not in html


# Saving ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", EDITABLE_ROWS, ids=lambda row: f"{row.model}-{row.shown}")
def test_saving_an_untouched_form_keeps_ciphertext_and_encrypts_legacy(
    admin_client, demo_rows, row
):
    obj = obj_of(row)
    before = stored_columns(obj)
    page = admin_client.get(url(row.model_class, "change", obj.pk)).content.decode()
    response = admin_client.post(
        url(row.model_class, "change", obj.pk), form_data(page, row.model_class)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert_saved(row, before)


def test_changing_another_field_keeps_the_secret_byte_for_byte(admin_client, demo_rows):
    obj = demo.Client.objects.get(client_id="demo-backend-7b21e0")
    before = stored_columns(obj)["client_secret"]
    page = admin_client.get(url(demo.Client, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Client), "name": "Renamed backend"}
    assert admin_client.post(url(demo.Client, "change", obj.pk), data).status_code == 302
    assert stored_columns(obj)["client_secret"] == before
    assert demo.Client.objects.get(pk=obj.pk).name == "Renamed backend"


def test_untouched_legacy_secret_is_encrypted_by_the_save(admin_client, demo_rows):
    obj = demo.AuthenticationMethod.objects.get(user_id="auth0|bob-legacy")
    assert stored_columns(obj)["totp_secret"] == "KRUGS4ZANFZSAYJA"
    page = admin_client.get(url(demo.AuthenticationMethod, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.AuthenticationMethod), "type": "totp-renamed"}
    assert data["totp_secret"] == ""  # untouched: the write-only input is posted empty
    response = admin_client.post(url(demo.AuthenticationMethod, "change", obj.pk), data)
    assert response.status_code == 302
    stored = stored_columns(obj)["totp_secret"]
    assert is_encrypted(stored)
    assert decrypt_value(stored) == "KRUGS4ZANFZSAYJA"
    assert demo.AuthenticationMethod.objects.get(pk=obj.pk).type == "totp-renamed"


def test_setting_a_secret_encrypts_the_new_value(admin_client, demo_rows):
    obj = demo.Client.objects.get(client_id="legacy-portal-9e01aa")
    page = admin_client.get(url(demo.Client, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Client), "client_secret": "brand-new-secret-1"}
    assert admin_client.post(url(demo.Client, "change", obj.pk), data).status_code == 302
    stored = stored_columns(obj)["client_secret"]
    assert is_encrypted(stored)
    assert decrypt_value(stored) == "brand-new-secret-1"
    assert demo.Client.objects.get(pk=obj.pk).client_secret == "brand-new-secret-1"


@pytest.mark.parametrize(
    ("model", "lookup", "field"),
    [
        (demo.Client, {"client_id": "demo-m2m-4d88c2"}, "client_secret"),
        (demo.AuthenticationMethod, {"user_id": "auth0|alice-demo"}, "totp_secret"),
    ],
)
def test_clearing_a_secret(admin_client, demo_rows, model, lookup, field):
    obj = model._default_manager.get(**lookup)
    page = admin_client.get(url(model, "change", obj.pk)).content.decode()
    data = {**form_data(page, model), f"{field}_clear": "on"}
    assert admin_client.post(url(model, "change", obj.pk), data).status_code == 302
    assert stored_columns(obj)[field] is None
    html = admin_client.get(url(model)).content.decode()
    assert "authhero-status-empty" in html


def test_clearing_a_required_secret_is_refused(admin_client):
    obj = Swapped.objects.create(token="needed-token-1")
    before = stored_columns(obj)
    page = admin_client.get(url(Swapped, "change", obj.pk)).content.decode()
    data = {**form_data(page, Swapped), "token_clear": "on"}
    response = admin_client.post(url(Swapped, "change", obj.pk), data)
    assert response.status_code == 200
    assert "it cannot be cleared" in response.content.decode()
    assert stored_columns(obj) == before


def test_new_value_and_clear_together_are_refused(admin_client, demo_rows):
    obj = demo.Client.objects.get(client_id="demo-m2m-4d88c2")
    page = admin_client.get(url(demo.Client, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Client), "client_secret": "typed-9", "client_secret_clear": "on"}
    response = admin_client.post(url(demo.Client, "change", obj.pk), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "not both" in html
    assert "typed-9" not in html


def test_a_typed_secret_is_not_echoed_after_a_validation_error(admin_client, demo_rows):
    obj = demo.Client.objects.get(client_id="demo-m2m-4d88c2")
    before = stored_columns(obj)
    page = admin_client.get(url(demo.Client, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Client), "name": "", "client_secret": "typed-secret-XY7"}
    response = admin_client.post(url(demo.Client, "change", obj.pk), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in html
    assert "typed-secret-XY7" not in html
    assert stored_columns(obj) == before
    assert_no_secret(html)


def test_add_view_encrypts_and_requires_a_required_secret(admin_client):
    page = admin_client.get(url(demo.Client, "add")).content.decode()
    assert "clear the stored value" not in page
    data = {**form_data(page, demo.Client), "client_id": "added-1", "name": "Added"}
    data["client_secret"] = "added-secret-1"
    assert admin_client.post(url(demo.Client, "add"), data).status_code == 302
    obj = demo.Client.objects.get(client_id="added-1")
    assert decrypt_value(stored_columns(obj)["client_secret"]) == "added-secret-1"

    page = admin_client.get(url(Swapped, "add")).content.decode()
    response = admin_client.post(url(Swapped, "add"), form_data(page, Swapped))
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Swapped.objects.exists()


def test_history_and_delete_pages_show_no_secret(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="google-oauth2")
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Connection), "strategy": "google"}
    admin_client.post(url(demo.Connection, "change", obj.pk), data)
    base = url(demo.Connection, "change", obj.pk).removesuffix("change/")
    for page_url in (base + "history/", base + "delete/"):
        response = admin_client.get(page_url)
        assert response.status_code == 200
        assert_no_secret(response.content.decode())


def test_delete_selected_action(admin_client, demo_rows):
    pks = list(
        demo.Client.objects.filter(client_id__startswith="demo-").values_list("pk", flat=True)
    )
    data = {"action": "delete_selected", "_selected_action": pks}
    confirmation = admin_client.post(url(demo.Client), data)
    assert confirmation.status_code == 200
    assert_no_secret(confirmation.content.decode())
    response = admin_client.post(url(demo.Client), {**data, "post": "yes"})
    assert response.status_code == 302
    assert list(demo.Client.objects.values_list("client_id", flat=True)) == ["legacy-portal-9e01aa"]


# JSON documents ----------------------------------------------------------------------------------


def options_of(obj: demo.Connection) -> Any:
    return load_json(stored_columns(obj)["options"])


def test_json_form_masks_secrets_and_shows_the_rest(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="corporate-oidc")
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    document = json.loads(form_data(page, demo.Connection)["options"])
    assert document == {
        "client_id": "oidc-demo-client-31",
        "configuration": {"issuer": "https://idp.example.com", "client_secret": MASK},
    }
    assert "Currently: configuration.client_secret: encrypted." in page


def test_json_mask_sent_back_keeps_the_secret_while_other_keys_change(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="google-oauth2")
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = form_data(page, demo.Connection)
    document = json.loads(data["options"])
    document["client_id"] = "changed.apps.googleusercontent.com"
    data["options"] = json.dumps(document)
    assert admin_client.post(url(demo.Connection, "change", obj.pk), data).status_code == 302
    stored = options_of(obj)
    # The changed document is written whole, so the kept secret is encrypted afresh.
    assert is_encrypted(stored["client_secret"])
    assert decrypt_value(stored["client_secret"]) == "GOCSPX-demo-google-5Rk8sLq"
    assert stored["client_id"] == "changed.apps.googleusercontent.com"


@pytest.mark.parametrize(
    ("name", "secrets"),
    [
        ("corporate-oidc", {("configuration", "client_secret"): "oidc-demo-config-3e7aVn"}),
        ("legacy-github", {("client_secret",): "gh-legacy-demo-5b0cTt"}),
    ],
)
def test_json_kept_secrets_are_plaintext_on_the_saved_instance(
    admin_client, demo_rows, name, secrets
):
    # save_model and post_save receivers see what the application always sees: never the
    # stored ciphertext of a masked leaf.
    seen: list[Any] = []

    def receiver(sender: Any, instance: demo.Connection, **kwargs: Any) -> None:
        seen.append(json.loads(json.dumps(instance.options)))

    obj = demo.Connection.objects.get(name=name)
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = form_data(page, demo.Connection)
    document = json.loads(data["options"])
    document["client_id"] = "changed-client-id"
    data["options"] = json.dumps(document)
    post_save.connect(receiver, sender=demo.Connection)
    try:
        assert admin_client.post(url(demo.Connection, "change", obj.pk), data).status_code == 302
    finally:
        post_save.disconnect(receiver, sender=demo.Connection)
    assert len(seen) == 1
    assert "enc:v1:" not in json.dumps(seen[0])
    stored = options_of(obj)
    for path, plaintext in secrets.items():
        assert _leaf(seen[0], path) == plaintext
        # Legacy plaintext or not before, a written document holds it encrypted.
        assert decrypt_value(_leaf(stored, path)) == plaintext
    assert demo.Connection.objects.get(pk=obj.pk).options == seen[0]


def _leaf(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def test_json_new_value_replaces_only_that_path(admin_client, demo_rows):
    obj = demo.Connection.objects.create(
        name="two-secrets",
        strategy="oidc",
        options={"client_id": "two", "client_secret": "first-1", "app_secret": "second-2"},
    )
    before = options_of(obj)
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = form_data(page, demo.Connection)
    document = json.loads(data["options"])
    assert document == {"client_id": "two", "client_secret": MASK, "app_secret": MASK}
    document["app_secret"] = "second-replaced"
    data["options"] = json.dumps(document)
    assert admin_client.post(url(demo.Connection, "change", obj.pk), data).status_code == 302
    after = options_of(obj)
    assert decrypt_value(after["client_secret"]) == decrypt_value(before["client_secret"])
    assert is_encrypted(after["app_secret"])
    assert decrypt_value(after["app_secret"]) == "second-replaced"


def test_json_legacy_leaf_is_encrypted_by_an_untouched_save(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="legacy-github")
    assert options_of(obj)["client_secret"] == "gh-legacy-demo-5b0cTt"
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Connection), "strategy": "github-renamed"}
    assert admin_client.post(url(demo.Connection, "change", obj.pk), data).status_code == 302
    stored = options_of(obj)
    assert is_encrypted(stored["client_secret"])
    assert decrypt_value(stored["client_secret"]) == "gh-legacy-demo-5b0cTt"
    assert stored["client_id"] == "gh-legacy-demo-client"
    assert demo.Connection.objects.get(pk=obj.pk).strategy == "github-renamed"


def test_json_mask_without_a_stored_value_is_refused(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="facebook")
    before = stored_columns(obj)
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = form_data(page, demo.Connection)
    document = json.loads(data["options"])
    document["twilio_token"] = MASK
    data["options"] = json.dumps(document)
    response = admin_client.post(url(demo.Connection, "change", obj.pk), data)
    assert response.status_code == 200
    assert "“twilio_token” has no stored value to keep" in response.content.decode()
    assert stored_columns(obj) == before


def test_json_typed_secret_is_not_echoed_and_must_be_typed_again(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="facebook")
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = form_data(page, demo.Connection)
    document = json.loads(data["options"])
    document["app_secret"] = "typed-app-secret-Q1"
    data.update(options=json.dumps(document), strategy="")  # strategy is required
    response = admin_client.post(url(demo.Connection, "change", obj.pk), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "typed-app-secret-Q1" not in html
    shown = json.loads(form_data(html, demo.Connection)["options"])
    assert shown == {"client_id": "fb-demo-app-5550101", "app_secret": RETYPE}

    # Sending the page back as it is must not store the marker, nor keep the old secret.
    again = {**form_data(html, demo.Connection), "strategy": "facebook"}
    response = admin_client.post(url(demo.Connection, "change", obj.pk), again)
    assert response.status_code == 200
    assert "Type the value of “app_secret” again" in response.content.decode()


def test_json_invalid_text_is_not_echoed(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="facebook")
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Connection), "options": '{"app_secret": "typed-Zq8", '}
    response = admin_client.post(url(demo.Connection, "change", obj.pk), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "typed-Zq8" not in html
    assert "Enter a valid JSON document" in html
    assert json.loads(form_data(html, demo.Connection)["options"])["app_secret"] == MASK
    assert_no_secret(html)


def test_json_wildcard_masks_every_string(admin_client, demo_rows):
    obj = demo.EmailProvider.objects.get(name="mailgun")
    before = stored_columns(obj)
    page = admin_client.get(url(demo.EmailProvider, "change", obj.pk)).content.decode()
    data = form_data(page, demo.EmailProvider)
    assert json.loads(data["credentials"]) == {
        "api_key": MASK,
        "domain": MASK,
    }
    data["default_from_address"] = "other@demo.example.com"
    assert admin_client.post(url(demo.EmailProvider, "change", obj.pk), data).status_code == 302
    assert stored_columns(obj) == before


# Search and filters ------------------------------------------------------------------------------


def result_links(html: str) -> list[str]:
    """The text of the link in each result row of a changelist."""
    return re.findall(
        r'<th class="field-[^"]+"><a href="[^"]+/change/[^"]*">([^<]+)</a></th>', html
    )


@pytest.mark.parametrize(
    ("model", "term", "found"),
    [
        (demo.Connection, "fb-demo-app-5550101", ["facebook"]),
        (demo.Connection, "googleusercontent", ["google-oauth2"]),
        (demo.Client, "demo-m2m-4d88c2", ["demo-m2m-4d88c2"]),
        (demo.MigrationSource, "auth0-legacy-client", ["auth0-legacy"]),
        (demo.AuthenticationMethod, "auth0|alice", ["auth0|alice-demo"]),
    ],
)
def test_search_by_client_id_finds_the_row(admin_client, demo_rows, model, term, found):
    response = admin_client.get(url(model), {"q": term})
    assert result_links(response.content.decode()) == found


LEGACY_SECRETS = [
    pytest.param(row.model_class, secret, id=f"{row.model}-{secret}")
    for row in DEMO_ROWS
    if row.legacy
    for secret in secret_values(row)
]


@pytest.mark.parametrize(("model", "secret"), LEGACY_SECRETS)
def test_search_never_matches_a_legacy_secret(admin_client, demo_rows, model, secret):
    # Legacy rows hold their secrets as plaintext, so a search field that reached them (the
    # whole options document, say) would find the row: the search must not.
    html = admin_client.get(url(model), {"q": secret}).content.decode()
    assert result_links(html) == []
    assert "0 results" in html


def test_filter_by_strategy(admin_client, demo_rows):
    html = admin_client.get(url(demo.Connection), {"strategy": "oidc"}).content.decode()
    assert result_links(html) == ["corporate-oidc"]


def test_sort_by_json_key_column(admin_client, demo_rows):
    # Column 3 is options.client_id (1: name, 2: strategy).
    html = admin_client.get(url(demo.Connection), {"o": "-3"}).content.decode()
    order = re.findall(r'class="field-options__client_id">([^<]+)<', html)
    assert order == sorted(order, reverse=True)
    assert len(order) == 5


# Read-only views ---------------------------------------------------------------------------------


def test_readonly_field_shows_a_badge_and_no_input(admin_client):
    obj = Secret.objects.create(label="ro", token="tok-ro-1", notes="notes-ro-1")
    before = stored_columns(obj)
    page = admin_client.get(url(Secret, "change", obj.pk)).content.decode()
    assert "notes-ro-1" not in page
    assert 'name="notes"' not in page
    assert re.search(r'field-notes">.*?<span class="authhero-status', page, re.S)
    data = {**form_data(page, Secret), "label": "ro2"}
    assert admin_client.post(url(Secret, "change", obj.pk), data).status_code == 302
    assert stored_columns(obj) == before


def test_view_only_user_sees_badges_and_masked_documents(client, django_user_model, demo_rows):
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_connection", "view_client", "view_emailprovider"]
        )
    )
    client.force_login(user)
    for model, lookup in [
        (demo.Client, {"client_id": "demo-backend-7b21e0"}),
        (demo.Connection, {"name": "corporate-oidc"}),
        (demo.EmailProvider, {"name": "ses"}),
    ]:
        obj = model._default_manager.get(**lookup)
        html = client.get(url(model, "change", obj.pk)).content.decode()
        assert '<input type="password"' not in html
        assert "authhero-status" in html
        assert_no_secret(html)
    obj = demo.Connection.objects.get(name="corporate-oidc")
    html = client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    assert "oidc-demo-client-31" in html
    assert "&quot;client_secret&quot;: &quot;********&quot;" in html


# Status -----------------------------------------------------------------------------------------


def test_secret_status():
    key = Key.from_secret(None, bytes(range(32)))
    assert secret_status(None) == ("empty", "empty")
    assert secret_status("") == ("empty", "empty")
    assert secret_status("plain") == ("legacy", "legacy plaintext")
    assert secret_status(encrypt_with(key, "x")) == ("encrypted", "encrypted")
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


def test_json_key_column():
    column = JSONKeyColumn("options", "configuration.client_id")
    assert column.admin_order_field == "options__configuration__client_id"
    assert column.short_description == "options.configuration.client_id"
    for bad in ("", "a..b", "a."):
        with pytest.raises(ValueError, match="dot-separated key path"):
            JSONKeyColumn("options", bad)


def test_json_key_column_on_a_secret_path_shows_a_badge():
    obj = demo.Connection.objects.create(name="c", strategy="s", options={"client_secret": "zz9"})
    obj = demo.Connection.objects.get(pk=obj.pk)
    assert JSONKeyColumn("options", "client_secret")(obj) == (
        '<span class="authhero-status authhero-status-encrypted">encrypted</span>'
    )
    assert JSONKeyColumn("options", "missing")(obj) is None


# Admin options that reach secrets ----------------------------------------------------------------


def custom_admin(model: type[models.Model], **options: Any) -> admin.ModelAdmin:
    """An instance of a mixin admin with ``options``, on the default site but not registered."""
    attrs = {"__module__": __name__, **options}
    cls = type(f"Custom{model.__name__}Admin", (EncryptedFieldsAdminMixin, admin.ModelAdmin), attrs)
    return cls(model, admin.site)


def render(response: Any) -> str:
    response.render()
    return response.content.decode()


@pytest.fixture
def admin_request(rf, admin_user):
    def build(model: type[models.Model], params: dict[str, str] | None = None) -> Any:
        request = rf.get(url(model), params or {})
        request.user = admin_user
        return request

    return build


@pytest.mark.parametrize(
    ("model", "list_filter", "kept"),
    [
        (demo.Client, ["client_secret", "name"], ["name"]),
        (demo.Client, [("client_secret", admin.EmptyFieldListFilter)], []),
        (demo.Connection, ["options", "strategy"], ["strategy"]),
        (demo.Connection, ["options__configuration"], []),
        (demo.EmailProvider, ["credentials", "enabled"], ["enabled"]),
        (demo.MigrationSource, ["credentials"], []),
    ],
)
def test_filters_that_reach_secrets_are_left_out(
    admin_request, demo_rows, model, list_filter, kept
):
    model_admin = custom_admin(model, list_filter=list_filter)
    assert model_admin.get_list_filter(admin_request(model)) == kept
    html = render(model_admin.changelist_view(admin_request(model)))
    assert_no_secret(html)
    for row in demo_rows:
        if row.model == model.__name__:
            assert str(row.values[row.key]) in html


def test_json_key_column_masks_secrets_below_a_parent_path(demo_rows):
    oidc = demo.Connection.objects.get(name="corporate-oidc")
    shown = JSONKeyColumn("options", "configuration")(oidc)
    assert json.loads(shown) == {"issuer": "https://idp.example.com", "client_secret": MASK}

    legacy = demo.Connection.objects.create(name="legacy-oidc", strategy="oidc")
    options = {"client_id": "l", "configuration": {"client_secret": "legacy-nested-Uu81", "a": 1}}
    write_plaintext(legacy, {"options": options}, using="default")
    shown = JSONKeyColumn("options", "configuration")(demo.Connection.objects.get(pk=legacy.pk))
    assert json.loads(shown) == {"client_secret": MASK, "a": 1}


def test_json_key_column_on_a_parent_path_in_the_changelist(admin_request, demo_rows):
    column = JSONKeyColumn("options", "configuration")
    model_admin = custom_admin(demo.Connection, list_display=["name", column])
    html = render(model_admin.changelist_view(admin_request(demo.Connection)))
    assert "https://idp.example.com" in html
    assert_no_secret(html)


def test_json_key_column_is_sortable_only_where_it_holds_no_secret():
    # The checks report a column sorting on encrypted data; the column itself stays sortable.
    assert JSONKeyColumn("options", "configuration").admin_order_field == "options__configuration"


class DeclaredClientForm(forms.ModelForm):
    client_secret = forms.CharField(label="Secret of the client", required=False)

    class Meta:
        model = demo.Client
        fields = ["client_id", "name", "client_secret"]


class DeclaredConnectionForm(forms.ModelForm):
    options = forms.JSONField(required=False)

    class Meta:
        model = demo.Connection
        fields = ["name", "strategy", "options"]


@pytest.mark.parametrize(
    ("form", "name", "kind"),
    [
        (DeclaredClientForm, "demo-backend-7b21e0", WriteOnlySecretField),
        (DeclaredClientForm, "legacy-portal-9e01aa", WriteOnlySecretField),
        (DeclaredConnectionForm, "corporate-oidc", MaskedJSONField),
        (DeclaredConnectionForm, "legacy-github", MaskedJSONField),
    ],
)
def test_form_fields_declared_for_secrets_are_made_write_only(
    admin_request, demo_rows, form, name, kind
):
    model = form._meta.model
    row = next(row for row in demo_rows if row.shown == name or row.values.get("name") == name)
    obj = obj_of(row)
    before = stored_columns(obj)
    model_admin = custom_admin(model, form=form)
    request = admin_request(model)
    html = render(model_admin.change_view(request, str(obj.pk)))
    assert row.shown in html
    assert_no_secret(html)

    form_class = model_admin.get_form(request, obj, change=True)
    bound = form_class(data=form_data(html, model), instance=obj)
    field = bound.fields["client_secret" if model is demo.Client else "options"]
    assert isinstance(field, kind)
    if kind is WriteOnlySecretField:
        assert field.label == "Secret of the client"
    assert bound.is_valid(), bound.errors
    model_admin.save_model(request, bound.save(commit=False), bound, change=True)
    assert_saved(row, before)


@pytest.fixture
def client_note(transactional_db):
    """A table with a foreign key to ``Client``, created for the test and dropped after it."""
    with isolate_apps("example_project.authhero"):

        class ClientNote(models.Model):
            title = models.CharField(max_length=50)
            client = models.ForeignKey(
                demo.Client, on_delete=models.CASCADE, null=True, related_name="+"
            )

            class Meta:
                app_label = "authhero"

            def __str__(self) -> str:
                return self.title

    with temporary_table(ClientNote):
        yield ClientNote


@contextmanager
def temporary_table(model: type[models.Model]) -> Iterator[None]:
    with connection.schema_editor() as editor:
        editor.create_model(model)
    try:
        yield
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(model)


def test_list_display_lookups_through_relations_show_badges(admin_request, client_note):
    load_demo_data()
    for row in DEMO_ROWS:
        if row.model == "Client":
            client_note.objects.create(title=f"note on {row.shown}", client=obj_of(row))
    client_note.objects.create(title="note without a client")
    display = ["title", "client__client_id", "client__client_secret"]
    model_admin = custom_admin(client_note, list_display=display)
    html = render(model_admin.changelist_view(admin_request(client_note)))
    assert_no_secret(html, [row for row in DEMO_ROWS if row.model == "Client"])
    cells = re.findall(r'<td class="field-client__client_secret"><span[^>]*>([^<]+)<', html)
    assert sorted(cells) == ["empty", "empty", "encrypted", "encrypted", "legacy plaintext"]
    assert "demo-m2m-4d88c2" in html

    # Outside the changelist the column follows the relation and reads the stored text.
    columns = model_admin.get_list_display(admin_request(client_note))
    column = next(column for column in columns if callable(column))
    note = client_note.objects.get(client__client_id="legacy-portal-9e01aa")
    assert ">legacy plaintext</span>" in column(note)


def test_list_display_lookups_are_read_in_the_changelist_query(admin_request, client_note):
    model_admin = custom_admin(client_note, list_display=["title", "client__client_secret"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            render(model_admin.changelist_view(admin_request(client_note)))
        return len(context.captured_queries)

    client = demo.Client.objects.create(client_id="c1", name="c1", client_secret="s-Qq91")
    client_note.objects.create(title="first", client=client)
    before = queries()
    for index in range(5):
        client_note.objects.create(title=f"more {index}", client=client)
    assert queries() == before


def test_proxy_model_admin_hides_the_concrete_models_secrets(admin_request, demo_rows):
    with isolate_apps("example_project.authhero"):

        class ClientProxy(demo.Client):
            class Meta:
                proxy = True
                app_label = "authhero"

    model_admin = custom_admin(ClientProxy, list_display=["client_id", "client_secret"])
    html = render(model_admin.changelist_view(admin_request(ClientProxy)))
    assert "demo-backend-7b21e0" in html
    assert ">legacy plaintext</span>" in html
    assert_no_secret(html)


def test_a_changelist_row_walks_its_document_once(monkeypatch, demo_rows):
    calls: list[Any] = []
    real = admin_columns.leaf_statuses

    def counting(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(admin_columns, "leaf_statuses", counting)
    model_admin = custom_admin(demo.Connection)
    column = model_admin._list_columns["options"]
    assert "authhero-status" in column(demo.Connection.objects.get(name="corporate-oidc"))
    assert len(calls) == 1


def test_load_demo_data_is_one_transaction_on_the_database_it_writes(monkeypatch):
    used: list[Any] = []
    real = transaction.atomic

    def atomic(*args: Any, **kwargs: Any) -> Any:
        used.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(demo_data, "transaction", SimpleNamespace(atomic=atomic))
    load_demo_data(using="default")
    assert used == [((), {"using": "default"})]


# Error reports: posted secrets are sensitive ------------------------------------------------------

POSTED = "POSTEDSECRET-7Hq2"


@contextmanager
def failing_save(model: type[models.Model]) -> Iterator[None]:
    """Any save of ``model`` raises, as a faulty ``pre_save`` receiver would."""

    def explode(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("pre_save failed on purpose")

    pre_save.connect(explode, sender=model, dispatch_uid="test_admin.explode")
    try:
        yield
    finally:
        pre_save.disconnect(sender=model, dispatch_uid="test_admin.explode")


def error_report(request: Any, exc: BaseException, tb: Any = None) -> str:
    """The report AdminEmailHandler mails (HTML and text), with DEBUG off as in production."""
    assert settings.DEBUG is False
    reporter = ExceptionReporter(request, type(exc), exc, tb or exc.__traceback__)
    return html.unescape(reporter.get_traceback_html()) + reporter.get_traceback_text()


def failed_post_report(client: Any, path: str, data: dict[str, str]) -> str:
    """The report of a POST that fails, made where Django makes it: in the request handler,
    whose traceback starts there (not in the test client, whose frames hold the posted data)."""
    reports: list[str] = []

    def capture(sender: Any, request: Any, **kwargs: Any) -> None:
        _type, exc, tb = sys.exc_info()
        assert exc is not None
        reports.append(error_report(request, exc, tb))

    got_request_exception.connect(capture)
    try:
        with pytest.raises(RuntimeError, match="on purpose"):
            client.post(path, data)
    finally:
        got_request_exception.disconnect(capture)
    return reports[0]


def assert_cleansed(report: str, *names: str, shown: str) -> None:
    assert POSTED not in report
    for name in names:
        assert f"{name} = '********************'" in report  # the text report's POST section
    # Not a report that lost its POST data: the other parameters are still shown.
    assert shown in report


def test_posted_secret_is_cleansed_from_the_report_of_a_failed_change(admin_client, demo_rows):
    obj = demo.Client.objects.get(client_id="demo-m2m-4d88c2")
    page = admin_client.get(url(demo.Client, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Client), "client_secret": POSTED, "name": "Shown-name-1"}
    with failing_save(demo.Client):
        report = failed_post_report(admin_client, url(demo.Client, "change", obj.pk), data)
    assert_cleansed(report, "client_secret", shown="Shown-name-1")


def test_posted_secret_is_cleansed_from_the_report_of_a_failed_add(admin_client):
    page = admin_client.get(url(demo.Client, "add")).content.decode()
    data = {
        **form_data(page, demo.Client),
        "client_id": "added-1",
        "name": "Shown-name-2",
        "client_secret": POSTED,
    }
    with failing_save(demo.Client):
        report = failed_post_report(admin_client, url(demo.Client, "add"), data)
    assert_cleansed(report, "client_secret", shown="Shown-name-2")
    assert not demo.Client.objects.filter(client_id="added-1").exists()


def test_posted_document_is_cleansed_from_the_report_of_a_failed_change(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="corporate-oidc")
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = form_data(page, demo.Connection)
    document = json.loads(data["options"])
    document["client_secret"] = POSTED
    data.update(options=json.dumps(document), strategy="Shown-strategy-3")
    with failing_save(demo.Connection):
        report = failed_post_report(admin_client, url(demo.Connection, "change", obj.pk), data)
    assert_cleansed(report, "options", shown="Shown-strategy-3")


def failed_view_report(view: Any, request: Any, *args: Any) -> str:
    """The report of ``view`` failing on ``request``, made as the request handler makes it."""
    try:
        view(request, *args)
    except RuntimeError:
        _type, exc, tb = sys.exc_info()
        assert exc is not None
        return error_report(request, exc, tb)
    raise AssertionError("the view did not fail")


def post_request(rf: Any, user: Any, model: type[models.Model], data: dict[str, str]) -> Any:
    request = rf.post(url(model), data)
    request.user = user
    request._dont_enforce_csrf_checks = True
    return request


def test_posted_secret_is_cleansed_from_the_report_of_a_failed_list_edit(rf, admin_user, demo_rows):
    obj = demo.Client.objects.get(client_id="demo-m2m-4d88c2")
    model_admin = custom_admin(
        demo.Client, list_display=["client_id", "name"], list_editable=["name"]
    )
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(obj.pk),
        "form-0-name": "Shown-name-4",
        "form-0-client_secret": POSTED,
        "_save": "Save",
    }
    request = post_request(rf, admin_user, demo.Client, data)
    with failing_save(demo.Client):
        report = failed_view_report(model_admin.changelist_view, request)
    assert_cleansed(report, "form-0-client_secret", shown="Shown-name-4")


@pytest.fixture
def client_token(transactional_db):
    """A table of tokens, each with a foreign key to ``Client``, for an inline."""
    with isolate_apps("example_project.authhero"):

        class ClientToken(models.Model):
            client = models.ForeignKey(demo.Client, on_delete=models.CASCADE)
            token = EncryptedCharField(max_length=50, blank=True)

            class Meta:
                app_label = "authhero"

            def __str__(self) -> str:
                return f"token {self.pk}"

    with temporary_table(ClientToken):
        yield ClientToken


def test_posted_inline_secret_is_cleansed_from_the_report(rf, admin_user, client_token):
    load_demo_data()
    obj = demo.Client.objects.get(client_id="demo-m2m-4d88c2")
    inline = type("TokenInline", (admin.TabularInline,), {"model": client_token, "extra": 1})
    model_admin = custom_admin(demo.Client, inlines=[inline])
    get = rf.get(url(demo.Client, "change", obj.pk))
    get.user = admin_user
    data = form_data(render(model_admin.change_view(get, str(obj.pk))), demo.Client)
    names = [name for name in data if name.endswith("-0-token")]
    assert len(names) == 1
    data.update({names[0]: POSTED, "name": "Shown-name-5"})
    request = post_request(rf, admin_user, demo.Client, data)
    with failing_save(demo.Client):
        report = failed_view_report(model_admin.change_view, request, str(obj.pk))
    assert_cleansed(report, names[0], shown="Shown-name-5")


def test_sensitive_parameters_already_set_are_kept(rf, admin_user):
    request = post_request(rf, admin_user, demo.Client, {"a": "1", "client_secret": POSTED})
    request.sensitive_post_parameters = ["a"]
    mark_secrets_sensitive(request, ["client_secret"])
    assert request.sensitive_post_parameters == ["a", "client_secret"]
    request.sensitive_post_parameters = "__ALL__"
    mark_secrets_sensitive(request, ["client_secret"])
    assert request.sensitive_post_parameters == "__ALL__"
    get = rf.get(url(demo.Client), {"client_secret": "x"})
    mark_secrets_sensitive(get, ["client_secret"])
    assert not hasattr(get, "sensitive_post_parameters")


def test_list_edit_of_a_legacy_row_encrypts_its_secret(admin_client, demo_rows, monkeypatch):
    # The changelist does not load secrets; saving a row there still encrypts its legacy one.
    monkeypatch.setattr(admin.site._registry[demo.Client], "list_editable", ["name"])
    legacy = demo.Client.objects.get(client_id="legacy-portal-9e01aa")
    encrypted = demo.Client.objects.get(client_id="demo-backend-7b21e0")
    kept = stored_columns(encrypted)["client_secret"]
    reader = _FormReader("changelist-form")
    reader.feed(admin_client.get(url(demo.Client)).content.decode())
    data = dict(reader.data)
    rows = {value: key.rpartition("-")[0] for key, value in data.items() if key.endswith("-id")}
    data[f"{rows[str(legacy.pk)]}-name"] = "Renamed legacy portal"
    data[f"{rows[str(encrypted.pk)]}-name"] = "Renamed backend"
    data["_save"] = "Save"
    assert admin_client.post(url(demo.Client), data).status_code == 302
    stored = stored_columns(legacy)["client_secret"]
    assert is_encrypted(stored)
    assert decrypt_value(stored) == "cs-legacy-portal-Hd72Jx4v"
    assert demo.Client.objects.get(pk=legacy.pk).name == "Renamed legacy portal"
    assert stored_columns(encrypted)["client_secret"] == kept
    assert demo.Client.objects.get(pk=encrypted.pk).name == "Renamed backend"


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
