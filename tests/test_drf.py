"""The Django REST framework integration, with the real package: no door decrypts a pasted
ciphertext, and no response hands out a secret (``authhero_encrypt.integrations.drf``)."""

from __future__ import annotations

import json
import re

import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured
from rest_framework import generics, serializers
from rest_framework.test import APIClient

from authhero_encrypt.crypto import decrypt_value, is_encrypted
from authhero_encrypt.integrations.drf import (
    EncryptedFieldsOrderingFilter,
    EncryptedFieldsSearchFilter,
    EncryptedFieldsSerializerMixin,
)
from authhero_encrypt.inventory import load_json
from example_project.authhero.models import Client
from tests.drf_urls import SecretSerializer
from tests.testapp.models import Connection, PrivateKey, Secret

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.drf_urls")]

VICTIM = "victim-plaintext-secret"
OPTIONS = {
    "client_id": "victim-id",
    "client_secret": VICTIM,
    "configuration": {"client_secret": VICTIM + "-nested", "region": "eu"},
}


@pytest.fixture
def api():
    return APIClient()


def codes(response, name):
    return [error.code for error in response.data[name]]


def stolen_options(raw_column):
    victim = Connection.objects.create(name="victim", options=OPTIONS)
    return load_json(raw_column(Connection, victim.pk, "options"))


def test_stolen_enc_v1_of_a_char_field_is_refused(api, raw_column):
    victim = Client.objects.create(client_id="victim", name="v", client_secret=VICTIM)
    stolen = raw_column(Client, victim.pk, "client_secret")
    assert is_encrypted(stolen)
    body = {"client_id": "attacker", "name": "a", "client_secret": stolen}
    response = api.post("/clients/", body, format="json")
    assert response.status_code == 400
    assert codes(response, "client_secret") == ["ciphertext"]
    assert not Client.objects.filter(client_id="attacker").exists()
    assert VICTIM not in response.content.decode()
    assert stolen not in response.content.decode()


def test_stolen_enc_v1_of_a_text_field_is_refused_also_on_patch(api, raw_column):
    victim = Secret.objects.create(label="victim", notes=VICTIM)
    mine = Secret.objects.create(label="mine", notes="my notes")
    before = raw_column(Secret, mine.pk, "notes")
    stolen = raw_column(Secret, victim.pk, "notes")
    assert api.post("/secrets/", {"notes": stolen}, format="json").status_code == 400
    response = api.patch(f"/secrets/{mine.pk}/", {"notes": stolen}, format="json")
    assert response.status_code == 400
    assert codes(response, "notes") == ["ciphertext"]
    assert raw_column(Secret, mine.pk, "notes") == before


@pytest.mark.parametrize("path", [("client_secret",), ("configuration", "client_secret")])
def test_stolen_json_secret_leaf_is_refused(api, raw_column, path):
    stored = stolen_options(raw_column)
    leaf = stored
    for key in path:
        leaf = leaf[key]
    assert is_encrypted(leaf)
    options = {"client_id": "attacker"}
    target = options
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = leaf
    response = api.post("/connections/", {"name": "a", "options": options}, format="json")
    assert response.status_code == 400
    assert codes(response, "options") == ["ciphertext"]
    assert ".".join(path) in str(response.data["options"][0])
    assert not Connection.objects.filter(name="a").exists()


def test_stolen_env_v1_envelope_value_is_refused(api, raw_column):
    victim = PrivateKey.objects.create(name="victim", pem=VICTIM)
    stolen = raw_column(PrivateKey, victim.pk, "pem")
    assert stolen.startswith("env:v1:")
    response = api.post("/keys/", {"name": "a", "pem": stolen}, format="json")
    assert response.status_code == 400
    assert codes(response, "pem") == ["ciphertext"]
    # An env:v1: value is refused by the enc:v1 fields as well.
    response = api.post("/clients/", {"client_id": "b", "name": "b", "client_secret": stolen})
    assert codes(response, "client_secret") == ["ciphertext"]


