"""Read errors: what a refused stored value raises, and what Django's frames show of it.

Django's error reports (the technical 500 page, ``AdminEmailHandler``) print the locals of every
frame of every exception in the chain, whatever DEBUG says for frames no ``sensitive_variables``
covers. A field meets a stored value it refuses (legacy plaintext in strict mode, a ciphertext
no configured key opens) inside ``SQLCompiler.apply_converters``, whose local ``value`` is the
stored text, with the ORM's iterables above it holding the fetched rows. So the field's
converter does not raise: it hands Django a :class:`Refused` marker, which holds the error and
nothing of the value, and :func:`raise_refused`, the converter Django runs next on the same
column, raises the error once the marker has replaced the stored text in ``value``. Before it
does, the rows that the frames above hold are blanked where their encrypted columns are
(:func:`scrub_rows_above`); the failed iteration drops them anyway, and a row held as a tuple
is rebound. A deferred value loaded on attribute access is re-raised above Django's descriptor,
whose frame holds the instance's ``__dict__`` (:class:`EncryptedAttribute`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, transaction
from django.db.models.query_utils import DeferredAttribute
from django.db.models.sql.compiler import SQLCompiler

from authhero_encrypt.exceptions import DecryptionError, EncryptionError
from authhero_encrypt.fields.cursors import close_suspended_cursors

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

__all__ = [
    "EncryptedAttribute",
    "Refused",
    "like_escape",
    "primary_keys_holding",
    "raise_refused",
    "refuse",
    "rewrap",
    "scrub_rows_above",
    "without_frames",
]

_APPLY_CONVERTERS = SQLCompiler.apply_converters.__code__
_MAX_PKS_NAMED = 3
_HIDDEN = "[decrypted value removed from this report]"
# The locals of Django's query frames that hold rows: the row being converted and the one before
# it (``row``; ``values`` in ``raw()``), the fetched chunks of raw rows (``results``, in
# ``ModelIterable``), and the reordered copy ``raw()`` builds of each row.
_ROWS = ("row", "values")
_FOLDED = "row"  # the name of a row of another width: one with a composite key folded
_CHUNKS = "results"
_COPIES = "model_init_values"


def rewrap(exc: EncryptionError, context: str) -> EncryptionError:
    """The same kind of error as ``exc`` with ``context`` in front, for raising ``from exc``."""
    message = f"{context}: {exc}"
    if isinstance(exc, DecryptionError):
        return type(exc)(message, key_id=exc.key_id)
    return type(exc)(message)


def without_frames(exc: EncryptionError) -> EncryptionError:
    """``exc`` with the tracebacks of it and its causes dropped; the messages and chain stay.

    For errors whose frames hold decrypted values: error reports print the locals of every
    frame of every exception in the chain.
    """
    current: BaseException | None = exc
    while current is not None:
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return exc


class Refused:
    """What a field's converter hands Django for a stored value it refuses: the error to raise,
    and nothing of the value, so that a report showing it shows nothing."""

    __slots__ = ("error",)

    def __init__(self, error: EncryptionError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return "<refused stored value: see the exception's message>"


def refuse(error: EncryptionError, cause: BaseException | None = None) -> Refused:
    """The refusal for a field's ``from_db_value`` to return: ``error`` (raised ``from cause``).

    Called by Django as a converter, ``from_db_value`` returns a :class:`Refused`, which the
    next converter raises (see the module's docstring). Called any other way (directly, or
    through a subclass's ``from_db_value``), it raises here, as a refusal always did.
    """
    if cause is not None:
        error.__cause__ = cause
    without_frames(error)
    caller = sys._getframe(2)
    if caller.f_code is _APPLY_CONVERTERS:
        return Refused(error)
    scrub_rows_above(caller)
    close_suspended_cursors()
    raise error


def raise_refused(value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
    """The converter after an encrypted field's own: raises the error a :class:`Refused` holds."""
    if value.__class__ is not Refused:
        return value
    error = value.error
    scrub_rows_above(sys._getframe(1))
    close_suspended_cursors()  # the read is over: see authhero_encrypt.fields.cursors
    raise error


def scrub_rows_above(frame: FrameType | None) -> None:
    """Blank the encrypted columns of the rows that Django's query frames above ``frame`` hold.

    From ``SQLCompiler.apply_converters`` up: its ``row`` holds the plaintext of the row's
    earlier encrypted columns and the stored text of the rest, the iterables' ``row`` the
    previous row, decrypted, and ``ModelIterable``'s ``results`` every fetched row as stored
    (legacy plaintext included). No field can reach those variables, but the rows are lists
    the failed iteration is about to drop: they are overwritten in place, and the chunks of
    ``results`` replaced with blanked copies. The encrypted columns are those whose converters
    end with :func:`raise_refused`.
    """
    while frame is not None and frame.f_code is not _APPLY_CONVERTERS:
        frame = frame.f_back
    if frame is None:
        return
    converters = frame.f_locals.get("converters") or ()
    current = frame.f_locals.get("row")
    positions = [
        position for position, (functions, _expression) in converters if raise_refused in functions
    ]
    if not positions or not isinstance(current, list):
        return
    width = len(current)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("django.db."):
        local = frame.f_locals
        for name in _ROWS:
            row = local.get(name)
            if isinstance(row, list) and len(row) == width:
                for position in positions:
                    row[position] = _HIDDEN
            elif isinstance(row, list) and name == _FOLDED:
                # Django has folded a composite primary key of this row into a tuple, so its
                # columns have moved: all but the key go.
                row[:] = [value if isinstance(value, tuple) else _HIDDEN for value in row]
            elif isinstance(row, tuple) and len(row) == width:
                # values_list(named=True) holds the previous row as a tuple.
                _rebind_local(frame, name, _blanked(row, width, positions))
        chunks = local.get(_CHUNKS)
        if isinstance(chunks, list):
            for index, chunk in enumerate(chunks):
                if isinstance(chunk, (list, tuple)):
                    chunks[index] = [_blanked(raw, width, positions) for raw in chunk]
        copy = local.get(_COPIES)
        if isinstance(copy, list):
            copy[:] = [_HIDDEN] * len(copy)
        frame = frame.f_back


def _rebind_local(frame: FrameType, name: str, value: Any) -> None:
    """Rebind a local of a running frame, for a row held as a tuple, which cannot be changed.

    Python 3.13 writes ``f_locals`` through to the frame (PEP 667); before, the snapshot is
    written back with ``PyFrame_LocalsToFast``, as debuggers do. Skipped where the C API is not
    there (another interpreter).
    """
    frame.f_locals[name] = value
    if sys.version_info < (3, 13):
        import ctypes  # only on this rare path

        api = getattr(ctypes, "pythonapi", None)
        if api is not None:
            api.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))


