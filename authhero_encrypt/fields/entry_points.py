"""QuerySet methods that take an encrypted field by name and would fail with Django's own error.

``in_bulk(field_name=...)`` asks the field whether it is unique, and ``dates()`` / ``datetimes()``
wrap it in ``Trunc()``; both then raise an error about uniqueness or date types that says nothing
about encryption. The field recognises those callers and raises ``FieldError`` naming itself. The
callers are found by their code objects; if a Django release moves them, Django's own error is
raised as before (a refusal either way, never an answer about ciphertext).
"""

from __future__ import annotations

from types import CodeType, FrameType
from typing import Any

from django.core.exceptions import FieldError
from django.db.models.query import QuerySet
from django.db.models.sql.query import Query

__all__ = ["entry_point_error", "refuse_date_listing"]

_IN_BULK = QuerySet.in_bulk.__code__
_DATES = QuerySet.dates.__code__
_DATETIMES = QuerySet.datetimes.__code__
# values() and values_list() resolve their names here; dates() names its field in Trunc(), an
# annotation resolved through Query.resolve_ref, so a name resolved for add_fields() is never a
# date listing. None when Django renames it: then every resolution is searched, as before.
_ADD_FIELDS = getattr(getattr(Query, "add_fields", None), "__code__", None)
# How far above a name's resolution dates() may be: annotate, _annotate, add_annotation,
# Trunc.resolve_expression, Func.resolve_expression, its comprehension, F.resolve_expression,
# resolve_ref, and some slack for a Django release that adds a frame.
_MAX_DEPTH = 14


def _nested_code(code: CodeType, name: str) -> CodeType | None:
    for const in code.co_consts:
        if isinstance(const, CodeType) and const.co_name == name:
            return const
    return None


# Query.setup_joins hands every resolved name to this inner function, which calls get_col().
_RESOLVE_NAME = _nested_code(Query.setup_joins.__code__, "final_transformer")


def entry_point_error(field: Any, method: str) -> FieldError:
    return FieldError(
        f"{field.label()} is encrypted at rest, so {method} cannot use it: the database only "
        "sees ciphertext, which is neither unique nor a date. Use a plaintext field."
    )


def refuse_date_listing(field: Any, frame: FrameType | None) -> None:
    """Raise ``FieldError`` when ``frame`` (a name's resolution) is inside dates()/datetimes().

    Every frame looked at costs a frame object, so the values()/values_list() resolution is
    let through without a search, and code objects are compared by identity: a set or dict
    lookup would hash each one, which walks its constants on CPython 3.11.
    """
    if frame is not None and frame.f_code is _ADD_FIELDS:
        return
    depth = 0
    while frame is not None and depth < _MAX_DEPTH:
        code = frame.f_code
        if code is _DATES or code is _DATETIMES:
            raise entry_point_error(field, "dates()" if code is _DATES else "datetimes()")
        frame, depth = frame.f_back, depth + 1
