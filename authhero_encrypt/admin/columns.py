"""List columns: status badges standing in for encrypted fields, and plaintext keys of documents.

The mixin swaps every encrypted field (and every ``list_display`` lookup that ends at one) for a
:class:`SecretColumn`; :class:`JSONKeyColumn` is what an admin lists to show a plaintext key of a
JSON document. Both read the stored text (:mod:`authhero_encrypt.admin.stored`), so neither can
put a secret into a page, nor decrypt anything.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from authhero_encrypt.admin.badges import (
    UNREADABLE,
    badge,
    combined_status,
    details,
    field_status,
    leaf_statuses,
    secret_status,
    unreadable_status,
    with_failures,
)
from authhero_encrypt.admin.lookups import json_path_secret
from authhero_encrypt.admin.masking import leaf_at, mask_all
from authhero_encrypt.admin.stored import related_stored_value, stored_value
from authhero_encrypt.admin.unreadable import unreadable_of
from authhero_encrypt.fields import JSONPathEncryptedField
from authhero_encrypt.json_paths import Path, path_text

__all__ = ["JSONKeyColumn", "SecretColumn"]


class SecretColumn:
    """Stands in for an encrypted field in ``list_display`` and read-only views: a status badge.

    Callables are what the admin accepts besides field names; this one is named after the field,
    or after the ``list_display`` lookup it replaces (``client__client_secret``), so CSS classes
    and help texts still match, and it is not sortable.
    """

    def __init__(self, field: Any, *, detail: bool, lookup: str | None = None) -> None:
        self.field = field
        self.detail = detail
        # The relations from the listed model to the field, then its name; None for its own.
        self.lookup = lookup
        self.__name__ = field.name if lookup is None else lookup
        self.short_description = capfirst(field.verbose_name)

    def __call__(self, obj: models.Model) -> SafeString:
        if self.lookup is None:
            stored = stored_value(obj, self.field)
        else:
            stored = related_stored_value(obj, self.lookup, self.field)
        # What the change page found when it decrypted the row (only for its own fields).
        failed = unreadable_of(obj).get(self.field.name) if self.lookup is None else None
        if not isinstance(self.field, JSONPathEncryptedField):
            state, label = field_status(self.field, stored)
            if failed is not None and state != UNREADABLE:
                state, label = unreadable_status()
            return badge(state, label)
        trie = self.field.path_trie
        leaves = with_failures(leaf_statuses(trie, stored), failed or ())
        summary = badge(*combined_status(leaves), title=details(leaves))
        if not self.detail:
            return summary
        masked = mask_all(trie, stored)
        per_path = format_html_join(
            "",
            "<li><code>{}</code> {}</li>",
            ((path_text(path), badge(state, label)) for path, state, label in leaves),
        )
        return format_html(
            '<pre class="authhero-masked-document">{}</pre>{}',
            json.dumps(masked, indent=2, ensure_ascii=False, sort_keys=True),
            format_html('<ul class="authhero-path-status">{}</ul>', per_path)
            if leaves
            else summary,
        )


class JSONKeyColumn:
    """A ``list_display`` column for one key of a ``JSONPathEncryptedField`` document.

    ``JSONKeyColumn("options", "client_id")`` shows ``options.client_id`` and sorts on it in the
    database. It reads the stored document, in which plaintext keys are plain; an encrypted path
    shows its status badge instead, and an object that holds encrypted paths
    (``JSONKeyColumn("options", "configuration")``) shows them as :data:`MASK`, so a column can
    never leak a secret, neither its plaintext nor its ciphertext.
    """

    def __init__(self, field_name: str, path: str, *, description: str | None = None) -> None:
        keys = tuple(path.split("."))
        if not field_name or "" in keys:
            raise ValueError(
                f"JSONKeyColumn needs a field name and a dot-separated key path, got "
                f"{field_name!r} and {path!r}."
            )
        self.field_name = field_name
        self.path: Path = keys
        self.__name__ = "__".join((field_name, *keys))
        self.admin_order_field = self.__name__
        self.short_description = description or f"{field_name}.{path}"

    def __call__(self, obj: models.Model) -> Any:
        field = obj._meta.get_field(self.field_name)
        if not isinstance(field, JSONPathEncryptedField):
            raise TypeError(f"JSONKeyColumn: {field} is not a JSONPathEncryptedField.")
        value = leaf_at(stored_value(obj, field), self.path)
        if json_path_secret(field.path_trie, self.path) is not None:
            if isinstance(value, str):
                return badge(*secret_status(value))
            node = field.path_trie.node_at(self.path)
            if node is not None:
                value = mask_all(node, value)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)
