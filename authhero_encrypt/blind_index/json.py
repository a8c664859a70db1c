"""Blind indexes of JSON secret paths: ``filter(options__client_secret="x")`` through the tag.

``JSONPathEncryptedField`` refuses a key transform that reaches an encrypted path: the
database only holds its ciphertext. When a ``BlindIndexField("options__client_secret")``
indexes that path, the transform takes the equality lookups the index answers (``exact``,
``in``, and ``iexact`` when the index folds case), which compile as on a scalar source (see
:mod:`authhero_encrypt.blind_index.lookups`), the legacy branch comparing the JSON value at the
path with Django's own key lookups::

    (secret_index IS NOT NULL AND secret_index IN (%s, %s))
    OR (secret_index IS NULL AND <options -> 'client_secret'> IN ('"x"'))

Only strings at a secret path are encrypted and tagged, and a plaintext ``JSONField`` compares
``"5"`` and ``5`` as different values, so only strings are searched: a number, boolean,
document or ``None`` (JSON null) is refused, and ``contains`` answers for those (a secret path
holding no string is stored as it is). Every other use of the path (``values()``, ordering,
``F()``, deeper keys, other lookups) is still refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldError
from django.db import models
from django.db.models import Transform
from django.db.models.expressions import Col
from django.db.models.fields.json import KeyTransform, KeyTransformIn

from authhero_encrypt.blind_index.field import BlindIndexField, PreviousIndexField, indexes_of
from authhero_encrypt.blind_index.lookups import INDEXED_LOOKUPS, IndexedLookup, _lookup_class
from authhero_encrypt.fields.refused import refused_lookup
from authhero_encrypt.json_paths import Path, path_text

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

__all__ = ["IndexedKeyTransform", "JSONIndexedLookup", "indexed_key_transform", "indexes_at"]


class JSONIndexedLookup(IndexedLookup):
    """An equality lookup on a JSON secret path, answered by its blind index."""

    # exact=None would otherwise become isnull (a missing key), which JSON null is not.
    can_use_none_as_rhs = True

    def get_prep_lookup(self) -> Any:
        prepared = super().get_prep_lookup()
        for value in self.rhs if self.many else [self.rhs]:
            if value is None and self.many:
                continue  # IN (..., null) matches no row, as on a JSONField
            if not isinstance(value, str):
                raise self.not_a_string(value)
        return prepared

    def not_a_string(self, value: Any) -> FieldError:
        source = self.index.source_field
        what = "None (JSON null)" if value is None else type(value).__name__
        document: Any = None
        for key in reversed(self.index.source_path):
            document = {key: document}
        return FieldError(
            f"{source.label()}: '{path_text(self.index.source_path)}' is an encrypted path "
            f"searched through its blind index {self.index.name}, which compares strings only, "
            f"so '{self.lookup_name}' cannot take {what}. Anything but a string at that path is "
            f"stored as it is: compare it with {source.name}__contains={document!r} (with your "
            f"value for None), or test the key with {source.name}__has_key."
        )

    def alias(self) -> str:
        expression = self.lhs
        while not isinstance(expression, Col):
            expression = expression.lhs
        return str(expression.alias)

    def keeps_legacy(self) -> bool:
        # Kept under strict mode too: for a row whose key is missing the comparison is NULL, as
        # on a plaintext JSONField, where exclude() leaves such rows out; without it they would
        # be kept. (A legacy plaintext row it finds is refused when read, as strict mode says.)
        return True

    def legacy_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, legacy: list[str]
    ) -> tuple[str, list[Any]]:
        # The value at the path compared as a plaintext JSONField compares it, on a column
        # that skips the encrypted field's guard (this comparison is on plaintext rows only).
        source = self.index.source_field
        expression: Any = Col(self.alias(), source, output_field=models.JSONField())
        for key in self.index.source_path:
            expression = KeyTransform(key, expression)
        sql, params = compiler.compile(KeyTransformIn(expression, legacy))
        return sql, list(params)


class IndexedKeyTransform(Transform):
    """A secret path with a blind index: its equality lookups answered, all else refused.

    Like the refused transform it stands in for, it raises the path's refusal when compiled
    (``values()``, ``order_by()``, ``F()``) and hands deeper keys the refused transform.
    """

    lookups: dict[str, type[IndexedLookup]]
    index_name: str
    refused: Any  # the path's refused-transform factory (authhero_encrypt.fields.json)

    def get_lookup(self, lookup_name: str) -> Any:
        found = self.lookups.get(lookup_name)
        if found is not None:
            return found
        answered = ", ".join(f"'{name}'" for name in sorted(self.lookups))
        return refused_lookup(
            lookup_name,
            FieldError(
                f"{self.refused.refusal} Its blind index {self.index_name} answers {answered}."
            ),
        )

    def get_transform(self, lookup_name: str) -> Any:
        return self.refused

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **kwargs: Any
    ) -> Any:
        raise FieldError(str(self.refused.refusal))


class _IndexedKeyTransformFactory:
    def __init__(
        self,
        path: Path,
        index: BlindIndexField,
        lookups: dict[str, type[IndexedLookup]],
        refused: Any,
    ) -> None:
        self.path, self.index_name, self.lookups, self.refused = path, index.name, lookups, refused

    def __call__(self, *args: Any, **kwargs: Any) -> IndexedKeyTransform:
        # The path is part of the expression's identity: two secret paths of one column differ.
        transform = IndexedKeyTransform(*args, path=path_text(self.path), **kwargs)
        transform.lookups = self.lookups
        transform.index_name = self.index_name
        transform.refused = self.refused
        return transform


def indexes_at(field: Any, path: Path) -> tuple[BlindIndexField, ...]:
    """The blind indexes (declared columns, not previous ones) of ``field`` at ``path``."""
    return tuple(
        index
        for index in indexes_of(field, for_writes=True)
        if index.source_path == path and not isinstance(index, PreviousIndexField)
    )


def indexed_key_transform(field: Any, path: Path, refused: Any) -> Any:
    """The transform factory for the secret ``path`` of ``field``: ``refused`` when no index."""
    indexes = indexes_at(field, path)
    if not indexes:
        return refused
    lookups: dict[str, type[IndexedLookup]] = {}
    for index in indexes:
        for name in sorted(INDEXED_LOOKUPS):
            if name != "iexact" or index.folds_case:
                lookups.setdefault(name, _lookup_class(index, name, JSONIndexedLookup))
    return _IndexedKeyTransformFactory(path, indexes[0], lookups, refused)
