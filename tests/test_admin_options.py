"""The admin mixin's pages, through Django's test client on the example project's admin.

What a changelist, change, history, delete or view-only page shows, and which of the admin's
options (search, filters, read-only fields, ``list_display`` lookups) the mixin changes.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection, models, transaction
from django.test.utils import CaptureQueriesContext, isolate_apps

from authhero_encrypt.crypto import decrypt_value, is_encrypted
from example_project.authhero import demo_data
from example_project.authhero import models as demo
from example_project.authhero.demo_data import DEMO_ROWS, load_demo_data, secret_values
from tests.admin_helpers import (
    DEMO_MODELS,
    FormReader,
    assert_no_secret,
    custom_admin,
    form_data,
    obj_of,
    render,
    stored_columns,
    temporary_table,
    url,
)
from tests.testapp.models import Secret

pytestmark = pytest.mark.django_db


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


# Admin options that reach secrets ----------------------------------------------------------------


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
    assert sorted(cells) == [
        "empty",
        "empty",
        "encrypted, (no key id)",
        "encrypted, (no key id)",
        "legacy plaintext",
    ]
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


# The demo data -----------------------------------------------------------------------------------


def test_load_demo_data_is_one_transaction_on_the_database_it_writes(monkeypatch):
    used: list[Any] = []
    real = transaction.atomic

    def atomic(*args: Any, **kwargs: Any) -> Any:
        used.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(demo_data, "transaction", SimpleNamespace(atomic=atomic))
    load_demo_data(using="default")
    assert used == [((), {"using": "default"})]


# Saving from the changelist ----------------------------------------------------------------------


def test_list_edit_of_a_legacy_row_encrypts_its_secret(admin_client, demo_rows, monkeypatch):
    # The changelist does not load secrets; saving a row there still encrypts its legacy one.
    monkeypatch.setattr(admin.site._registry[demo.Client], "list_editable", ["name"])
    legacy = demo.Client.objects.get(client_id="legacy-portal-9e01aa")
    encrypted = demo.Client.objects.get(client_id="demo-backend-7b21e0")
    kept = stored_columns(encrypted)["client_secret"]
    reader = FormReader("changelist-form")
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