def test_writes_encrypt_and_reads_never_show_a_secret(api, raw_column):
    body = {"client_id": "app", "name": "App", "client_secret": "  s3cret with spaces "}
    response = api.post("/clients/", body, format="json")
    assert response.status_code == 201, response.data
    assert "client_secret" not in response.data
    pk = response.data["id"]
    stored = raw_column(Client, pk, "client_secret")
    assert decrypt_value(stored) == body["client_secret"]  # whitespace kept: a secret as typed
    for url in ("/clients/", f"/clients/{pk}/"):
        text = api.get(url).content.decode()
        assert "s3cret" not in text
        assert "client_secret" not in text
        assert "enc:v1:" not in text


def test_a_json_document_is_shown_without_its_secret_paths(api, raw_column):
    response = api.post("/connections/", {"name": "c", "options": OPTIONS}, format="json")
    assert response.status_code == 201, response.data
    shown = {"client_id": "victim-id", "configuration": {"region": "eu"}}
    assert response.data["options"] == shown
    pk = response.data["id"]
    stored = load_json(raw_column(Connection, pk, "options"))
    assert decrypt_value(stored["client_secret"]) == VICTIM
    assert decrypt_value(stored["configuration"]["client_secret"]) == VICTIM + "-nested"
    assert api.get(f"/connections/{pk}/").data["options"] == shown
    assert VICTIM not in api.get("/connections/").content.decode()


def test_readable_secrets_opts_a_field_in(api):
    row = Secret.objects.create(label="r", token="shown-token", notes="hidden-notes")
    data = api.get(f"/readable/{row.pk}/").data
    assert data["token"] == "shown-token"
    assert "notes" not in data


