"""Multi-table updates: every encrypted value is vetted before the first ``UPDATE`` runs.

``QuerySet.update()`` on a child model (multi-table inheritance) writes the child's table first
and each parent's table after it, with one statement per table and no transaction of its own.
An encrypted field refuses a value it cannot seal (``F("name")``, a function, JSON text holding
a secret) when its statement is compiled: for a parent's field that is after the child's table
has been written. Django hands the field nothing earlier, so the parents' values are vetted where
Django queues them, in ``UpdateQuery.add_related_update()``: a refused value raises there, inside
``update()``, before any SQL is sent.
"""

from __future__ import annotations

from typing import Any

from django.db.models.sql.subqueries import UpdateQuery

__all__ = ["install"]

_MARK = "_authhero_encrypt_vetted"


def install() -> None:
    """Wrap ``UpdateQuery.add_related_update`` once (``AppConfig.ready()`` may run twice)."""
    from authhero_encrypt.fields.base import EncryptedFieldMixin

    original = getattr(UpdateQuery, "add_related_update", None)
    if original is None or getattr(original, _MARK, False):
        # Gone in some later Django: each parent's statement still refuses its own values.
        return

    def add_related_update(self: UpdateQuery, model: Any, field: Any, value: Any) -> None:
        if isinstance(field, EncryptedFieldMixin):
            field.vet_write(value)
        original(self, model, field, value)

    setattr(add_related_update, _MARK, True)
    add_related_update.__doc__ = original.__doc__
    UpdateQuery.add_related_update = add_related_update  # type: ignore[method-assign]
