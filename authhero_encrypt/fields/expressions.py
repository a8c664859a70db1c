"""Where an encrypted column may appear in a query, and the guard that refuses every other use.

The database only ever sees ciphertext, so any SQL that computes on the column (sorting, grouping,
comparing, ``DISTINCT``, aggregates, functions, set operations, subqueries feeding a comparison)
would silently answer about the ciphertext. Lookups are refused where Django asks the field for
them; everything else reaches the column through a ``Col`` expression, which Django turns into
SQL with ``SQLCompiler.compile()`` wherever it is used. The fields hand Django an
:class:`EncryptedCol`, and when it is compiled it looks at which part of the query asked for it:

* the select list, as the column itself (``values()``, ``only()``, instances): allowed, because
  the field's converter turns each value back into plaintext. Under ``DISTINCT`` or a set
  operation other than ``UNION ALL`` only beside its row's primary key (which keeps rows apart
  the way the plaintext would); inside a subquery only for Django's own wrapper that counts a
  sliced or distinct queryset; under an alias (``annotate(s=F("token"))``) never, since the
  alias can then be sorted or grouped on without the column being compiled again;
* ``GROUP BY``, only beside the primary key of the same table (``annotate(Count(...))`` over
  instances, which groups by every selected column on some databases);
* ``isnull`` and a plain ``Count()``, whose answers are the same for ciphertext and plaintext;
* :class:`StoredText`, which asks for the stored text on purpose;
* for ``JSONPathEncryptedField`` also key transforms that reach no encrypted path, and the
  document lookups the field already vets (``has_key``, ``contains`` without secrets, JSON null).

Everything else raises ``FieldError`` naming the field (and path) before any SQL is sent.

Django gives an expression no handle on its parent, so the guard reads the compiler's call stack:
the frame that called ``compile()`` for the column (or for the key transform above it) is the
user. That ties the guard to ``SQLCompiler``'s method names, which is why an unknown caller is
refused rather than allowed: a change in Django can only make the guard stricter.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models.aggregates import Aggregate, Count
from django.db.models.expressions import (
    Col,
    ExpressionWrapper,
    Func,
    OrderBy,
    Subquery,
    When,
    Window,
)
from django.db.models.fields.json import KeyTransform
from django.db.models.lookups import IsNull, Lookup
from django.db.models.sql.compiler import SQLAggregateCompiler, SQLCompiler

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["EncryptedCol", "StoredText"]

_COMPILE = SQLCompiler.compile.__code__
_GET_SELECT = SQLCompiler.get_select.__code__
_GET_GROUP_BY = SQLCompiler.get_group_by.__code__
_GET_DISTINCT = SQLCompiler.get_distinct.__code__
_GET_ORDER_BY = SQLCompiler.get_order_by.__code__
_COMBINATOR = SQLCompiler.get_combinator_sql.__code__
_AGGREGATE = SQLAggregateCompiler.as_sql.__code__
_PREPROCESS = KeyTransform.preprocess_lhs.__code__


class StoredText(ExpressionWrapper):  # type: ignore[type-arg]
    """The stored form of an encrypted column as text, without the field's converter.

    For tools that must see what is at rest (status badges, audits): ``annotate(raw=
    StoredText("client_secret"))``. It is the one expression the guard lets through, so anything
    built on it works on ciphertext, knowingly.
    """

    def __init__(self, expression: Any) -> None:
        if isinstance(expression, str):
            expression = models.F(expression)
        super().__init__(expression, output_field=models.TextField())


class EncryptedCol(Col):
    """A reference to an encrypted column that refuses to be compiled where it would mislead."""

    def as_sql(self, compiler: Any, connection: BaseDatabaseWrapper) -> Any:
        # Frame 0 is this method; frame 1 is whoever compiled the column.
        check_use(self, compiler, sys._getframe(1))
        return super().as_sql(compiler, connection)


def check_use(col: Col, compiler: Any, frame: FrameType | None) -> None:
    """Raise ``FieldError`` unless ``col``, compiled from ``frame``, is used where it is safe."""
    field: Any = col.target
    caller = _compile_caller(frame)
    owner = caller.f_locals.get("self") if caller is not None else None
    path: tuple[str, ...] = ()
    if isinstance(owner, KeyTransform) and caller is not None and caller.f_code is _PREPROCESS:
        path = _key_path(owner)
        kind = field.path_kind(path)
        if kind == "plain":
            return
        if kind == "secret":
            raise field.path_error(path, "a query expression (KT(), KeyTextTransform)")
        # The key holds encrypted paths below it: judge whoever uses the key as a whole.
        caller = _user_of_key(caller, owner)
        owner = caller.f_locals.get("self") if caller is not None else None
    problem = _problem(col, field, compiler, caller, owner, path)
    if problem:
        raise field.expression_error(problem, path)


def _compile_caller(frame: FrameType | None) -> FrameType | None:
    if frame is None or frame.f_code is not _COMPILE:
        return None
    return frame.f_back


def _user_of_key(caller: FrameType, key: KeyTransform) -> FrameType | None:
    """The frame that uses ``key``: a lookup calling its preprocess_lhs, or whoever compiled it."""
    frame = caller.f_back
    while frame is not None and frame.f_locals.get("self") is key:
        frame = frame.f_back
    if frame is not None and frame.f_code is _COMPILE and frame.f_locals.get("node") is key:
        return frame.f_back
    return frame


def _key_path(key: KeyTransform) -> tuple[str, ...]:
    keys: list[str] = []
    expression: Any = key
    while isinstance(expression, KeyTransform):
        keys.insert(0, str(expression.key_name))
        expression = expression.lhs
    return tuple(keys)


def _problem(
    col: Col,
    field: Any,
    compiler: Any,
    caller: FrameType | None,
    owner: Any,
    path: tuple[str, ...],
) -> str:
    """What is wrong with this use, or ``""`` when it is safe."""
    if caller is None:
        return "an expression Django compiled outside its usual path"
    code = caller.f_code
    query = compiler.query
    if code is _GET_SELECT:
        return _select_problem(col, query, caller, path)
    if code is _GET_GROUP_BY:
        expressions = caller.f_locals.get("expressions") or ()
        return "" if _beside_primary_key(col, expressions) else "GROUP BY (values().annotate())"
    if code is _GET_DISTINCT:
        return "DISTINCT ON (distinct(*fields))"
    if code is _GET_ORDER_BY:
        return "ordering (order_by(), Meta.ordering, admin sorting)"
    if isinstance(owner, StoredText) or field.allows_owner(owner, path):
        return ""
    if isinstance(owner, IsNull) or (
        isinstance(owner, Count) and not getattr(owner, "distinct", True)
    ):
        return ""
    return _describe(owner)


def _select_problem(col: Col, query: Any, caller: FrameType, path: tuple[str, ...]) -> str:
    # values() names its columns too (Django 5.2+): only an annotation's alias is a new name.
    alias = caller.f_locals.get("alias")
    select = [expression for expression, _alias in caller.f_locals.get("select") or ()]
    if not path:
        if alias is not None and alias in query.annotations:
            return f"an annotation under the alias '{alias}' (select the field itself instead)"
        if _ordered_by(query, col, alias):
            return "ordering (order_by(), Meta.ordering, admin sorting)"
    elif alias is not None and _alias_reused(query, alias):
        return f"ordering, grouping or DISTINCT on '{alias}'"
    if query.combinator:
        plain_union = query.combinator == "union" and query.combinator_all
        if not plain_union and not _beside_primary_key(col, select):
            return f"a set operation ({query.combinator.upper()})"
    if query.distinct and not query.distinct_fields and not _beside_primary_key(col, select):
        return "SELECT DISTINCT (distinct())"
    if query.subquery and not _inside_aggregate_wrapper(caller):
        return "a subquery (Subquery(), __in=queryset, OuterRef)"
    return ""


def _alias_reused(query: Any, alias: str) -> bool:
    names = {str(item).lstrip("-+") for item in query.order_by}
    group_by = query.group_by if isinstance(query.group_by, tuple) else ()
    refs = {getattr(item, "refs", None) for item in group_by}
    return alias in names or alias in refs or bool(query.distinct)


def _ordered_by(query: Any, col: Col, alias: str | None) -> bool:
    """Whether the query sorts by ``col``, which Django may do by its position in SELECT."""
    ordering = query.order_by or (query.get_meta().ordering if query.default_ordering else ())
    field: Any = col.target
    own = col.alias == query.base_table
    for item in ordering:
        name = getattr(getattr(item, "expression", item), "name", item)
        if not isinstance(name, str):
            continue
        name = name.lstrip("-+")
        if name == alias or (own and name in (field.name, field.attname)):
            return True
    return False


def _beside_primary_key(col: Col, expressions: Any) -> bool:
    return any(
        isinstance(other, Col) and other.alias == col.alias and other.target.primary_key
        for other in expressions
    )


def _inside_aggregate_wrapper(caller: FrameType) -> bool:
    """Whether this select is the inner query of ``SELECT COUNT(*) FROM (...) subquery``."""
    frame = caller.f_back
    while frame is not None:
        if frame.f_code is _AGGREGATE:
            return True
        if frame.f_code in (_COMPILE, _COMBINATOR):
            return False
        frame = frame.f_back
    return False


def _describe(owner: Any) -> str:
    name = type(owner).__name__
    if isinstance(owner, OrderBy):
        return "ordering (order_by(), Meta.ordering, admin sorting)"
    if isinstance(owner, Window):
        return "a window function"
    if isinstance(owner, Aggregate):
        return f"the aggregate {name}()"
    if isinstance(owner, Lookup):
        return f"the lookup '{owner.lookup_name}' (F() in a filter)"
    if isinstance(owner, (When, Subquery)):
        return f"a {name} expression"
    if isinstance(owner, Func):
        return f"the database function {name}()"
    return f"an expression ({name})"
