"""DRF validators for encrypted fields made unique by a blind index.

DRF gives a serializer field a ``UniqueValidator`` when its model field is unique, and the
serializer a ``UniqueTogetherValidator`` for a ``UniqueConstraint`` whose fields it all has. An
encrypted source is never unique itself (its :class:`~authhero_encrypt.blind_index.BlindIndexField`
is, and the serializer never has that), so neither is built and a duplicate reaches the database
as ``IntegrityError`` (an HTTP 500). ``EncryptedFieldsSerializerMixin`` adds them from the index:
``unique=True`` gives the source a ``UniqueValidator``, ``unique_with=("tenant",)`` gives the
serializer a ``UniqueTogetherValidator`` over ``tenant`` and the source. Both filter the source
by its plaintext (``filter(email=value)``), which the index answers under every configured key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.utils.field_mapping import get_unique_error_message
from rest_framework.validators import UniqueTogetherValidator, UniqueValidator

from authhero_encrypt.blind_index.field import indexes_of

__all__ = ["unique_validators", "unique_with_validators"]


def unique_validators(model_field: Any) -> list[UniqueValidator]:
    """A ``UniqueValidator`` for ``model_field`` when a unique blind index covers it."""
    if not any(index.unique for index in indexes_of(model_field)):
        return []
    queryset = model_field.model._default_manager.all()
    return [UniqueValidator(queryset=queryset, message=get_unique_error_message(model_field))]


def unique_with_validators(model: Any, fields: Iterable[Any]) -> list[UniqueTogetherValidator]:
    """A ``UniqueTogetherValidator`` per ``unique_with`` index whose source and fields are all
    writable fields of the serializer (as DRF builds one per ``UniqueConstraint``)."""
    by_source = {
        field.source: name
        for name, field in fields
        if not field.read_only and isinstance(field.source, str) and "." not in field.source
    }
    found = []
    for model_field in model._meta.concrete_fields:
        for index in indexes_of(model_field):
            names = (*index.unique_with, index.source_name)
            if not index.unique_with or not all(name in by_source for name in names):
                continue
            validator = UniqueTogetherValidator(
                queryset=index.model._default_manager.all(),
                fields=tuple(by_source[name] for name in names),
            )
            found.append(validator)
    return found
