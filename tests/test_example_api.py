"""The example project's management API (``/api/v2/clients``, ``/api/v2/connections``)."""

from __future__ import annotations

import base64

import pytest
from rest_framework.test import APIClient

from authhero_encrypt.crypto import decrypt_value, is_encrypted
from authhero_encrypt.inventory import load_json
from example_project.authhero import api as example_api
from example_project.authhero.models import Client, Connection

pytestmark = [pytest.mark.django_db, pytest.mark.urls("example_project.urls")]

SECRET = "victim-client-secret"
OPTIONS = {
    "client_id": "google-client-id",
    "client_secret": "google-secret",
    "configuration": {"client_secret": "nested-secret", "tenant": "acme"},
}


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def test_admin_users_only(django_user_model):
    assert APIClient().get("/api/v2/clients").status_code in (401, 403)
    user = django_user_model.objects.create_user("staffless", password="pw")
    client = APIClient()
    client.force_authenticate(user)
    assert client.get("/api/v2/connections").status_code == 403
    # The demo login works with basic auth, as the example's README shows with curl.
    django_user_model.objects.create_superuser("root", password="pw")
    basic = "Basic " + base64.b64encode(b"root:pw").decode()
    assert APIClient().get("/api/v2/connections", HTTP_AUTHORIZATION=basic).status_code == 200


def test_a_ciphertext_copied_from_another_row_is_refused(api, raw_column):
    victim = Client.objects.create(client_id="victim", name="Victim", client_secret=SECRET)
    stolen = raw_column(Client, victim.pk, "client_secret")
    body = {"client_id": "attacker", "name": "Attacker", "client_secret": stolen}
    response = api.post("/api/v2/clients", body, format="json")
    assert response.status_code == 400
    assert [e.code for e in response.data["client_secret"]] == ["ciphertext"]
    assert not Client.objects.filter(client_id="attacker").exists()

    conn = Connection.objects.create(name="google", strategy="google-oauth2", options=OPTIONS)
    leaf = load_json(raw_column(Connection, conn.pk, "options"))["configuration"]["client_secret"]
    options = {"client_id": "x", "configuration": {"client_secret": leaf}}
    body = {"name": "evil", "strategy": "oidc", "options": options}
    response = api.post("/api/v2/connections", body, format="json")
    assert response.status_code == 400
    assert [e.code for e in response.data["options"]] == ["ciphertext"]
    response = api.patch(f"/api/v2/connections/{conn.pk}", {"options": options}, format="json")
    assert response.status_code == 400


def test_gets_show_no_secret_and_writes_store_ciphertext(api, raw_column):
    body = {"client_id": "app", "name": "App", "client_secret": SECRET}
    assert api.post("/api/v2/clients", body, format="json").status_code == 201
    row = Client.objects.get(client_id="app")
    assert decrypt_value(raw_column(Client, row.pk, "client_secret")) == SECRET
    body = {"name": "google", "strategy": "google-oauth2", "options": OPTIONS}
    response = api.post("/api/v2/connections", body, format="json")
    assert response.status_code == 201
    conn = Connection.objects.get(name="google")
    stored = load_json(raw_column(Connection, conn.pk, "options"))
    assert is_encrypted(stored["client_secret"])
    assert is_encrypted(stored["configuration"]["client_secret"])
    assert stored["client_id"] == "google-client-id"

    pages = [
        api.get("/api/v2/clients"),
        api.get("/api/v2/clients/app"),
        api.get("/api/v2/connections"),
        api.get(f"/api/v2/connections/{conn.pk}"),
        api.get("/api/v2/clients/app", HTTP_ACCEPT="text/html"),
        api.get(f"/api/v2/connections/{conn.pk}", HTTP_ACCEPT="text/html"),
    ]
    for page in pages:
        assert page.status_code == 200
        text = page.content.decode()
        for secret in (SECRET, "google-secret", "nested-secret", "enc:v1:"):
            assert secret not in text
    assert pages[1].data == {"client_id": "app", "name": "App"}
    assert pages[3].data["options"] == {
        "client_id": "google-client-id",
        "configuration": {"tenant": "acme"},
    }

    # Sending back what was read, with a plaintext key changed, keeps every secret.
    sent = {**pages[3].data, "options": {**pages[3].data["options"], "client_id": "new-id"}}
    assert api.put(f"/api/v2/connections/{conn.pk}", sent, format="json").status_code == 200
    stored = load_json(raw_column(Connection, conn.pk, "options"))
    assert stored["client_id"] == "new-id"
    assert decrypt_value(stored["client_secret"]) == "google-secret"
    assert decrypt_value(stored["configuration"]["client_secret"]) == "nested-secret"
    response = api.patch("/api/v2/clients/app", {"name": "Renamed"}, format="json")
    assert response.status_code == 200
    assert decrypt_value(raw_column(Client, row.pk, "client_secret")) == SECRET


def test_a_secret_is_shown_only_when_opted_in(api):
    Client.objects.create(client_id="shown", name="Shown", client_secret=SECRET)

    class Readable(example_api.ClientSerializer):
        class Meta(example_api.ClientSerializer.Meta):
            readable_secrets = ["client_secret"]

    row = Client.objects.get(client_id="shown")
    assert "client_secret" not in example_api.ClientSerializer(row).data
    assert Readable(row).data["client_secret"] == SECRET


@pytest.mark.parametrize(
    "query",
    ["ordering=client_secret", "ordering=options", "search=secret", "client_secret=x"],
)
def test_query_parameters_on_secrets_are_ignored(api, query):
    Client.objects.create(client_id="a", name="A", client_secret="secret")
    Connection.objects.create(name="c", strategy="oidc", options=OPTIONS)
    for url in ("/api/v2/clients", "/api/v2/connections"):
        response = api.get(f"{url}?{query}")
        assert response.status_code == 200
        if not query.startswith("search"):
            assert len(response.data) == 1  # the parameter is ignored
