"""Where the encrypted values live: every encrypted field (and JSON path) of the installed models,
and a way to read their stored text in constant memory.

Shared by the ``encryption_status`` and ``encryption_migrate`` commands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import connections, router

from authhero_encrypt.crypto import PREFIX
from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.envelope import EnvelopeEncryptedTextField
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.json_paths import WILDCARD, Path, path_text

if TYPE_CHECKING:
    from django.db.models import Field, Model

__all__ = [
    "MALFORMED",
    "NO_KEY_ID",
    "UNTAGGED",
    "Excluded",
    "PrimaryKey",
    "Target",
    "encrypted_fields",
    "find_targets",
    "is_envelope_field",
    "iter_raw_rows",
    "key_label",
    "load_json",
    "survey",
]

NO_KEY_ID = "(no key id)"
"""How every report (status text and JSON, migrate, admin badges) spells "written without a
key id"; in brackets, so it cannot be taken for a key id (key ids are base64url text)."""
UNTAGGED = NO_KEY_ID  # the key label of values written without a key id
MALFORMED = "(malformed)"  # the key label of prefixed values that are not well-formed

# A whole stored value that names a key id: ``enc:v1:<id>:`` and a canonical base64url payload
# of at least an IV and a GCM tag (28 bytes, so 38 characters), unpadded or with exactly the
# padding a padded writer adds, its last character carrying no stray bits (see crypto.py). Only
# such a value's id may be shown: the text after ``enc:v1:`` of anything else may be a secret
# someone stored by hand. ``\Z`` is the end of the text in Python's and PostgreSQL's dialects.
_B64 = "[A-Za-z0-9_-]"
KEYED_VALUE_PATTERN = (
    f"^enc:v1:{_B64}+:(?={_B64}{{38}})({_B64}{{4}})*"
    f"({_B64}[AQgw](==)?|{_B64}{{2}}[AEIMQUYcgkosw048]=?)?\\Z"
)
_KEYED_VALUE = re.compile(KEYED_VALUE_PATTERN)


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
    def is_envelope(self) -> bool:
        """An ``EnvelopeEncryptedTextField``: ``env:v1`` values, counted and rotated apart."""
        return isinstance(self.field, EnvelopeEncryptedTextField)

    @property
    def is_wildcard(self) -> bool:
        return self.path is not None and self.path[-1] == WILDCARD

    def __str__(self) -> str:
        suffix = "" if self.path is None else f" [{path_text(self.path)}]"
        return f"{self.model_label}.{self.field.name}{suffix}"


def encrypted_fields(model: type[Model]) -> list[Any]:
    """The model's own concrete encrypted fields, in declaration order.

    Envelope fields are included: callers that apply ``enc:v1`` rules must tell them apart
    (:func:`is_envelope_field`), since their ``env:v1`` values are rotated by rewrapping the
    data key (``authhero_encrypt.envelope.rewrap``), not by re-encryption.
    """
    fields: list[Any] = list(model._meta.concrete_fields)
    return [f for f in fields if isinstance(f, EncryptedFieldMixin) and f.model is model]


def is_envelope_field(field: Any) -> bool:
    """Whether ``field`` stores ``env:v1`` values (an ``EnvelopeEncryptedTextField``)."""
    return isinstance(field, EnvelopeEncryptedTextField)


def key_label(stored: str, known_ids: frozenset[str] | tuple[str, ...] = ()) -> str:
    """The key label a report shows for one prefixed value, never text that may be a secret.

    ``UNTAGGED`` for a value without a key id (``enc:v1::`` included, as the codec reads it); a
    configured key id as it is (its name comes from the settings, not from the row); any other
    id only when the whole value is well-formed (``KEYED_VALUE_PATTERN``), else ``MALFORMED``.
    """
    key_id, sep, _payload = stored[len(PREFIX) :].partition(":")
    if not sep or not key_id:
        return UNTAGGED
    if key_id in known_ids:
        return key_id
    return key_id if _KEYED_VALUE.match(stored) else MALFORMED


def group_label(key_id: str | None, well_formed: Any, known_ids: Sequence[str]) -> str:
    """``key_label`` for a group the database formed: its id text and whether its values match
    ``KEYED_VALUE_PATTERN`` (the id is checked again here, whatever the database said)."""
    if not key_id:
        return UNTAGGED
    if key_id in known_ids:
        return key_id
    return key_id if well_formed and _KEY_ID.fullmatch(key_id) else MALFORMED


_KEY_ID = re.compile(f"{_B64}+")


@dataclass(frozen=True)
class Excluded:
    """A model with encrypted fields that a command leaves out, and why (shown in reports)."""

    model: type[Model]
    reason: str

    @property
    def model_label(self) -> str:
        return self.model._meta.label