def test_readable_secrets_must_name_encrypted_fields():
    class Wrong(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
        class Meta:
            model = Secret
            fields = "__all__"
            readable_secrets = ["label"]

    with pytest.raises(ImproperlyConfigured, match="label"):
        Wrong().fields  # noqa: B018


def test_updates_that_leave_a_secret_out_keep_it(api, raw_column):
    row = Client.objects.create(client_id="keep", name="Keep", client_secret="kept")
    response = api.patch(f"/clients/{row.pk}/", {"name": "Patched"}, format="json")
    assert response.status_code == 200
    response = api.put(f"/clients/{row.pk}/", {"client_id": "keep", "name": "Put"}, format="json")
    assert response.status_code == 200, response.data
    assert decrypt_value(raw_column(Client, row.pk, "client_secret")) == "kept"
    response = api.patch(f"/clients/{row.pk}/", {"client_secret": "new"}, format="json")
    assert decrypt_value(raw_column(Client, row.pk, "client_secret")) == "new"


def test_a_json_update_keeps_the_secret_leaves_it_leaves_out(api, raw_column):
    row = Connection.objects.create(name="j", options=OPTIONS)
    # What a client read, with a plaintext key changed, sent back.
    sent = {"client_id": "changed", "configuration": {"region": "us"}}
    response = api.patch(f"/connections/{row.pk}/", {"options": sent}, format="json")
    assert response.status_code == 200, response.data
    stored = load_json(raw_column(Connection, row.pk, "options"))
    assert stored["client_id"] == "changed"
    assert stored["configuration"]["region"] == "us"
    assert decrypt_value(stored["client_secret"]) == VICTIM
    assert decrypt_value(stored["configuration"]["client_secret"]) == VICTIM + "-nested"
    # A key sent wins (null included); an object left out is not brought back.
    sent = {"client_id": "changed", "client_secret": None}
    response = api.put(f"/connections/{row.pk}/", {"name": "j", "options": sent}, format="json")
    assert response.status_code == 200, response.data
    assert load_json(raw_column(Connection, row.pk, "options")) == sent


@pytest.mark.parametrize(
    "query",
    ["ordering=token", "ordering=-notes", "search=x", "token=x", "notes=x", "token__isnull=x"],
)
def test_safe_backends_ignore_encrypted_data(api, query):
    Secret.objects.create(label="a-x", token="x")
    Secret.objects.create(label="b-x", token="y")
    response = api.get(f"/secrets/?{query}")
    assert response.status_code == 200
    assert len(response.data) == 2  # ignored: neither filtered nor searched


def test_the_safe_search_skips_encrypted_search_fields(rf):
    Secret.objects.create(label="plain", token="needle")
    Secret.objects.create(label="needle")
    view = type(
        "Search",
        (generics.ListAPIView,),
        {
            "queryset": Secret.objects.order_by("pk"),
            "serializer_class": SecretSerializer,
            "permission_classes": [],
            "filter_backends": [EncryptedFieldsSearchFilter],
            "search_fields": ["label", "^token", "notes__icontains"],
        },
    )
    response = view.as_view()(rf.get("/", {"search": "needle"}))
    assert [row["label"] for row in response.data] == ["needle"]


def test_the_safe_ordering_drops_a_default_ordering_on_secrets(rf):
    Secret.objects.create(label="b", token="1")
    Secret.objects.create(label="a", token="2")
    view = type(
        "Ordered",
        (generics.ListAPIView,),
        {
            "queryset": Secret.objects.all(),
            "serializer_class": SecretSerializer,
            "permission_classes": [],
            "filter_backends": [EncryptedFieldsOrderingFilter],
            "ordering": ["-token", "label"],
        },
    )
    response = view.as_view()(rf.get("/"))
    assert [row["label"] for row in response.data] == ["a", "b"]


def test_safe_backends_still_order_search_and_filter_plaintext(api):
    Secret.objects.create(label="b")
    Secret.objects.create(label="a")
    labels = [row["label"] for row in api.get("/secrets/?ordering=label").data]
    assert labels == ["a", "b"]
    assert [row["label"] for row in api.get("/secrets/?search=b").data] == ["b"]
    assert [row["label"] for row in api.get("/secrets/?label=a").data] == ["a"]
    Connection.objects.create(name="c1", options=OPTIONS)
    assert api.get("/connections/?ordering=options").status_code == 200
    assert len(api.get("/connections/?name=c1").data) == 1


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("/plain/ordering/", "ordering=options"),
        ("/plain/search/", "search=x"),
        ("/plain/filter-fields/", "token=x"),
        ("/plain/filterset/", "token=x"),
    ],
)
def test_without_the_safe_backends_a_request_fails(api, url, query):
    """What checks W501-W504 warn about: an anonymous request that the field refuses."""
    Connection.objects.create(name="c", options=OPTIONS)
    with pytest.raises(FieldError):
        api.get(f"{url}?{query}")


def test_the_browsable_api_never_renders_a_secret(api, raw_column):
    row = Secret.objects.create(label="html", token="html-token", notes="html-notes")
    conn = Connection.objects.create(name="html", options=OPTIONS)
    pages = [
        api.get(f"/secrets/{row.pk}/", HTTP_ACCEPT="text/html"),
        api.get("/secrets/", HTTP_ACCEPT="text/html"),
        api.get(f"/connections/{conn.pk}/", HTTP_ACCEPT="text/html"),
    ]
    stolen = raw_column(Secret, row.pk, "notes")
    # A failed POST shows the form again: neither the typed secret nor the ciphertext comes back.
    pages.append(
        api.post(
            "/secrets/",
            {"label": "x" * 60, "token": "typed-token", "notes": stolen},
            HTTP_ACCEPT="text/html",
        )
    )
    assert pages[-1].status_code == 400
    for page in pages:
        html = page.content.decode()
        assert "<html" in html
        for secret in ("html-token", "html-notes", VICTIM, "typed-token", stolen):
            assert secret not in html
        assert not re.search(r"enc:v1:[\w-]{8}", html)


def test_error_messages_carry_no_value(api):
    response = api.post("/clients/", {"client_id": "e", "name": "e", "client_secret": "x" * 300})
    assert response.status_code == 400
    assert "x" * 20 not in json.dumps(response.json())
