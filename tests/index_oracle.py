"""The plaintext oracle of tests/test_blind_index_properties.py: what a blind-indexed query
must answer, computed in Python from the rows as the test wrote them.

Every row of ``Member`` has its twin in ``MemberCopy`` (same name, same plaintexts). The oracle
keeps, beside each plaintext, how the row holds it: tagged (and under which index key), or as
legacy plaintext with no tag. Its matching rules are the documented ones, written here
independently of the package: a tagged value matches when it is equal after the index's
normalizers and its tag was made by a key still configured; a legacy value matches by its
stored text, compared as the database compares text (MariaDB's ``utf8mb4_bin`` pads trailing
spaces). Query trees are plain tuples, turned into ``Q`` objects and evaluated alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import django
from django.db import connection
from django.db.models import Q

from tests.indexapp.models import Member

COLUMNS = ("email", "phone", "token")


def _digits(value: str) -> str:
    return "".join(c for c in value if c in "0123456789")


# tests/indexapp/models.py: email strip+casefold, phone digits, token as it is.
NORMALIZE: dict[str, Callable[[str], str]] = {
    "email": lambda value: value.strip().casefold(),
    "phone": _digits,
    "token": lambda value: value,
}


def same_text(stored: str, wanted: str) -> bool:
    """Whether the database finds ``stored`` by ``column = wanted`` (a legacy row's branch)."""
    if connection.vendor == "mysql":
        # PAD SPACE collations (utf8mb4_bin among them) ignore trailing spaces in comparisons.
        return stored.rstrip(" ") == wanted.rstrip(" ")
    return stored == wanted


@dataclass
class Cell:
    """One indexed value of one row: its plaintext and how the row holds it."""

    value: str | None
    legacy: bool = False
    key: str | None = None  # the key id of the declared index column's tag
    oldest: str | None = None  # the key id of <index>_previous (the unique email index only)

    def matches(self, column: str, wanted: str, ring: frozenset[str]) -> bool:
        if self.value is None:
            return False
        if self.legacy:
            return same_text(self.value, wanted)
        normalize = NORMALIZE[column]
        return self.key in ring and normalize(self.value) == normalize(wanted)


@dataclass
class Row:
    name: str
    cells: dict[str, Cell] = field(default_factory=dict)


# A query tree: ("leaf", column, lookup, value) | ("name", [names]) | ("not", tree)
# | ("and", tree, tree) | ("or", tree, tree).
Tree = tuple[Any, ...]


def to_q(tree: Tree) -> Q:
    kind = tree[0]
    if kind == "leaf":
        _kind, column, lookup, value = tree
        return Q(**{f"{column}__{lookup}": value})
    if kind == "name":
        return Q(name__in=tree[1])
    if kind == "not":
        return ~to_q(tree[1])
    left, right = to_q(tree[1]), to_q(tree[2])
    return left & right if kind == "and" else left | right


# Django 6.1 keeps None in an __in list: a NULL row compared with it is then neither in nor out
# (SQL's unknown), so exclude() drops it too; Django 5.2 and 6.0 drop None from the list first.
IN_NONE_IS_UNKNOWN = django.VERSION >= (6, 1)


def evaluate(tree: Tree, row: Row, ring: frozenset[str]) -> bool:
    return truth(tree, row, ring) is True


def truth(tree: Tree, row: Row, ring: frozenset[str]) -> bool | None:
    """The SQL truth of ``tree`` for ``row``: True, False or None (unknown)."""
    kind = tree[0]
    if kind == "leaf":
        _kind, column, lookup, value = tree
        cell = row.cells[column]
        if lookup != "in" and value is None:
            return cell.value is None  # exact/iexact None is isnull
        wanted = value if lookup == "in" else [value]
        if lookup == "in" and cell.value is None and None in wanted and IN_NONE_IS_UNKNOWN:
            return None
        return any(cell.matches(column, each, ring) for each in wanted if each is not None)
    if kind == "name":
        return row.name in tree[1]
    if kind == "not":
        inner = truth(tree[1], row, ring)
        return None if inner is None else not inner
    left, right = truth(tree[1], row, ring), truth(tree[2], row, ring)
    if kind == "and":
        if left is False or right is False:
            return False
        return None if left is None or right is None else True
    if left is True or right is True:
        return True
    return None if left is None or right is None else False


class World:
    """The rows the test wrote, by name, and the index keys a query matches under."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.ring: frozenset[str] = frozenset({"i1"})
        self.active = "i1"
        self.oldest = "i1"
        self.counter = 0

    def new_name(self) -> str:
        self.counter += 1
        return f"r{self.counter}"

    def expected(self, tree: Tree) -> set[str]:
        return {name for name, row in self.rows.items() if evaluate(tree, row, self.ring)}

    def excluded(self, tree: Tree) -> set[str]:
        """What ``exclude()`` keeps: the rows for which ``tree`` is false (not unknown)."""
        return {name for name, row in self.rows.items() if truth(tree, row, self.ring) is False}

    def written(self, value: str | None) -> Cell:
        """The cell a write of ``value`` through the ORM leaves under the current keys."""
        if value is None:
            return Cell(None)
        return Cell(value, key=self.active, oldest=self.oldest)

    def email_taken(self, value: str, *, besides: str | None = None) -> bool:
        """Whether a tagged row other than ``besides`` holds ``value`` after normalization."""
        wanted = NORMALIZE["email"](value)
        return any(
            not row.cells["email"].legacy
            and row.cells["email"].value is not None
            and NORMALIZE["email"](row.cells["email"].value or "") == wanted
            for name, row in self.rows.items()
            if name != besides
        )

    def plaintexts(self) -> dict[str, tuple[str | None, ...]]:
        return {
            name: tuple(row.cells[column].value for column in COLUMNS)
            for name, row in self.rows.items()
        }


def raw_row(name: str) -> dict[str, Any]:
    """Every encrypted and index column of the row named ``name``, as stored."""
    columns = [*COLUMNS, *(f"{c}_index" for c in COLUMNS), "email_index_previous"]
    qn = connection.ops.quote_name
    table = qn(Member._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(qn(c) for c in columns)} FROM {table} WHERE {qn('name')} = %s",
            [name],
        )
        found = cursor.fetchone()
    assert found is not None, name
    return dict(zip(columns, found, strict=True))


def plant_legacy(name: str, column: str, value: str) -> None:
    """Store ``value`` as plaintext with no tag, as a row written before the index."""
    qn = connection.ops.quote_name
    cleared = [f"{column}_index"] + (["email_index_previous"] if column == "email" else [])
    assignments = ", ".join([f"{qn(column)} = %s", *(f"{qn(c)} = NULL" for c in cleared)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(Member._meta.db_table)} SET {assignments} WHERE {qn('name')} = %s",
            [value, name],
        )
        assert cursor.rowcount == 1


def assert_at_rest(world: World) -> None:
    """Each row's raw columns hold what the oracle says: ciphertext and a tag by the recorded
    key, legacy plaintext and no tag, or nothing."""
    for name, row in world.rows.items():
        stored = raw_row(name)
        for column, cell in row.cells.items():
            text, tag = stored[column], stored[f"{column}_index"]
            if cell.value is None:
                assert (text, tag) == (None, None), (name, column)
            elif cell.legacy:
                assert (text, tag) == (cell.value, None), (name, column)
            else:
                assert text.startswith("enc:v1:"), (name, column)
                assert tag.startswith(f"{cell.key}:"), (name, column, tag[:3])
        email = row.cells["email"]
        previous = stored["email_index_previous"]
        if email.value is None or email.legacy:
            assert previous is None, name
        else:
            assert previous.startswith(f"{email.oldest}:"), (name, previous[:3])
