"""The stored text of encrypted fields, read beside each row as an annotation in the same query.

Badges are worked out from what is stored, not from the decrypted value: the admin's querysets
annotate every row with the column as text (:class:`~authhero_encrypt.fields.StoredText`, which
skips the field's converter), and an instance that did not come from such a queryset costs one
query. Nothing here decrypts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.db.models.constants import LOOKUP_SEP

from authhero_encrypt.admin.badges import document_status, field_status
from authhero_encrypt.fields import JSONPathEncryptedField, StoredText
from authhero_encrypt.inventory import load_json

__all__ = [
    "holds_legacy_plaintext",
    "related_stored_value",
    "stored_text",
    "stored_value",
    "with_stored_lookups",
    "with_stored_values",
]

_STORED_ALIAS = "_authhero_stored_{}"


def _stored_alias(lookup: str) -> str:
    # Field names cannot hold "__", so a related lookup's alias cannot be taken for a field's.
    return _STORED_ALIAS.format(lookup.replace(LOOKUP_SEP, "_0_"))


def with_stored_values(queryset: models.QuerySet[Any], fields: Iterable[Any]) -> Any:
    """``queryset`` with the stored text of ``fields`` read beside each row, in the same query."""
    return with_stored_lookups(queryset, [field.name for field in fields])


def with_stored_lookups(queryset: models.QuerySet[Any], lookups: Iterable[str]) -> Any:
    """``queryset`` with the stored text at each of ``lookups`` read beside each row."""
    # The column as text, without the field's converter: the stored form, not the plaintext.
    return queryset.annotate(**{_stored_alias(lookup): StoredText(lookup) for lookup in lookups})


def stored_value(obj: models.Model, field: models.Field[Any, Any]) -> Any:
    """The stored text of ``field`` on ``obj``; a JSON document comes back parsed.

    Rows from the mixin's querysets carry it already; any other instance costs one query.
    """
    raw = stored_text(obj, field)
    if isinstance(field, JSONPathEncryptedField) and raw is not None:
        return load_json(raw)
    return raw


def stored_text(obj: models.Model, field: models.Field[Any, Any]) -> Any:
    """The stored text of ``field`` on ``obj``, as the column holds it (a document unparsed)."""
    alias = _stored_alias(field.name)
    if alias not in obj.__dict__:
        if obj._state.adding or obj.pk is None:
            return None
        manager = type(obj)._base_manager
        rows = manager.using(obj._state.db).filter(pk=obj.pk)
        obj.__dict__[alias] = (
            with_stored_values(rows, [field]).values_list(alias, flat=True).first()
        )
    return obj.__dict__[alias]


def related_stored_value(obj: models.Model, lookup: str, field: Any) -> Any:
    """The stored text of ``field`` on the row ``lookup`` (``client__client_secret``) leads to.

    The changelist reads it in its query; elsewhere the relations are followed and the row at
    the end costs one query.
    """
    alias = _stored_alias(lookup)
    if alias in obj.__dict__:
        raw = obj.__dict__[alias]
        if isinstance(field, JSONPathEncryptedField) and raw is not None:
            return load_json(raw)
        return raw
    target: Any = obj
    for name in lookup.split(LOOKUP_SEP)[:-1]:
        target = getattr(target, name, None)
        if target is None:
            return None
    return stored_value(target, field)


def holds_legacy_plaintext(obj: models.Model, field: Any) -> bool:
    """Whether ``field`` of ``obj`` is stored as legacy plaintext (anywhere, for a document)."""
    stored = stored_value(obj, field)
    if isinstance(field, JSONPathEncryptedField):
        return document_status(field.path_trie, stored)[0] == "legacy"
    return field_status(field, stored)[0] == "legacy"
