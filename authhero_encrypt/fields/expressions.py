"""Where an encrypted column may appear in a query, and the guard that refuses every other use.

The database only ever sees ciphertext, so any SQL that computes on the column (sorting, grouping,
comparing, ``DISTINCT``, aggregates, functions, set operations, subqueries feeding a comparison)
would silently answer about the ciphertext. Lookups are refused where Django asks the field for
them; everything else reaches the column through a ``Col`` expression, which Django turns into
SQL with ``SQLCompiler.compile()`` wherever it is used. The fields hand Django an
:class:`EncryptedCol`, which judges its use when it is compiled:

* in the select list (``values()``, ``only()``, instances, an alias such as
  ``annotate(s=F("token"))``), the common case, the query is judged once per compiler from its
  structure (:mod:`authhero_encrypt.fields.query_shape`): allowed unless something sorts,
  groups, deduplicates or combines rows on the column, whether by name, ``F()``, alias, select
  position, ``extra(order_by=...)`` or another query of a set operation. Inside Django's own
  wrapper that counts a sliced or distinct queryset it is allowed; inside any other subquery
  only when that subquery selects just this value, which is then judged where the outer query
  uses the subquery, as the column itself would be (a key of it at its path in the column);
* anywhere else, the expression that compiled it is found on the compiler's call stack:
  ``isnull``, a plain ``Count()``, :class:`StoredText`, and for ``JSONPathEncryptedField`` key
  transforms that reach no encrypted path and the document lookups the field already vets are
  allowed; everything else raises ``FieldError`` naming the field (and path) before any SQL is
  sent.

The guard is tied to ``SQLCompiler``'s method names, which are read once at import. It fails
closed: a method it expects that is missing, a compile reached from a method it does not know,
or a frame without the local it reads is refused, so a change in Django can only make the guard
stricter, never silently more permissive.
"""

from __future__ import annotations

