"""Truncated blind indexes: the false positives of a short tag removed after decryption.

A tag cut below 128 bits (``bits=32`` … ``120``, plain indexes only) leaks less about which rows
share a value, but unrelated values then share a tag often enough to matter: with 32 bits, two
of 100,000 distinct values collide with probability about 2/3. Such an index answers a lookup in
two statements. The first reads the primary key and the source of every row carrying one of the
asked tags (the candidates), decrypts each and keeps those whose plaintext normalizes to an
asked value; the lookup itself then compiles to::

    (code_index IS NOT NULL AND code_index IN (%s, %s) AND id IN (%s, %s, ...))

The lookup is exact, so every query built on it is: instances, ``values()``, ``count()``,
``exists()``, aggregates, ``update()``, ``delete()``, subqueries, ``exclude()`` and ``Q``
combinations answer what a plaintext column would, and nothing needs filtering in Python
afterwards. The cost is the first statement (one per compiled query, decrypting every candidate)
and a primary key list as long as the matching rows: truncation is meant for selective values.
The candidate rows are read with the statement's own connection and transaction, so inside one
transaction under REPEATABLE READ or SERIALIZABLE both statements see the same rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models.expressions import Col

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

    from authhero_encrypt.blind_index.lookups import IndexedLookup

__all__ = ["exact_rows"]


def exact_rows(
    lookup: IndexedLookup,
    compiler: SQLCompiler,
    connection: BaseDatabaseWrapper,
    tags: list[str],
    plaintexts: list[str],
) -> tuple[str, list[Any]] | None:
    """``pk IN (...)`` over the candidates whose plaintext matches; ``None`` when none does."""
    index = lookup.index
    source = index.source_field
    wanted = {index.normalize(text) for text in plaintexts}
    candidates = (
        index.model._base_manager.db_manager(compiler.using)
        .filter(**{f"{index.attname}__in": tags})
        .values_list("pk", source.attname)
    )
    pk_field = index.model._meta.pk
    assert pk_field is not None  # for mypy: every concrete model has one
    kept = []
    for pk, value in candidates:
        plaintext = index.plaintext(index.value_at_path(value))
        if plaintext is not None and index.normalize(plaintext) in wanted:
            kept.append(pk_field.get_db_prep_value(pk, connection))
    if not kept:
        return None
    pk_sql, _ = Col(lookup.alias(), pk_field).as_sql(compiler, connection)
    return f"{pk_sql} IN ({', '.join(['%s'] * len(kept))})", kept
