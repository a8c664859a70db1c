"""Compare-and-swap writes of one column: ``UPDATE ... WHERE pk = %s AND col = <value read>``.

A row that changed after it was read is never overwritten: :meth:`Swapper.swap` returns its
primary key, and the caller re-reads it (:meth:`Swapper.reread`) and tries again. The
comparison is exact on every backend (binary on MySQL/MariaDB, ``jsonb`` on PostgreSQL), and
PostgreSQL writes a whole batch in one statement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from authhero_encrypt.inventory import PrimaryKey, column_as_text, load_json

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

__all__ = ["REREAD_CHUNK", "Row", "Swapper"]

# Primary keys per ``IN (...)`` when re-reading rows, well below every backend's parameter limit.
REREAD_CHUNK = 500

Row = tuple[Any, Any]


class Swapper:
    """Compare-and-swap writes and re-reads of one column, in the dialect of its backend."""

    def __init__(
        self, connection: BaseDatabaseWrapper, model: type[Model], column: str, *, is_json: bool
    ) -> None:
        self.connection = connection
        self.is_json = is_json
        quote = connection.ops.quote_name
        self.key = PrimaryKey(model, connection)
        self.table = quote(model._meta.db_table)
        self.col = quote(column)
        # JSON is read as its text, so that the documents are rewritten from what is stored.
        self.read = column_as_text(connection, column) if is_json else self.col
        vendor = connection.vendor
        pk_field = model._meta.pk
        pk_type = None
        if vendor == "postgresql" and not self.key.composite and pk_field is not None:
            pk_type = pk_field.rel_db_type(connection)
        if pk_type:
            self.pk = self.key.quoted[0]
            # One statement per batch, and the rows that matched come back: no per-row round
            # trip and no re-read to find the conflicts. The batch travels as one JSON text of
            # [pk, old, new] triples: json.dumps is C, where psycopg's client-side array
            # literals cost three times as much per row.
            cast = "::jsonb" if is_json else ""
            self.bulk_sql: str | None = (
                f"UPDATE {self.table} AS t SET {self.col} = v.new{cast} "  # noqa: S608
                f"FROM (SELECT (e->>0)::{pk_type} AS pk, e->>1 AS old, e->>2 AS new "
                "FROM json_array_elements(%s::json) AS e) AS v "
                f"WHERE t.{self.pk} = v.pk AND t.{self.col} = v.old{cast} "
                f"RETURNING t.{self.pk}"
            )
        else:
            self.bulk_sql = None
        # The comparison must be exact. MySQL/MariaDB compare text under the column's collation,
        # often case- and trailing-space-insensitive, so a concurrent "Secret" -> "secret" would
        # pass for unchanged; BINARY compares the bytes. MySQL's native JSON type is compared
        # as JSON (MariaDB's JSON is text with a binary collation).
        value, compared = "%s", f"{self.col} = %s"
        if vendor == "mysql":
            if is_json and not getattr(connection, "mysql_is_mariadb", True):
                compared = f"{self.col} = CAST(%s AS JSON)"
            else:
                compared = f"BINARY {self.col} = %s"
        elif vendor == "postgresql" and is_json:
            value, compared = "%s::jsonb", f"{self.col} = %s::jsonb"
        self.row_sql = (
            f"UPDATE {self.table} SET {self.col} = {value} "  # noqa: S608
            f"WHERE {self.key.match} AND {compared}"
        )

    def swap(self, updates: Sequence[tuple[Any, ...]]) -> set[Any]:
        """Write ``(pk, old, new, ...)`` where the column still holds ``old``; the pks that did
        not (changed or deleted underneath)."""
        pks = [u[0] for u in updates]
        with self.connection.cursor() as cursor:
            if self.bulk_sql is not None:
                batch = json.dumps([u[:3] for u in updates], ensure_ascii=False, default=str)
                cursor.execute(self.bulk_sql, [batch])
                return set(pks).difference(row[0] for row in cursor.fetchall())
            params = self.key.params
            cursor.executemany(self.row_sql, [(u[2], *params(u[0]), u[1]) for u in updates])
            if cursor.rowcount == len(updates):
                return set()
        # Some rows changed underneath. Every new value holds a fresh random IV, so a row that
        # now holds exactly what was written was written by this run, and no other.
        wanted = {u[0]: u[2] for u in updates}
        now = dict(self.reread(pks))
        return {pk for pk in pks if not self.same(now.get(pk), wanted[pk])}

    def same(self, current: Any, written: str) -> bool:
        if current is None:
            return False
        if self.is_json:
            # A JSON column may hand the document back re-serialised (MySQL's JSON type does).
            return bool(load_json(current) == load_json(written))
        return bool(current == written)

    def reread(self, pks: Sequence[Any]) -> list[Row]:
        rows: list[Row] = []
        key = self.key
        with self.connection.cursor() as cursor:
            for start in range(0, len(pks), REREAD_CHUNK):
                where, params = key.among(pks[start : start + REREAD_CHUNK])
                cursor.execute(
                    f"SELECT {key.select}, {self.read} FROM {self.table} "  # noqa: S608
                    f"WHERE {where} ORDER BY {key.order}",
                    params,
                )
                rows.extend((key.key(row), row[key.width]) for row in cursor.fetchall())
        return rows
