"""List columns: ``JSONKeyColumn`` and the badge columns standing in for encrypted fields."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from authhero_encrypt.admin import MASK, JSONKeyColumn
from authhero_encrypt.admin import columns as admin_columns
from example_project.authhero import models as demo
from example_project.authhero.demo_data import write_plaintext
from tests.admin_helpers import assert_no_secret, custom_admin, render, url

pytestmark = pytest.mark.django_db


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
        '<span class="authhero-status authhero-status-encrypted">encrypted, (no key id)</span>'
    )
    assert JSONKeyColumn("options", "missing")(obj) is None


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


def test_sort_by_json_key_column(admin_client, demo_rows):
    # Column 3 is options.client_id (1: name, 2: strategy).
    html = admin_client.get(url(demo.Connection), {"o": "-3"}).content.decode()
    order = re.findall(r'class="field-options__client_id">([^<]+)<', html)
    assert order == sorted(order, reverse=True)
    assert len(order) == 5


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