def _blanked(row: Any, width: int, positions: Sequence[int]) -> Any:
    if not isinstance(row, (list, tuple)) or len(row) != width:
        return row
    copy = list(row)
    for position in positions:
        copy[position] = _HIDDEN
    return tuple(copy)


class EncryptedAttribute(DeferredAttribute):
    """The model attribute of an encrypted field: a deferred value's read error is raised here.

    Loading a deferred value (``only()``, ``defer()``) fails inside Django's
    ``DeferredAttribute.__get__``, whose frame holds the instance's ``__dict__``, and with it
    every secret already decrypted on the instance; the error leaves without the frames below.
    """

    def __get__(self, instance: Model | None, cls: type | None = None) -> Any:
        try:
            return super().__get__(instance, cls)
        except EncryptionError as exc:
            raise without_frames(exc) from exc.__cause__


def primary_keys_holding(
    model: type[Model], column: str, pattern: str, connection: BaseDatabaseWrapper
) -> list[Any]:
    """Primary keys of rows whose ``column`` matches the LIKE ``pattern``; a best effort.

    Only called on the error path, to name the rows an undecryptable value came from: the
    converter that meets the value is never told the row. Each ciphertext has its own random IV,
    so it picks out its row. Runs in a savepoint and swallows database errors, so looking for
    context can never break the caller's transaction.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    # A composite primary key (models.CompositePrimaryKey) has columns and no column: its rows
    # are named by the tuple of their key.
    pk_field: Any = model._meta.pk
    pk_columns: tuple[str, ...] = getattr(pk_field, "columns", None) or (pk_field.column,)
    pk = ", ".join(connection.ops.quote_name(c) for c in pk_columns)
    col = connection.ops.quote_name(column)
    if connection.vendor == "postgresql":
        col = f"CAST({col} AS text)"
    # SQLite's LIKE has no escape character unless told, and base64url is full of '_'.
    sql = f"SELECT {pk} FROM {table} WHERE {col} LIKE %s ESCAPE %s ORDER BY {pk}"  # noqa: S608
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(sql, [pattern, "\\"])
            rows = cursor.fetchmany(_MAX_PKS_NAMED)
            return [tuple(row) if len(pk_columns) > 1 else row[0] for row in rows]
    except DatabaseError:
        return []


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
