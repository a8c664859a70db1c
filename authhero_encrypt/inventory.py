"""Where the encrypted values live: every encrypted field (and JSON path) of the installed models,
and a way to read their stored text in constant memory.

Shared by the ``encryption_status`` and ``encryption_migrate`` commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import connections, router

from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.envelope import EnvelopeEncryptedTextField
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.json_paths import WILDCARD, Path, path_text

if TYPE_CHECKING:
    from django.db.models import Field, Model

__all__ = ["Target", "encrypted_fields", "find_targets", "iter_raw_rows", "load_json"]


@dataclass(frozen=True)
class Target:
    """One place that holds encrypted values: a scalar field, or one path of a JSON field."""

    model: type[Model]
    field: Field[Any, Any]
    path: Path | None = None

    @property
    def model_label(self) -> str:
        return self.model._meta.label

    @property
    def path_label(self) -> str | None:
        return None if self.path is None else path_text(self.path)

    @property
    def is_wildcard(self) -> bool:
        return self.path is not None and self.path[-1] == WILDCARD

    def __str__(self) -> str:
        suffix = "" if self.path is None else f" [{path_text(self.path)}]"
        return f"{self.model_label}.{self.field.name}{suffix}"


def encrypted_fields(model: type[Model]) -> list[Any]:
    """The model's own concrete ``enc:v1`` fields, in declaration order.

    Envelope fields are left out: their ``env:v1`` values would look like plaintext to the
    ``enc:v1`` rules, and rotating them means rewrapping (``authhero_encrypt.envelope.rewrap``).
    """
    fields: list[Any] = list(model._meta.concrete_fields)
    return [
        f
        for f in fields
        if isinstance(f, EncryptedFieldMixin)
        and not isinstance(f, EnvelopeEncryptedTextField)
        and f.model is model
    ]


def _models_for(selectors: Sequence[str]) -> list[type[Model]]:
    if not selectors:
        return list(apps.get_models())
    chosen: list[type[Model]] = []
    for selector in selectors:
        app_label, _, model_name = selector.partition(".")
        try:
            config = apps.get_app_config(app_label)
        except LookupError:
            raise LookupError(
                f"No installed app with label {app_label!r}; give app_label or app_label.Model."
            ) from None
        if model_name:
            try:
                found = [config.get_model(model_name)]
            except LookupError:
                raise LookupError(f"App {app_label!r} has no model {model_name!r}.") from None
        else:
            found = list(config.get_models())
        chosen.extend(model for model in found if model not in chosen)
    return chosen


def find_targets(selectors: Sequence[str] = (), *, using: str | None = None) -> list[Target]:
    """Every encrypted field and JSON path of the selected models (all installed by default).

    ``selectors`` are ``app_label`` or ``app_label.Model``; an unknown one raises ``LookupError``.
    Proxy and unmanaged models are skipped: their rows belong to another model or to nobody here.
    With ``using``, so are the models the routers keep out of that database (as ``dumpdata``
    does): they have no table there.
    """
    targets: list[Target] = []
    for model in _models_for(selectors):
        if model._meta.proxy or not model._meta.managed:
            continue
        if using is not None and not router.allow_migrate_model(using, model):
            continue
        for field in encrypted_fields(model):
            if isinstance(field, JSONPathEncryptedField):
                targets.extend(Target(model, field, path) for path in field.encrypted_paths)
            else:
                targets.append(Target(model, field))
    return targets


def load_json(raw: Any) -> Any:
    """A JSON column's raw cursor value as Python data (drivers return text or parsed data)."""
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8")
    if isinstance(raw, str):
        return json.loads(raw)
    return raw


def iter_raw_rows(
    model: type[Model],
    columns: Sequence[str],
    *,
    using: str = "default",
    batch_size: int = 500,
    after: Any = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield batches of ``(pk, *columns)`` as stored, bypassing every field converter.

    Keyset pagination on the primary key (``WHERE pk > last ORDER BY pk LIMIT n``): each batch
    is one short query, memory stays flat however large the table, and a run can resume ``after``
    the last primary key it finished.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    pk_column = quote(model._meta.pk.column)  # type: ignore[arg-type]
    selected = ", ".join([pk_column, *(quote(column) for column in columns)])
    table = quote(model._meta.db_table)
    last = after
    while True:
        where = "" if last is None else f" WHERE {pk_column} > %s"
        sql = f"SELECT {selected} FROM {table}{where} ORDER BY {pk_column} LIMIT %s"  # noqa: S608
        params = [batch_size] if last is None else [last, batch_size]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = [tuple(row) for row in cursor.fetchall()]
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1][0]
