"""Whether a query parameter's lookup reaches encrypted data; shared by the filters and the checks.

A REST API turns query parameters into ORM lookups (``?ordering=``, ``?search=``, django-filter's
``?name=``), and every lookup that reaches an encrypted field or a JSON key holding encrypted paths
raises ``FieldError`` (an HTTP 500), except the equality lookups a blind index answers
(``email__exact``, ``email__in``, ``email__iexact`` when the index folds case). Unlike the
admin's options, these lookups may end with a lookup name (``client_secret__icontains``,
``options__configuration__exact``): the name is taken off first, since a JSON key named like a
lookup would be read as one by Django as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

from authhero_encrypt.admin.lookups import json_path_secret, reached_field
from authhero_encrypt.blind_index.lookups import answered_by_index
from authhero_encrypt.fields.json import JSONPathEncryptedField

if TYPE_CHECKING:
    from django.db.models import Model

__all__ = ["secret_reached"]

_LOOKUP_NAMES = frozenset(models.Field.get_class_lookups()) | frozenset(
    models.JSONField.get_class_lookups()
)
# Lookups that never compare a secret: NULL on a whole field, key presence on a document.
_SAFE_ON_FIELD = frozenset({"isnull"})
_SAFE_ON_DOCUMENT = frozenset({"isnull", "has_key", "has_keys", "has_any_keys"})


def secret_reached(model: type[Model], lookup: str) -> str | None:
    """What encrypted data ``lookup`` (fields, JSON keys, an optional lookup name) reaches, as
    text for a message, or ``None`` when the database can answer it."""
    reached = reached_field(model, lookup)
    if reached is None:
        return None
    field, _relations, rest = reached
    rest = list(rest)
    lookup_name = rest.pop() if rest and rest[-1] in _LOOKUP_NAMES else None
    if not isinstance(field, JSONPathEncryptedField):
        if not rest and lookup_name in _SAFE_ON_FIELD:
            return None
        if not rest and answered_by_index(field, lookup_name):
            return None  # exact, in, iexact (when it folds case): through the blind index
        return f"the encrypted field {field.label()}"
    what = json_path_secret(field.path_trie, rest)
    if what is None:
        return None
    if lookup_name in _SAFE_ON_DOCUMENT and field.path_trie.node_at(rest) is not None:
        return None  # a key holding secrets, asked only whether it is there
    return f"{what} of {field.label()}"
