"""Equality lookups on an encrypted field, answered by its blind index.

``filter(email=X)``, ``email__in=[...]`` and, when the index folds case, ``email__iexact=X``
compile to the tag column, matching the tag of each value under *every* configured index key (so
rows not yet moved to a new key are found), and rows whose tag is still empty by the stored
legacy plaintext itself::

    (email_index IS NOT NULL AND email_index IN (%s, %s))
    OR (email_index IS NULL AND email = %s)

Written so that neither branch is ever NULL: ``exclude()`` negates the whole, and a NULL would
drop rows a plaintext column keeps. The second branch is left out when strict mode refuses
plaintext (no row may hold any). A value that carries the ciphertext prefix is no plaintext any
row can hold (the fields store such values as ciphertext), so it matches nothing, and a pasted
ciphertext can never find the row it was copied from. Only plain values are compared: an
expression or a subquery on the right is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import EmptyResultSet, FieldError
from django.db.models.expressions import Col

from authhero_encrypt.blind_index.field import BlindIndexField, indexes_of
from authhero_encrypt.fields.generic import Lookup
from authhero_encrypt.validators import CIPHERTEXT_PREFIXES

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

__all__ = ["INDEXED_LOOKUPS", "answered_by_index", "indexed_lookup"]

INDEXED_LOOKUPS = frozenset({"exact", "iexact", "in"})


class IndexedLookup(Lookup[Any]):
    """Base of the lookups a blind index answers; ``index`` is set on each concrete class."""

    index: BlindIndexField
    prepare_rhs = False
    many = False

    def get_prep_lookup(self) -> Any:
        values = self.rhs if self.many else [self.rhs]
        if hasattr(values, "resolve_expression") or not isinstance(values, Iterable):
            raise self.refusal(values)
        for value in values:
            if hasattr(value, "resolve_expression"):
                raise self.refusal(value)
        return self.rhs

    def refusal(self, value: Any) -> FieldError:
        source = self.index.source_field
        return FieldError(
            f"{source.label()} is encrypted at rest and searched through its blind index "
            f"{self.index.name}, which compares plain values only: '{self.lookup_name}' cannot "
            f"take {type(value).__name__}. Pass the value (or a list of values) itself."
        )

    def plaintexts(self) -> list[str]:
        values = self.rhs if self.many else [self.rhs]
        found = []
        for value in values:
            if value is None:
                continue  # IN (..., NULL, ...) matches no row, as for a plaintext column
            text = value if isinstance(value, str) else str(value)
            if text.startswith(CIPHERTEXT_PREFIXES):
                continue
            found.append(text)
        return found

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        plaintexts = self.plaintexts()
        if not plaintexts:
            raise EmptyResultSet
        index = self.index
        index_sql, _ = Col(self.alias(), index).as_sql(compiler, connection)
        tags = sorted({tag for text in plaintexts for tag in index.match_tags(text)})
        branches: list[str] = []
        params: list[Any] = []
        tagged = (
            self.tagged_sql(compiler, connection, index_sql, tags, plaintexts) if tags else None
        )
        if tagged is not None:
            branches.append(f"({tagged[0]})")
            params.extend(tagged[1])
        if self.keeps_legacy():
            legacy_sql, legacy_params = self.legacy_sql(
                compiler, connection, sorted(set(plaintexts))
            )
            branches.append(f"({index_sql} IS NULL AND {legacy_sql})")
            params.extend(legacy_params)
        if not branches:
            raise EmptyResultSet
        return "(" + " OR ".join(branches) + ")", params

    def tagged_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        index_sql: str,
        tags: list[str],
        plaintexts: list[str],
    ) -> tuple[str, list[Any]] | None:
        """The test a row with a tag passes; ``None`` when no row can."""
        marks = ", ".join(["%s"] * len(tags))
        sql, params = f"{index_sql} IS NOT NULL AND {index_sql} IN ({marks})", list(tags)
        if not self.index.truncated:
            return sql, params
        # Short tags collide: only the candidates whose plaintext matches (see truncation.py).
        from authhero_encrypt.blind_index.truncation import exact_rows

        rows = exact_rows(self, compiler, connection, tags, plaintexts)
        return None if rows is None else (f"{sql} AND {rows[0]}", params + rows[1])

    def keeps_legacy(self) -> bool:
        """Whether rows without a tag are compared by their stored plaintext."""
        return not self.index.source_field.refuses_plaintext()

    def alias(self) -> str:
        """The table alias of the source column (and so of the index)."""
        return str(self.lhs.alias)

    def legacy_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, legacy: list[str]
    ) -> tuple[str, list[Any]]:
        """The test a row without a tag passes: its stored plaintext is one of ``legacy``."""
        source_sql, _ = Col.as_sql(self.lhs, compiler, connection)
        return f"{source_sql} IN ({', '.join(['%s'] * len(legacy))})", list(legacy)


def indexed_lookup(field: Any, lookup_name: str) -> type[IndexedLookup] | None:
    """The lookup class the first blind index over ``field`` answers ``lookup_name`` with."""
    for index in indexes_of(field):
        if lookup_name == "iexact" and not index.folds_case:
            continue
        return _lookup_class(index, lookup_name)
    return None


def answered_by_index(field: Any, lookup_name: str | None) -> bool:
    """Whether ``lookup_name`` on ``field`` is answered by one of its blind indexes; for the
    integrations (django-filter, the admin, DRF) that decide which lookups to offer."""
    if lookup_name not in INDEXED_LOOKUPS:
        return False
    return indexed_lookup(field, lookup_name) is not None


def _lookup_class(
    index: BlindIndexField, lookup_name: str, base: type[IndexedLookup] = IndexedLookup
) -> type[IndexedLookup]:
    cache: dict[tuple[type[IndexedLookup], str], type[IndexedLookup]] = index.__dict__.setdefault(
        "_lookup_classes", {}
    )
    found = cache.get((base, lookup_name))
    if found is None:
        namespace = {"index": index, "lookup_name": lookup_name, "many": lookup_name == "in"}
        found = cache[(base, lookup_name)] = type(base.__name__, (base,), namespace)
    return found