import sys
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.aggregates import Aggregate, Count
from django.db.models.expressions import (
    Case,
    Col,
    ExpressionWrapper,
    Func,
    OrderBy,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.lookups import IsNull, Lookup
from django.db.models.sql import compiler as sql_compiler
from django.db.models.sql.compiler import SQLAggregateCompiler, SQLCompiler
from django.db.models.sql.query import Query

from authhero_encrypt.fields.query_shape import (
    combination_problem,
    encrypted_item,
    select_items,
    select_problem,
    subquery_of,
    wrapped_problem,
)

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["EncryptedCol", "StoredText"]


def _code(owner: Any, name: str) -> CodeType | None:
    """The code of ``owner.name``, or ``None`` when Django no longer has it (then: refuse)."""
    return getattr(getattr(owner, name, None), "__code__", None)


_COMPILE = _code(SQLCompiler, "compile")
_GET_SELECT = _code(SQLCompiler, "get_select")
_GET_GROUP_BY = _code(SQLCompiler, "get_group_by")
_GET_DISTINCT = _code(SQLCompiler, "get_distinct")
_GET_ORDER_BY = _code(SQLCompiler, "get_order_by")
_AS_SQL = _code(SQLCompiler, "as_sql")
_COMBINATOR = _code(SQLCompiler, "get_combinator_sql")
_COMBINATOR_PART = _code(SQLCompiler, "_get_combinator_part_sql")  # Django 5.2+
_AGGREGATE = _code(SQLAggregateCompiler, "as_sql")
_QUERY_AS_SQL = _code(Query, "as_sql")
_SUBQUERY_AS_SQL = _code(Subquery, "as_sql")
_PREPROCESS = _code(KeyTransform, "preprocess_lhs")


def _by_identity(*codes: CodeType | None) -> dict[int, CodeType]:
    """Code objects keyed by ``id()``, for ``codes.get(id(code)) is code``.

    A set of the code objects themselves would hash the code on every lookup, which on CPython
    3.11 hashes its names and constants: more than the rest of judging a plain query.
    """
    return {id(code): code for code in codes if code is not None}


# The callers of SQLCompiler.as_sql() that compile a query of their own (not a part of a set
# operation): a query compiled from anywhere else is refused.
_QUERY_CALLERS = _by_identity(
    _code(SQLCompiler, "execute_sql"),
    _QUERY_AS_SQL,
    _code(Query, "sql_with_params"),
    _code(sql_compiler.SQLDeleteCompiler, "as_sql"),
    _AGGREGATE,
)
# The verdict is kept as an attribute of the compiler, read with getattr(): reaching for the
# compiler's __dict__ would make CPython build a dict for it, which slows every later attribute
# access Django makes on that compiler (CPython 3.11: 20,000 instructions per compiled get()).
_VERDICT = "_authhero_encrypt_verdict"
_UNKNOWN = "a query Django compiled outside the path this version of the guard knows"
_SUBQUERY = "a subquery (Subquery(), __in=queryset, OuterRef)"
_MAX_FRAMES = 8  # from get_select() up to the compiler's as_sql()
_CALLER_DEPTH = 8
_PART_CALLERS = _by_identity(_COMBINATOR, _COMBINATOR_PART)


def internals_missing() -> bool:
    """Whether a Django internal the guard reads is gone: then every use is refused."""
    # 'is None' each, not 'None in (...)': that compares None with each code object.
    return (
        _COMPILE is None
        or _GET_SELECT is None
        or _AS_SQL is None
        or _COMBINATOR is None
        or _AGGREGATE is None
        or _PREPROCESS is None
        or _QUERY_AS_SQL is None
        or _SUBQUERY_AS_SQL is None
    )


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
        # Frame 1 is compile(), frame 2 its caller. A column in the select list is the common
        # case: the whole query is judged once, and every other column of it costs a lookup.
        # (Only get_select() compiles select columns; each frame looked at costs a frame
        # object, so compile() itself is only checked on the other paths.)
        caller = sys._getframe(2)
        if caller.f_code is _GET_SELECT and caller.f_code is not None:
            problem = getattr(compiler, _VERDICT, None)
            if problem is None:
                problem = select_verdict(compiler, None)
            if problem:
                raise self.target.expression_error(problem)  # type: ignore[attr-defined]
        else:
            check_use(self, compiler, sys._getframe(1))
        return Col.as_sql(self, compiler, connection)  # not super(): one object less per column


def select_verdict(compiler: Any, frame: FrameType | None) -> str:
    """Judge ``compiler``'s query once, from the frame of its ``get_select()``; cached."""
    try:
        problem = _context_problem(compiler, frame) or select_problem(compiler.query)
    except FieldError:
        raise  # a refusal naming an encrypted path
    except Exception:  # an attribute or shape of Query this guard does not know: refuse
        problem = _UNKNOWN
    setattr(compiler, _VERDICT, problem)
    return problem


def _context_problem(compiler: Any, frame: FrameType | None, depth: int = 0) -> str:
    """What the query compiling this select is part of: a set operation, a subquery.

    ``frame`` is where to start looking for the compiler's ``as_sql()``; ``None`` from a column
    of the select list, whose ``as_sql()`` sits at a known depth (each frame looked at costs a
    frame object, the larger part of the guard's cost on a query).
    """
    if internals_missing() or depth > 3:
        return _UNKNOWN
    parent: FrameType | None = None
    if frame is None:
        # _context_problem, select_verdict, EncryptedCol.as_sql, compile, get_select,
        # setup_query, pre_sql_setup, as_sql, and as_sql's caller: a caller the guard knows
        # there is taken as it; any other shape is searched for from the column's compile.
        parent = sys._getframe(_CALLER_DEPTH)
        code = parent.f_code
        if _QUERY_CALLERS.get(id(code)) is code and code is not _AGGREGATE:
            if not compiler.query.subquery:
                return ""  # a query of its own
            return _subquery_problem(compiler, parent) if code is _QUERY_AS_SQL else _SUBQUERY
        if _PART_CALLERS.get(id(code)) is not code:
            parent, frame = None, sys._getframe(3)
    if parent is None:
        for _ in range(_MAX_FRAMES):
            if frame is None or frame.f_code is _AS_SQL:
                break
            frame = frame.f_back
        parent = frame.f_back if frame is not None else None
    if parent is None:
        return _UNKNOWN
    code = parent.f_code
    if _PART_CALLERS.get(id(code)) is code:
        outer = parent.f_locals.get("self")
        if not isinstance(outer, SQLCompiler):
            return _UNKNOWN
        return combination_problem(outer.query) or _context_problem(outer, parent, depth + 1)
    if _QUERY_CALLERS.get(id(code)) is not code:
        return _UNKNOWN
    if code is _AGGREGATE:
        return wrapped_problem(compiler.query)
    if not compiler.query.subquery:
        return ""
    return _subquery_problem(compiler, parent) if code is _QUERY_AS_SQL else _SUBQUERY


def check_use(col: Col, compiler: Any, frame: FrameType | None) -> None:
    """Raise ``FieldError`` unless ``col``, compiled from ``frame``, is used where it is safe."""
    field: Any = col.target
    if internals_missing():
        raise field.expression_error(_UNKNOWN)
    problem, path = _use_problem(col, field, compiler, _compile_caller(frame), ())
    if problem:
        raise field.expression_error(problem, path)


def _use_problem(
    node: Any, field: Any, compiler: Any, caller: FrameType | None, at: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    """What is wrong with ``node`` compiled from ``caller``, and the path it is used at.

    ``node`` is an encrypted column, or a subquery selecting one (or its key at ``at``).
    """
    owner = caller.f_locals.get("self") if caller is not None else None
    path = at
    if isinstance(owner, KeyTransform) and caller is not None and caller.f_code is _PREPROCESS:
        path = (*at, *_key_path(owner))
        kind = field.path_kind(path)
        if kind == "plain":
            return "", path
        if kind == "secret" or isinstance(owner, KeyTextTransform):
            raise field.path_error(path, "a query expression (KT(), KeyTextTransform)")
        # The key holds encrypted paths below it: judge whoever uses the key as a whole.
        caller = _user_of_key(caller, owner)
        owner = caller.f_locals.get("self") if caller is not None else None
    return _problem(node, field, compiler, caller, owner, path), path


def _subquery_problem(compiler: Any, parent: FrameType) -> str:
    """A subquery selecting an encrypted value, compiled by ``Query.as_sql()`` in ``parent``.

    Its value is the column's (or one of its keys), so it is judged where the subquery is used,
    as the column would be: selected (and decrypted) where the outer query neither sorts,
    groups nor combines rows on it, or under a key that reaches only plaintext
    (``annotate(doc=Subquery(...values("options"))).filter(doc__client_id=...)``). Any other
    shape of the call stack, or a subquery selecting more than that value, is refused.
    """
    query = compiler.query
    items = select_items(query)
    item = encrypted_item(items[0]) if len(items) == 1 and items[0] is not None else None
    if item is None or parent.f_locals.get("self") is not query:
        return _SUBQUERY
    # Compiled as a Query node (a queryset used as a value; Subquery itself in newer Django),
    # or through Subquery.as_sql().
    node: Any = query
    above = parent.f_back
    if above is not None and above.f_code is _SUBQUERY_AS_SQL:
        node = above.f_locals.get("self")
        # Only Subquery itself, with its own template: another template (a subclass, or
        # Subquery(..., template="UPPER(%(subquery)s)")) computes on the stored text.
        if (
            subquery_of(node) is not query
            or type(node) is not Subquery
            or node.template != Subquery.template
            or node.extra
        ):
            return _SUBQUERY
        above = above.f_back
    outer = above.f_locals.get("self") if above is not None else None
    field, at = item
    if (
        above is None
        or above.f_code is not _COMPILE
        or above.f_locals.get("node") is not node
        or not isinstance(outer, SQLCompiler)
        # Selected, its value is decrypted by its output field's converter: the column's own,
        # unless the caller gave another (Subquery(..., output_field=JSONField())).
        or getattr(node, "output_field", None) is not field
    ):
        return _SUBQUERY
    return _use_problem(node, field, outer, above.f_back, at)[0]


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
    col: Any,
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
    if code is _GET_SELECT:
        verdict = getattr(compiler, _VERDICT, None)
        return select_verdict(compiler, caller) if verdict is None else verdict
    if code is _GET_GROUP_BY:
        expressions = caller.f_locals.get("expressions") or ()
        return "" if _beside_primary_key(col, expressions) else "GROUP BY (values().annotate())"
    if code is _GET_DISTINCT:
        return "DISTINCT ON (distinct(*fields))"
    if code is _GET_ORDER_BY:
        return "ordering (order_by(), Meta.ordering, admin sorting)"
    if isinstance(owner, StoredText) or field.allows_owner(owner, path):
        return ""
    if isinstance(owner, IsNull) or _plain_count(owner) or _counted_under_filter(col, caller):
        return ""
    return _describe(owner)


def _beside_primary_key(col: Any, expressions: Any) -> bool:
    if not isinstance(col, Col):
        return False  # a subquery's value: no primary key makes its rows distinct
    return any(
        isinstance(other, Col) and other.alias == col.alias and other.target.primary_key
        for other in expressions
    )


def _plain_count(owner: Any) -> bool:
    return isinstance(owner, Count) and getattr(owner, "distinct", True) is False


def _counted_under_filter(col: Col, caller: FrameType) -> bool:
    """``Count(col, filter=Q(...))`` where the database has no ``FILTER (WHERE ...)``.

    Django then compiles ``COUNT(CASE WHEN <filter> THEN col END)``: the column is only
    tested for NULL, as by a plain ``Count()``. Recognised frame by frame (``When`` compiled by
    a ``Case`` without default, compiled by the ``Count``); anything else is not this.
    """
    frames: list[Any] = []
    frame: FrameType | None = caller
    for _ in range(5):
        if frame is None:
            return False
        frames.append(frame)
        frame = frame.f_back
    when, compile_when, case, compile_case, count = frames
    when = when.f_locals.get("self")
    case = case.f_locals.get("self")
    return (
        compile_when.f_code is _COMPILE
        and compile_case.f_code is _COMPILE
        and isinstance(when, When)
        and when.result is col
        and isinstance(case, Case)
        and case.cases == [when]
        and isinstance(case.default, Value)
        and case.default.value is None
        and _plain_count(count.f_locals.get("self"))
    )


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
