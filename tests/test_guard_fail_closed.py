"""The guard fails closed: Django internals that are not what it expects refuse every use.

Each test simulates a refactor of Django's SQL compiler, by replacing one of its methods with a
copy whose code (and so identity, name or local names) differs, as a new Django release would,
and checks that reads of an encrypted column then raise ``FieldError`` instead of reaching the
database unguarded. Reads of plaintext-only models are never affected.
"""

from __future__ import annotations

import types
from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.db.models import F
from django.db.models.sql.compiler import SQLCompiler

from authhero_encrypt.fields import expressions
from tests.testapp.models import Secret

pytestmark = pytest.mark.django_db

UNKNOWN = "outside the path this version of the guard knows"


@pytest.fixture
def rows() -> list[Secret]:
    return [Secret.objects.create(label=f"row{i}", token=t) for i, t in enumerate("aba")]


def _copy(function: Any, **changes: Any) -> Any:
    """``function`` with its code replaced by ``function.__code__.replace(**changes)``."""
    code = function.__code__.replace(**changes)
    copy = types.FunctionType(
        code, function.__globals__, code.co_name, function.__defaults__, function.__closure__
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    return copy


def _renamed_locals(function: Any, renames: dict[str, str]) -> Any:
    code = function.__code__
    names = tuple(renames.get(name, name) for name in code.co_varnames)
    cells = tuple(renames.get(name, name) for name in code.co_cellvars)
    return _copy(function, co_varnames=names, co_cellvars=cells)


def test_the_guard_knows_this_django():
    assert not expressions.internals_missing()


def test_a_method_missing_at_import_refuses_every_read(monkeypatch, rows):
    # As if SQLCompiler.get_select had been renamed: the guard found no such method.
    monkeypatch.setattr(expressions, "_GET_SELECT", None)
    with pytest.raises(FieldError, match=r"testapp\.Secret\.token"):
        list(Secret.objects.all())
    with pytest.raises(FieldError, match=UNKNOWN):
        list(Secret.objects.filter(token__isnull=True))


def test_a_renamed_select_method_refuses_reads(monkeypatch, rows):
    renamed = _copy(SQLCompiler.get_select, co_name="collect_select")
    monkeypatch.setattr(SQLCompiler, "get_select", renamed)
    with pytest.raises(FieldError, match=r"testapp\.Secret\.token"):
        list(Secret.objects.values_list("token", flat=True))
    assert list(Secret.objects.values_list("label", flat=True).order_by("pk")) == [
        "row0",
        "row1",
        "row2",
    ]


def _delegating(function: Any) -> Any:
    """A new method that calls ``function``: one more frame, as a Django refactor would add."""

    def delegate(self: Any, *args: Any, **kwargs: Any) -> Any:
        return function(self, *args, **kwargs)

    return delegate


def test_a_moved_compile_call_refuses_reads(monkeypatch, rows):
    # get_select() no longer calls compile() itself: the column's compile has another caller.
    monkeypatch.setattr(SQLCompiler, "compile", _delegating(SQLCompiler.compile))
    with pytest.raises(FieldError, match=r"testapp\.Secret\.token is encrypted"):
        list(Secret.objects.all())


def test_a_reimplemented_compile_refuses_the_uses_judged_by_caller(monkeypatch, rows):
    # Columns of the select list are still known by get_select(); a lookup's is not.
    moved = _copy(SQLCompiler.compile, co_name="compile_node")
    monkeypatch.setattr(SQLCompiler, "compile", moved)
    assert sorted(Secret.objects.values_list("token", flat=True)) == ["a", "a", "b"]
    with pytest.raises(FieldError, match="outside its usual path"):
        list(Secret.objects.filter(token__isnull=True).values_list("label"))


def test_a_moved_as_sql_refuses_reads(monkeypatch, rows):
    monkeypatch.setattr(SQLCompiler, "as_sql", _delegating(SQLCompiler.as_sql))
    with pytest.raises(FieldError, match=UNKNOWN):
        list(Secret.objects.all())


def test_renamed_locals_of_the_combinator_refuse_set_operations(monkeypatch, rows):
    # The same method, but Django renamed its locals: the guard cannot find the outer query,
    # so it refuses the part holding the secret.
    name = "_get_combinator_part_sql"
    if not hasattr(SQLCompiler, name):
        name = "get_combinator_sql"
    renamed = _renamed_locals(getattr(SQLCompiler, name), {"self": "this"})
    monkeypatch.setattr(SQLCompiler, name, renamed)
    constant = "_COMBINATOR_PART" if name.startswith("_") else "_COMBINATOR"
    monkeypatch.setattr(expressions, constant, renamed.__code__)
    labels = Secret.objects.values_list("pk", "label")
    tokens = Secret.objects.values_list("pk", "token")
    with pytest.raises(FieldError, match=UNKNOWN):
        list(labels.union(tokens))


def test_renamed_locals_of_get_select_keep_the_alias_rules(monkeypatch, rows):
    # The alias rules are read from the query, not from get_select's locals: renaming them
    # (the refactor that used to switch the rules off) changes nothing.
    renamed = _renamed_locals(SQLCompiler.get_select, {"alias": "name", "select": "columns"})
    monkeypatch.setattr(SQLCompiler, "get_select", renamed)
    monkeypatch.setattr(expressions, "_GET_SELECT", renamed.__code__)
    with pytest.raises(FieldError, match="alias 's'"):
        list(Secret.objects.annotate(s=F("token")).order_by("s"))
    assert [s.s for s in Secret.objects.annotate(s=F("token")).order_by("pk")] == list("aba")


def test_a_query_attribute_the_guard_does_not_know_refuses(monkeypatch, rows):
    from authhero_encrypt.fields import query_shape

    def broken(query: Any) -> str:
        raise AttributeError("'Query' object has no attribute 'order_by'")

    monkeypatch.setattr(expressions, "select_problem", broken)
    with pytest.raises(FieldError, match=UNKNOWN):
        list(Secret.objects.all())
    assert query_shape.select_problem is not broken
