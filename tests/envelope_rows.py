"""Raw reads and writes of ``PrivateKey`` columns, bypassing the field: what is at rest."""

from __future__ import annotations

from typing import Any

from django.db import connection

from tests.testapp.models import PrivateKey

TABLE = PrivateKey._meta.db_table


def raw(pk: object, column: str = "pem") -> Any:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn(column)} FROM {qn(TABLE)} WHERE {qn('id')} = %s", [pk])
        return cursor.fetchone()[0]


def write_raw(pk: object, column: str, value: str) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(TABLE)} SET {qn(column)} = %s WHERE {qn('id')} = %s", [value, pk]
        )
