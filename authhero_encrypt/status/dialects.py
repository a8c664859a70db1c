"""The SQL each backend needs to sort stored values into the status classes.

A :class:`Dialect` builds, as ``(sql, params)`` fragments, the text at a target (the column, or
the JSON value at a path through the backend's own key extraction), the prefix tests and the
``CASE`` that turns it into a class code (:mod:`authhero_encrypt.status.classify`). The
aggregate query (:mod:`authhero_encrypt.status.aggregate`) assembles them; a backend without a
dialect in ``DIALECTS`` is counted by streaming its rows instead: slower, with the same results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from authhero_encrypt.crypto import PREFIX
from authhero_encrypt.inventory import KEYED_VALUE_PATTERN
from authhero_encrypt.json_paths import Path
from authhero_encrypt.status.classify import (
    EMPTY_CODE,
    KNOWN_CODE,
    OTHER_CODE,
    PLAINTEXT_CODE,
    UNTAGGED_CODE,
)

__all__ = [
    "DIALECTS",
    "Dialect",
    "Fragment",
    "MySQLDialect",
    "PostgreSQLDialect",
    "SQLiteDialect",
    "compose",
]

Fragment = tuple[str, list[Any]]


def compose(template: str, **parts: Fragment) -> Fragment:
    """Fill ``{name}`` in ``template`` with SQL fragments, keeping their parameters in order.

    A fragment may appear several times (the value each branch of a CASE tests); its
    parameters then appear as often, where its text does.
    """
    sql: list[str] = []
    params: list[Any] = []
    for index, piece in enumerate(re.split(r"\{(\w+)\}", template)):
        if index % 2:
            part_sql, part_params = parts[piece]
            sql.append(part_sql)
            params += part_params
        else:
            sql.append(piece)
    return "".join(sql), params


def _param(value: Any) -> Fragment:
    return "%s", [value]


def _json_path(path: Path) -> str:
    # Object keys only, quoted as Django's own JSON lookups quote them on SQLite and MySQL;
    # a numeric segment names a key, never an array index, as AuthHero's paths do.
    return "$" + "".join(f".{json.dumps(segment)}" for segment in path)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Dialect:
    """How one backend reads a target's stored text and sorts it into a class code.

    ``value`` is the text at the target: the column, or the JSON value at the path through the
    backend's key extraction. For a JSON string that is its unquoted text; for a number,
    boolean, object or array it is some text that can never start with ``enc:v1:`` nor be
    empty, so only the plaintext branch (which few values reach in a mostly encrypted table)
    asks whether the value is a string.
    """

    # Keeps the database from inlining the inner query (one code per target and row) into the
    # aggregate, which would compute each code once per count instead of once per row.
    fence = ""
    # Count the codes with GROUP BY (one row per combination that occurs) instead of one
    # COUNT(*) FILTER per target and code: for a database that cannot be kept from inlining.
    group_codes = False
    group_suffix = ""

    def value(self, column: str, path: Path) -> Fragment:
        raise NotImplementedError

    def is_string(self, column: str, path: Path) -> Fragment:
        raise NotImplementedError

    def starts_with(self, x: Fragment, prefix: str) -> Fragment:
        raise NotImplementedError

    def is_empty(self, x: Fragment) -> Fragment:
        return compose("{x} = ''", x=x)

    def is_tagged(self, x: Fragment, *, nonempty: bool = False) -> Fragment:
        """A prefixed value with a ':' after the prefix: a key id, empty or (``nonempty``) not."""
        raise NotImplementedError

    def key_id(self, x: Fragment) -> Fragment:
        """The text between the prefix and the next ':', for a value ``is_tagged`` accepts."""
        raise NotImplementedError

    def keyed_value(self, x: Fragment) -> Fragment:
        """Whether the whole value matches ``KEYED_VALUE_PATTERN``, so its id may be shown."""
        return compose("{x} REGEXP {p}", x=x, p=_param(KEYED_VALUE_PATTERN))

    def count_if(self, condition: str) -> str:
        return f"COUNT(*) FILTER (WHERE {condition})"

    def tag_key_id(self, column: str) -> str:
        """The key id a blind index tag (``<id>:<hex>``) starts with; NULL without a ':'."""
        raise NotImplementedError

    def class_code(self, x: Fragment, string: Fragment, known_ids: Sequence[str]) -> Fragment:
        """The class of the value. The configured key ids come first: in a table being rotated
        most values are under one of them, and a single prefix test settles each of those."""
        parts: dict[str, Fragment] = {"x": x, "string": string}
        branches = []
        for n, key_id in enumerate(known_ids):
            parts[f"k{n}"] = self.starts_with(x, f"{PREFIX}{key_id}:")
            branches.append(f"WHEN {{k{n}}} THEN {KNOWN_CODE + n} ")
        parts["encrypted"] = self.starts_with(x, PREFIX)
        parts["tagged"] = self.is_tagged(x, nonempty=True)
        parts["empty"] = self.is_empty(x)
        template = (
            f"CASE {''.join(branches)}WHEN {{encrypted}} THEN "
            f"CASE WHEN {{tagged}} THEN {OTHER_CODE} ELSE {UNTAGGED_CODE} END "
            f"WHEN {{empty}} THEN {EMPTY_CODE} WHEN {{string}} THEN {PLAINTEXT_CODE} END"
        )
        return compose(template, **parts)


class SQLiteDialect(Dialect):
    fence = " LIMIT -1"  # a subquery with a LIMIT is never flattened into an aggregate

    def value(self, column: str, path: Path) -> Fragment:
        return f"json_extract({column}, %s)", [_json_path(path)]

    def is_string(self, column: str, path: Path) -> Fragment:
        return f"json_type({column}, %s) = 'text'", [_json_path(path)]

    def starts_with(self, x: Fragment, prefix: str) -> Fragment:
        # Not LIKE, which ignores case in SQLite: the prefix is case-sensitive.
        return compose(f"substr({{x}}, 1, {len(prefix)}) = {{p}}", x=x, p=_param(prefix))

    def is_tagged(self, x: Fragment, *, nonempty: bool = False) -> Fragment:
        # GLOB, not LIKE, for the same reason.
        return compose("{x} GLOB {p}", x=x, p=_param("enc:v1:?*:*" if nonempty else "enc:v1:*:*"))

    def key_id(self, x: Fragment) -> Fragment:
        return compose("substr({x}, 8, instr(substr({x}, 8), ':') - 1)", x=x)

    def tag_key_id(self, column: str) -> str:
        colon = f"instr({column}, ':')"
        return f"CASE WHEN {colon} > 0 THEN substr({column}, 1, {colon} - 1) END"

    def class_code(self, x: Fragment, string: Fragment, known_ids: Sequence[str]) -> Fragment:
        # ``CASE substr(x, 1, n) WHEN .. WHEN ..`` reads the value once for all its branches,
        # where each ``WHEN x LIKE ..`` would extract it again: in SQLite each function call
        # and JSON extraction is a large part of the cost of a row. substr() carries no
        # collation, so the comparisons are binary, as the case-sensitive prefix needs.
        template = (
            f"CASE substr({{x}}, 1, 7) WHEN 'enc:v1:' THEN "
            f"CASE WHEN {{tagged}} THEN {OTHER_CODE} ELSE {UNTAGGED_CODE} END "
            f"WHEN '' THEN {EMPTY_CODE} ELSE CASE WHEN {{string}} THEN {PLAINTEXT_CODE} END END"
        )
        code = compose(template, x=x, tagged=self.is_tagged(x, nonempty=True), string=string)
        by_length: dict[int, list[tuple[int, str]]] = {}
        for n, key_id in enumerate(known_ids):
            by_length.setdefault(len(key_id), []).append((KNOWN_CODE + n, f"{PREFIX}{key_id}:"))
        for length, ids in sorted(by_length.items()):
            branches = "".join(f"WHEN {{p{j}}} THEN {n} " for j, (n, _) in enumerate(ids))
            prefixes = {f"p{j}": _param(prefix) for j, (_, prefix) in enumerate(ids)}
            code = compose(
                f"CASE substr({{x}}, 1, {len(PREFIX) + length + 1}) {branches}ELSE {{rest}} END",
                x=x,
                rest=code,
                **prefixes,
            )
        return code


class PostgreSQLDialect(Dialect):
    def tag_key_id(self, column: str) -> str:
        return f"CASE WHEN strpos({column}, ':') > 0 THEN split_part({column}, ':', 1) END"

    # LIMIT ALL stops the subquery from being pulled up, yet adds no Limit node, so the scan
    # still runs in parallel workers.
    fence = " LIMIT ALL"

    def _chain(self, column: str, path: Path, last: str) -> Fragment:
        # -> with a text key on an array gives NULL, as the Python side never indexes arrays.
        arrows = "".join(" -> %s::text" for _ in path[:-1])
        return f"({column}{arrows} {last} %s::text)", list(path)

    def value(self, column: str, path: Path) -> Fragment:
        return self._chain(column, path, "->>")

    def is_string(self, column: str, path: Path) -> Fragment:
        return compose("jsonb_typeof{j} = 'string'", j=self._chain(column, path, "->"))

    def starts_with(self, x: Fragment, prefix: str) -> Fragment:
        return compose("{x} LIKE {p}", x=x, p=_param(_like_prefix(prefix)))

    def is_tagged(self, x: Fragment, *, nonempty: bool = False) -> Fragment:
        return compose("{x} LIKE {p}", x=x, p=_param("enc:v1:_%:%" if nonempty else "enc:v1:%:%"))

    def key_id(self, x: Fragment) -> Fragment:
        return compose("split_part({x}, ':', 3)", x=x)

    def keyed_value(self, x: Fragment) -> Fragment:
        # PostgreSQL's regular expressions read \Z as the end of the text, as Python does.
        return compose("{x} ~ {p}", x=x, p=_param(KEYED_VALUE_PATTERN))


class MySQLDialect(Dialect):
    # MariaDB and MySQL merge the derived table into the outer query (a LIMIT would make them
    # write it to a temporary table instead), so each FILTER-like SUM would compute the code
    # again, parsing the document each time: grouping by the codes computes each once per row
    # (4.5 times faster on 100,000 rows of MariaDB 10.11). ORDER BY NULL spares the sort that
    # MariaDB's GROUP BY implies.
    group_codes = True
    group_suffix = " ORDER BY NULL"

    def value(self, column: str, path: Path) -> Fragment:
        return f"JSON_UNQUOTE(JSON_EXTRACT({column}, %s))", [_json_path(path)]

    def is_string(self, column: str, path: Path) -> Fragment:
        return f"JSON_TYPE(JSON_EXTRACT({column}, %s)) = 'STRING'", [_json_path(path)]

    def starts_with(self, x: Fragment, prefix: str) -> Fragment:
        # Binary, so that a case-insensitive collation cannot take ENC:V1: for the prefix.
        return compose("CAST({x} AS BINARY) LIKE {p}", x=x, p=_param(_like_prefix(prefix)))

    def is_empty(self, x: Fragment) -> Fragment:
        # Not ``= ''``: PAD SPACE collations find '  ' equal to ''.
        return compose("CHAR_LENGTH({x}) = 0", x=x)

    def is_tagged(self, x: Fragment, *, nonempty: bool = False) -> Fragment:
        pattern = "enc:v1:_%:%" if nonempty else "enc:v1:%:%"
        return compose("CAST({x} AS BINARY) LIKE {p}", x=x, p=_param(pattern))

    def key_id(self, x: Fragment) -> Fragment:
        return compose("SUBSTRING_INDEX(SUBSTRING({x}, 8), ':', 1)", x=x)

    def keyed_value(self, x: Fragment) -> Fragment:
        # Bytes, so that the character classes are case-sensitive whatever the collation; in
        # PCRE and ICU \Z also matches before a final newline, \z only at the end.
        pattern = KEYED_VALUE_PATTERN.replace("\\Z", "\\z")
        return compose("CAST({x} AS BINARY) REGEXP {p}", x=x, p=_param(pattern))

    def count_if(self, condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

    def tag_key_id(self, column: str) -> str:
        return f"CASE WHEN LOCATE(':', {column}) > 0 THEN SUBSTRING_INDEX({column}, ':', 1) END"


DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SQLiteDialect,
    "postgresql": PostgreSQLDialect,
    "mysql": MySQLDialect,
}
