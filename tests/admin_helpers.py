"""Helpers shared by the admin tests, which run on the example project's admin.

Forms are read back from the rendered HTML as a browser would post them, what is at rest is read
with raw cursor queries, and ``assert_no_secret`` proves a page holds neither a demo secret nor
any stored ciphertext.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

from django.contrib import admin
from django.db import connection, models

from authhero_encrypt.admin import EncryptedFieldsAdminMixin
from authhero_encrypt.admin.badges import field_status, leaf_statuses
from authhero_encrypt.fields import JSONPathEncryptedField
from authhero_encrypt.inventory import encrypted_fields, load_json
from example_project.authhero.demo_data import DEMO_ROWS, DemoRow, secret_values

DEMO_MODELS = sorted({row.model for row in DEMO_ROWS})
EDITABLE_ROWS = list(DEMO_ROWS)  # every demo model's admin edits its secrets write-only


class FormReader(HTMLParser):
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
    reader = FormReader(f"{model._meta.model_name}_form")
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
    table = connection.ops.quote_name(obj._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    pk = connection.ops.quote_name(obj._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {pk} = %s", [obj.pk])
        row = cursor.fetchone()
    return {f.name: value for f, value in zip(fields, row, strict=False)}


def ciphertexts(stored: dict[str, Any]) -> list[str]:
    """The enc:v1 and env:v1 values inside stored columns (scalars, leaves of documents)."""
    found: list[str] = []
    for value in stored.values():
        if isinstance(value, (str, bytes)):
            text = value.decode() if isinstance(value, bytes) else value
            found += re.findall(r"en[cv]:v1:[A-Za-z0-9_:/.-]+", text)
    return found


def assert_no_secret(html: str, rows: Any = DEMO_ROWS) -> None:
    """Neither a demo secret nor any stored ciphertext (nor its payload) is in ``html``."""
    assert "enc:v1:" not in html
    assert "env:v1:" not in html
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
            states[field.name] = {field_status(field, stored)[0]}
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


def custom_admin(model: type[models.Model], **options: Any) -> admin.ModelAdmin:
    """An instance of a mixin admin with ``options``, on the default site but not registered."""
    attrs = {"__module__": __name__, **options}
    cls = type(f"Custom{model.__name__}Admin", (EncryptedFieldsAdminMixin, admin.ModelAdmin), attrs)
    return cls(model, admin.site)


def render(response: Any) -> str:
    response.render()
    return response.content.decode()


@contextmanager
def temporary_table(model: type[models.Model]) -> Iterator[None]:
    with connection.schema_editor() as editor:
        editor.create_model(model)
    try:
        yield
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(model)
