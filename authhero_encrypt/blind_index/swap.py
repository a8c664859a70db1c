"""Compare-and-swap writes of a row's index columns:
``UPDATE ... SET idx = %s WHERE pk = %s AND src = <read> AND idx = <read>``.

Tags are deterministic, so unlike a re-encrypted value a tag cannot tell who wrote it; the
guard is the whole row as read: its source and every index column (NULL compared as NULL).
A concurrent write sets the source and its tags in one statement, so it either lands before
(the guard fails, the row is re-read and planned again) or after (it overwrites tags that
were right for the source it replaced). Comparisons are exact as in
:mod:`authhero_encrypt.migrate.swap`: binary on MySQL/MariaDB, ``jsonb`` for a PostgreSQL
JSON source, and PostgreSQL writes a whole batch in one statement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from authhero_encrypt.inventory import PrimaryKey, column_as_text

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

__all__ = ["IndexSwapper", "Update"]

# Primary keys per ``IN (...)`` when re-reading rows, as in authhero_encrypt.migrate.swap.
REREAD_CHUNK = 500


class Update(NamedTuple):
    """One row's planned write: its key, the source and tags read, the tags to write, and
    what the write does to each tag (counted once it lands)."""

    pk: Any
    source: Any
    old: tuple[str | None, ...]
    new: tuple[str | None, ...]
    outcomes: tuple[str, ...]
    legacy: bool = False  # an indexed value of the row is legacy plaintext


class IndexSwapper:
    """The compare-and-swap writes and re-reads of one source column's index columns."""

    def __init__(
        self,
        connection: BaseDatabaseWrapper,
        model: type[Model],
        source: str,
        columns: Sequence[str],
        *,
        is_json: bool,
    ) -> None:
        self.connection = connection
        quote = connection.ops.quote_name
        self.key = PrimaryKey(model, connection)
        self.table = quote(model._meta.db_table)
        self.source = quote(source)
        self.read_source = column_as_text(connection, source) if is_json else self.source
        self.columns = [quote(column) for column in columns]
        self.is_json = is_json
        vendor = connection.vendor
        self.mysql = vendor == "mysql"
        self.native_json = self.mysql and is_json and not getattr(connection, "mysql_is_mariadb", 1)
        pk_field = model._meta.pk
        pk_type = None
        if vendor == "postgresql" and not self.key.composite and pk_field is not None:
            pk_type = pk_field.rel_db_type(connection)
        self.bulk_sql = self._bulk_sql(pk_type) if pk_type else None
        self._row_sql: dict[tuple[bool, ...], str] = {}

    def _bulk_sql(self, pk_type: str) -> str:
        n = len(self.columns)
        pk = self.key.quoted[0]
        cast = "::jsonb" if self.is_json else ""
        olds = ", ".join(f"e->>{2 + i} AS o{i}" for i in range(n))
        news = ", ".join(f"e->>{2 + n + i} AS n{i}" for i in range(n))
        sets = ", ".join(f"{column} = v.n{i}" for i, column in enumerate(self.columns))
        guards = " AND ".join(
            f"t.{column} IS NOT DISTINCT FROM v.o{i}" for i, column in enumerate(self.columns)
        )
        return (
            f"UPDATE {self.table} AS t SET {sets} "  # noqa: S608
            f"FROM (SELECT (e->>0)::{pk_type} AS pk, e->>1 AS src, {olds}, {news} "
            "FROM json_array_elements(%s::json) AS e) AS v "
            f"WHERE t.{pk} = v.pk AND t.{self.source} IS NOT DISTINCT FROM v.src{cast} "
            f"AND {guards} RETURNING t.{pk}"
        )

    def _equal(self, column: str, *, source: bool) -> str:
        if source and self.is_json:
            if self.native_json:
                return f"{column} = CAST(%s AS JSON)"
            if self.connection.vendor == "postgresql":
                return f"{column} = %s::jsonb"
        return f"BINARY {column} = %s" if self.mysql else f"{column} = %s"

    def row_sql(self, nulls: tuple[bool, ...]) -> str:
        """The one-row UPDATE for a row whose source and tags are NULL where ``nulls`` says."""
        found = self._row_sql.get(nulls)
        if found is None:
            guards = [self.key.match]
            for i, column in enumerate([self.source, *self.columns]):
                is_null = nulls[i]
                guards.append(
                    f"{column} IS NULL" if is_null else self._equal(column, source=i == 0)
                )
            sets = ", ".join(f"{column} = %s" for column in self.columns)
            found = self._row_sql[nulls] = (
                f"UPDATE {self.table} SET {sets} WHERE {' AND '.join(guards)}"  # noqa: S608
            )
        return found

    def swap(self, updates: Sequence[Update]) -> set[Any]:
        """Write each update where the row still holds what was read; the pks that did not."""
        with self.connection.cursor() as cursor:
            if self.bulk_sql is not None:
                batch = [[u.pk, u.source, *u.old, *u.new] for u in updates]
                cursor.execute(self.bulk_sql, [json.dumps(batch, ensure_ascii=False, default=str)])
                return {u.pk for u in updates}.difference(row[0] for row in cursor.fetchall())
            conflicts = set()
            for u in updates:
                read = (u.source, *u.old)
                nulls = tuple(value is None for value in read)
                params = [*u.new, *self.key.params(u.pk), *(v for v in read if v is not None)]
                cursor.execute(self.row_sql(nulls), params)
                if cursor.rowcount != 1:
                    conflicts.add(u.pk)
            return conflicts

    def reread(self, pks: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``(pk, source, *tags)`` of these rows as they are now (deleted rows left out)."""
        rows: list[tuple[Any, ...]] = []
        key = self.key
        selected = ", ".join([key.select, self.read_source, *self.columns])
        with self.connection.cursor() as cursor:
            for start in range(0, len(pks), REREAD_CHUNK):
                where, params = key.among(pks[start : start + REREAD_CHUNK])
                cursor.execute(
                    f"SELECT {selected} FROM {self.table} "  # noqa: S608
                    f"WHERE {where} ORDER BY {key.order}",
                    params,
                )
                rows.extend((key.key(row), *row[key.width :]) for row in cursor.fetchall())
        return rows
