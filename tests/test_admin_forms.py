"""Editing through the admin: write-only secrets, masked JSON documents, declared form fields.

Forms are posted as a browser would post them: the fields are read back from the rendered HTML
(so a secret that leaked into a value attribute would be posted, and caught), never built from
the form object. What is at rest is read with raw cursor queries.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django import forms
from django.db.models.signals import post_save

from authhero_encrypt.admin import MASK, RETYPE, MaskedJSONField, WriteOnlySecretField
from authhero_encrypt.crypto import decrypt_value, is_encrypted
from authhero_encrypt.inventory import load_json
from example_project.authhero import models as demo
from tests.admin_helpers import (
    EDITABLE_ROWS,
    assert_no_secret,
    assert_saved,
    custom_admin,
    form_data,
    obj_of,
    render,
    stored_columns,
    url,
)
from tests.testapp.models import Swapped

pytestmark = pytest.mark.django_db


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
    assert "Currently: configuration.client_secret: encrypted, (no key id)." in page


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


# Form fields declared on the form ---------------------------------------------------------------


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