@dataclass
class Survey:
    """What ``survey`` found: the targets, and the selected models it had to leave out."""

    targets: list[Target] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)


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
    See ``survey`` for which models are left out, and why.
    """
    return survey(selectors, using=using).targets


def survey(selectors: Sequence[str] = (), *, using: str | None = None) -> Survey:
    """``find_targets``, with the selected models that have encrypted fields but are left out.

    Unmanaged models are included: a project that maps AuthHero's own tables with
    ``managed = False`` is who needs these commands most. Left out, and listed with the reason:

    * a proxy model with encrypted fields of its own (its rows are its concrete parent's);
    * with ``using``, a model the routers keep out of that database (as ``dumpdata`` does) and
      an unmanaged model whose table does not exist there.
    """
    found = Survey()
    tables: set[str] | None = None
    for model in _models_for(selectors):
        if model._meta.proxy:
            concrete = model._meta.concrete_model
            if concrete is not None and encrypted_fields(concrete):
                reason = f"a proxy model: its rows are counted as {concrete._meta.label}"
                found.excluded.append(Excluded(model, reason))
            continue
        fields = encrypted_fields(model)
        if not fields:
            continue
        if using is not None and not router.allow_migrate_model(using, model):
            continue  # as dumpdata does: quietly, it has no table there by design
        if using is not None and not model._meta.managed:
            if tables is None:
                tables = set(connections[using].introspection.table_names())
            if model._meta.db_table not in tables:
                found.excluded.append(
                    Excluded(
                        model,
                        f"unmanaged, and its table {model._meta.db_table!r} does not exist in "
                        f"database {using!r}",
                    )
                )
                continue
        for fld in fields:
            if isinstance(fld, JSONPathEncryptedField):
                found.targets.extend(Target(model, fld, path) for path in fld.encrypted_paths)
            else:
                found.targets.append(Target(model, fld))
    return found


def load_json(raw: Any) -> Any:
    """A JSON column's raw cursor value as Python data (drivers return text or parsed data)."""
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8")
    if isinstance(raw, str):
        return json.loads(raw)
    return raw


class PrimaryKey:
    """The primary key columns of a model, and the SQL that pages through and matches rows.

    A single column gives scalar keys; a composite primary key (``models.CompositePrimaryKey``)
    gives tuples, paged through with a row-value comparison ``(a, b) > (%s, %s)`` where the
    backend has it (PostgreSQL, MySQL/MariaDB, SQLite 3.15+) and with the equivalent
    ``a > %s OR (a = %s AND b > %s)`` elsewhere.
    """

    # Backends known to compare row values; any other gets the expanded form.
    ROW_VALUE_VENDORS = frozenset({"postgresql", "mysql", "sqlite"})

    def __init__(self, model: type[Model], connection: Any) -> None:
        pk = model._meta.pk
        columns: tuple[str, ...] = tuple(getattr(pk, "columns", ()) or ())
        if not columns and pk is not None and pk.column is not None:
            columns = (pk.column,)
        if not columns:  # pragma: no cover - every concrete model has a primary key
            raise ValueError(f"{model._meta.label} has no primary key column to page through.")
        quote = connection.ops.quote_name
        self.columns = columns
        self.quoted = [quote(column) for column in columns]
        self.composite = len(columns) > 1
        self.row_values = connection.vendor in self.ROW_VALUE_VENDORS
        self.select = ", ".join(self.quoted)
        self.order = self.select
        self.match = " AND ".join(f"{column} = %s" for column in self.quoted)

    @property
    def width(self) -> int:
        return len(self.columns)

    def key(self, row: Sequence[Any]) -> Any:
        """The primary key of a row that starts with the key columns: a value or a tuple."""
        return tuple(row[: self.width]) if self.composite else row[0]

    def params(self, key: Any) -> list[Any]:
        return list(key) if self.composite else [key]

    def among(self, keys: Sequence[Any]) -> tuple[str, list[Any]]:
        """``WHERE`` text and parameters for the rows whose key is one of ``keys``."""
        if self.composite:
            where = " OR ".join([f"({self.match})"] * len(keys))
            return where, [value for key in keys for value in self.params(key)]
        return f"{self.select} IN ({', '.join(['%s'] * len(keys))})", list(keys)

    def after(self, key: Any) -> tuple[str, list[Any]]:
        """``WHERE`` text and parameters for the rows after ``key`` in key order."""
        if not self.composite:
            return f"{self.quoted[0]} > %s", [key]
        if self.row_values:
            marks = ", ".join(["%s"] * self.width)
            return f"({self.select}) > ({marks})", list(key)
        clauses, params = [], []
        for n, column in enumerate(self.quoted):
            equal = [f"{c} = %s" for c in self.quoted[:n]]
            clauses.append("(" + " AND ".join([*equal, f"{column} > %s"]) + ")")
            params += [*key[:n], key[n]]
        return "(" + " OR ".join(clauses) + ")", params


def iter_raw_rows(
    model: type[Model],
    columns: Sequence[str],
    *,
    using: str = "default",
    batch_size: int = 500,
    after: Any = None,
    as_text: Sequence[str] = (),
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield batches of ``(pk, *columns)`` as stored, bypassing every field converter.

    ``pk`` is the primary key value, or a tuple for a composite primary key. Keyset pagination
    on the primary key (``WHERE pk > last ORDER BY pk LIMIT n``): each batch is one short query,
    memory stays flat however large the table, and a run can resume ``after`` the last primary
    key it finished. The ``as_text`` columns are read as their text (see ``column_as_text``).
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    pk = PrimaryKey(model, connection)
    read = [column_as_text(connection, c) if c in as_text else quote(c) for c in columns]
    selected = ", ".join([pk.select, *read])
    table = quote(model._meta.db_table)
    last = after
    while True:
        where, params = ("", []) if last is None else pk.after(last)
        where = f" WHERE {where}" if where else ""
        sql = f"SELECT {selected} FROM {table}{where} ORDER BY {pk.order} LIMIT %s"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, batch_size])
            rows = [(pk.key(row), *row[pk.width :]) for row in cursor.fetchall()]
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1][0]


def column_as_text(connection: Any, column: str) -> str:
    """A JSON column read as its stored text, never parsed by the driver.

    psycopg parses ``jsonb`` into Python data, which turns ``3.141592653589793238462643383279``
    into a float: rewriting from that would change a value that is not secret.
    """
    quoted = connection.ops.quote_name(column)
    return f"{quoted}::text" if connection.vendor == "postgresql" else quoted
