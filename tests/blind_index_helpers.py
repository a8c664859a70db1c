"""Helpers shared by the blind index tests: what a column holds at rest, read past the ORM."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.db import connection


def index_subkey(key_text: str, label: str) -> bytes:
    """An index's subkey, derived here from the documented recipe (HKDF-SHA256 over its label)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"authhero_encrypt blind index v1",
        info=label.encode(),
    ).derive(base64.b64decode(key_text))


def raw_value(model: Any, pk: Any, column: str) -> Any:
    """The stored value of ``column`` in the row ``pk`` of ``model``'s table."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]
