from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture
def raw_column():
    """Read one column of one row straight from the database, bypassing every field converter."""

    def read(model: type, pk: object, column: str) -> object:
        table = connection.ops.quote_name(model._meta.db_table)
        col = connection.ops.quote_name(column)
        pk_col = connection.ops.quote_name(model._meta.pk.column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {col} FROM {table} WHERE {pk_col} = %s", [pk])
            row = cursor.fetchone()
        assert row is not None, f"no row {pk!r} in {table}"
        return row[0]

    return read
