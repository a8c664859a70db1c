"""``manage.py encryption_status``: how many values are encrypted, legacy plaintext or empty.

Every encrypted field of every installed model (and every declared path of a JSON field) is
counted in the database: one aggregate query per model covers its scalar fields and fixed JSON
paths, with prefix tests on the stored text, so no row is loaded into Python however large the
table. ``*`` paths (whose keys the database cannot enumerate portably) and ``--verify`` (which
must decrypt) stream the rows in keyset-paginated batches instead, in constant memory.

The default run never needs the key: it only looks at prefixes. That is what lets it diagnose a
deployment whose key settings are broken; the key problem is reported in the key section.

Exit status: 0; with ``--check``, 1 when any plaintext remains (and, with ``--verify``, when any
value fails to decrypt), after the report is printed, as ``makemigrations --check`` does.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django.core.checks import ERROR
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connections

from authhero_encrypt.checks import check_key_settings
from authhero_encrypt.crypto import PREFIX, decrypt_with, stored_key_id
from authhero_encrypt.exceptions import DecryptionError, InvalidKeyError
from authhero_encrypt.inventory import (
    KEYED_VALUE_PATTERN,
    UNTAGGED,
    Target,
    group_label,
    iter_raw_rows,
    key_label,
    load_json,
    survey,
)
from authhero_encrypt.json_paths import Path
from authhero_encrypt.keys import Key, KeyRing, get_keyring
from authhero_encrypt.management.options import add_shared_arguments, check_database

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

# Primary keys named per field when values fail to decrypt: enough to find them.
FAILED_PKS_SHOWN = 5
_MISSING = object()


# Counting ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """The counts of one target; with ``--verify`` also what decrypting its values found."""

    target: Target
    encrypted: int = 0
    plaintext: int = 0
    empty: int = 0
    null: int = 0
    by_key: Counter[str] = field(default_factory=Counter)
    verified: bool = False
    checked: int = 0
    failed: int = 0
    failed_pks: list[Any] = field(default_factory=list)
    first_error: str | None = None
    untagged_opened_by: Counter[str] = field(default_factory=Counter)

    def count(self, value: Any, known_ids: Sequence[str]) -> None:
        """Count one stored value as the SQL does (for the values that are streamed)."""
        if not isinstance(value, str):
            self.null += 1
        elif value.startswith(PREFIX):
            self.encrypted += 1
            self.by_key[key_label(value, tuple(known_ids))] += 1
        else:
            # "" is legacy plaintext too: the field and AuthHero encrypt it, and so does
            # encryption_migrate. ``empty`` says how many of the plaintext values are "".
            self.plaintext += 1
            if value == "":
                self.empty += 1

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.target.model_label,
            "field": self.target.field.name,
            "path": self.target.path_label,
            "encrypted": self.encrypted,
            "plaintext": self.plaintext,
            "empty": self.empty,
            "null": self.null,
            "by_key": dict(sorted(self.by_key.items())),
        }
        if self.verified:
            data["verify"] = {
                "checked": self.checked,
                "failed": self.failed,
                "failed_pks": self.failed_pks,
                "first_error": self.first_error,
                "untagged_keys": dict(self.untagged_opened_by),
            }
        return data


def column_of(target: Target) -> str:
    # Encrypted fields are concrete: their column is never None.
    return cast(str, target.field.column)


def _walk(document: Any, segments: Sequence[str]) -> Any:
    for segment in segments:
        if not isinstance(document, dict):
            return _MISSING
        document = document.get(segment, _MISSING)
    return document


def _values(target: Target, stored: Any) -> Iterator[Any]:
    """The values of ``target`` in one row: the column's, or for a JSON field (``stored`` is
    then the parsed document) the one at the path, or every one in the object for ``*``."""
    if target.path is None:
        yield stored.decode("utf-8") if isinstance(stored, (bytes, bytearray)) else stored
        return
    if not target.is_wildcard:
        yield _walk(stored, target.path)
        return
    parent = _walk(stored, target.path[:-1])
    if isinstance(parent, dict):
        yield from parent.values()
    else:
        yield None  # no object to hold values: one null for the row, as a fixed path counts


# SQL -----------------------------------------------------------------------------------------

Fragment = tuple[str, list[Any]]

# The class the aggregate query sorts each stored value into; no class (NULL) is ``null``.
UNTAGGED_CODE = 1  # prefixed, without a key id
OTHER_CODE = 2  # prefixed, with a key id that is not configured (named by a second query)
EMPTY_CODE = 3
PLAINTEXT_CODE = 4
KNOWN_CODE = 5  # and up: prefixed with the n-th configured key id


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


DIALECTS: dict[str, type[Dialect]] = {
    "sqlite": SQLiteDialect,
    "postgresql": PostgreSQLDialect,
    "mysql": MySQLDialect,
}


class ModelCounter:
    """Count the scalar fields and fixed JSON paths of one model in one aggregate query.

    The inner query sorts each target's value of each row into a class code (``c0``,
    ``c1``, ...), reading the value once; the outer one counts the codes. ``null`` is what is
    left of the rows.
    """

    def __init__(
        self,
        model: type[Model],
        targets: Sequence[Target],
        connection: BaseDatabaseWrapper,
        dialect: Dialect,
        known_ids: Iterable[str],
    ) -> None:
        self.model = model
        self.targets = list(targets)
        self.connection = connection
        self.dialect = dialect
        self.known_ids = tuple(sorted(set(known_ids)))
        self.codes = [
            UNTAGGED_CODE,
            OTHER_CODE,
            EMPTY_CODE,
            PLAINTEXT_CODE,
            *(KNOWN_CODE + n for n in range(len(self.known_ids))),
        ]
        self.queries = 0
        self.table = connection.ops.quote_name(model._meta.db_table)

    def _value(self, target: Target) -> Fragment:
        column = self.connection.ops.quote_name(column_of(target))
        if target.path is None:
            return column, []
        return self.dialect.value(column, target.path)

    def _string(self, target: Target, value: Fragment) -> Fragment:
        if target.path is None:
            return compose("{x} IS NOT NULL", x=value)  # a column value is a string or NULL
        column = self.connection.ops.quote_name(column_of(target))
        return self.dialect.is_string(column, target.path)

    def query(self) -> Fragment:
        d = self.dialect
        codes: list[str] = []
        params: list[Any] = []
        for i, target in enumerate(self.targets):
            value = self._value(target)
            sql, code_params = d.class_code(value, self._string(target, value), self.known_ids)
            codes.append(f"{sql} AS c{i}")
            params += code_params
        inner = f"SELECT {', '.join(codes)} FROM {self.table}{d.fence}"  # noqa: S608
        if d.group_codes:
            names = ", ".join(f"c{i}" for i in range(len(self.targets)))
            sql = f"SELECT {names}, COUNT(*) FROM ({inner}) s GROUP BY {names}{d.group_suffix}"  # noqa: S608
        else:
            counts = ["COUNT(*)"]
            for i in range(len(self.targets)):
                counts += [d.count_if(f"c{i} = {code}") for code in self.codes]
            sql = f"SELECT {', '.join(counts)} FROM ({inner}) s"  # noqa: S608
        return sql, params

    def histograms(self) -> tuple[int, list[Counter[int]]]:
        """The number of rows, and per target how many of its values have each code."""
        sql, params = self.query()
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            result = cursor.fetchall()
        self.queries += 1
        found: list[Counter[int]] = [Counter() for _ in self.targets]
        if self.dialect.group_codes:
            rows = 0
            for *codes, n in result:
                rows += int(n)
                for histogram, code in zip(found, codes, strict=True):
                    if code is not None:
                        histogram[int(code)] += int(n)
            return rows, found
        counts = [int(n or 0) for n in result[0]]  # SUM() over no rows is NULL
        width = len(self.codes)
        for i, histogram in enumerate(found):
            row = counts[1 + i * width : 1 + (i + 1) * width]
            histogram.update(dict(zip(self.codes, row, strict=True)))
        return counts[0], found

    def count(self) -> list[Tally]:
        rows, histograms = self.histograms()
        tallies = []
        for target, codes in zip(self.targets, histograms, strict=True):
            known = [codes[KNOWN_CODE + n] for n in range(len(self.known_ids))]
            encrypted = codes[UNTAGGED_CODE] + codes[OTHER_CODE] + sum(known)
            plaintext = codes[PLAINTEXT_CODE] + codes[EMPTY_CODE]  # "" is plaintext too
            tally = Tally(
                target,
                encrypted=encrypted,
                plaintext=plaintext,
                empty=codes[EMPTY_CODE],
                null=rows - encrypted - plaintext,
            )
            if codes[OTHER_CODE]:
                # Values under key ids that are not configured: name each one, with a second
                # query only for a target that holds such values.
                by_key = self._group_by_key(target)
                by_key[UNTAGGED] += encrypted - sum(by_key.values())
            else:
                by_key = Counter({UNTAGGED: codes[UNTAGGED_CODE]})
                by_key.update(dict(zip(self.known_ids, known, strict=True)))
            tally.by_key = +by_key  # drop the zeros
            tallies.append(tally)
        return tallies

    def _group_by_key(self, target: Target) -> Counter[str]:
        """Every value with a ':' after the prefix, by its key label (``key_label``).

        The database groups by the text before the ':' and by whether the whole value is
        well-formed; the label of each group is decided here, so text that is not a key id
        never leaves this method.
        """
        d = self.dialect
        v: Fragment = ("v", [])
        key_id, keyed, tagged = d.key_id(v), d.keyed_value(v), d.is_tagged(v)
        value_sql, params = self._value(target)
        sql = (
            f"SELECT k, ok, COUNT(*) FROM (SELECT {key_id[0]} AS k, "  # noqa: S608
            f"CASE WHEN {keyed[0]} THEN 1 ELSE 0 END AS ok FROM "
            f"(SELECT {value_sql} AS v FROM {self.table}) s WHERE {tagged[0]}) t GROUP BY k, ok"
        )
        found: Counter[str] = Counter()
        with self.connection.cursor() as cursor:
            cursor.execute(sql, key_id[1] + keyed[1] + params + tagged[1])
            for value, ok, n in cursor.fetchall():
                found[group_label(value, ok, self.known_ids)] += int(n)
        self.queries += 1
        return found


# Verification --------------------------------------------------------------------------------


class Verifier:
    """Decrypt stored values and record, for untagged ones, which key opened them."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        # One single-key ring per untagged candidate, in the codec's order: the codec does not
        # say which key opened a value, and this report is about exactly that.
        self.alone = [(key, KeyRing.from_keys(key, ())) for key in ring.untagged]

    def check(self, stored: str) -> str | None:
        """``None`` for a tagged value that opens, the opening key's fingerprint for an
        untagged one; raises ``DecryptionError`` for a value no configured key opens."""
        if stored_key_id(stored) is not None:
            decrypt_with(self.ring, stored)
            return None
        for key, ring in self.alone:
            try:
                decrypt_with(ring, stored)
            except DecryptionError:
                continue
            return key.fingerprint
        decrypt_with(self.ring, stored)  # raises, with the codec's own explanation
        raise DecryptionError("No configured key opens this value.")  # pragma: no cover

    def record(self, tally: Tally, pk: Any, stored: str) -> None:
        tally.checked += 1
        try:
            opener = self.check(stored)
        except DecryptionError as exc:
            tally.failed += 1
            if tally.first_error is None:
                tally.first_error = str(exc)
            if len(tally.failed_pks) < FAILED_PKS_SHOWN and pk not in tally.failed_pks:
                tally.failed_pks.append(pk)
            return
        if opener is not None:
            tally.untagged_opened_by[opener] += 1


def stream(
    tallies: Sequence[Tally],
    *,
    counted: Sequence[Tally],
    verifier: Verifier | None,
    using: str,
    batch_size: int,
    known_ids: Sequence[str] = (),
) -> None:
    """One pass over a model's rows in keyset batches: count ``counted``, verify every tally."""
    model = tallies[0].target.model
    columns: list[str] = []
    for tally in tallies:
        if column_of(tally.target) not in columns:
            columns.append(column_of(tally.target))
    work = [
        (
            tally,
            columns.index(column_of(tally.target)) + 1,
            tally.target.path is not None,
            any(tally is c for c in counted),
        )
        for tally in tallies
    ]
    for batch in iter_raw_rows(model, columns, using=using, batch_size=batch_size):
        for row in batch:
            documents: dict[int, Any] = {}  # each JSON column parsed once per row
            for tally, position, is_json, count in work:
                stored = row[position]
                if is_json:
                    if position not in documents:
                        documents[position] = load_json(stored)
                    stored = documents[position]
                for value in _values(tally.target, stored):
                    if count:
                        tally.count(value, known_ids)
                    if verifier is not None and isinstance(value, str) and value.startswith(PREFIX):
                        verifier.record(tally, row[0], value)


# Key status ----------------------------------------------------------------------------------


@dataclass
class KeyStatus:
    """The key settings as the report shows them: the key ring, or what stops it loading."""

    ring: KeyRing | None
    errors: list[str]

    @classmethod
    def load(cls) -> KeyStatus:
        try:
            return cls(get_keyring(), [])
        except InvalidKeyError as exc:
            # Every problem, as ``manage.py check`` lists them, not only the first one the ring
            # builder met; the messages never hold a key.
            errors = [
                f"{message.msg} ({message.id})"
                for message in check_key_settings()
                if message.level >= ERROR
            ]
            return cls(None, errors or [str(exc)])

    def unreadable(self, by_key: Counter[str]) -> int:
        """How many of the encrypted values counted in ``by_key`` no configured key can open,
        as far as their prefix tells (``--verify`` finds the rest: tampered values, wrong keys).
        """
        ring = self.ring
        if ring is None or not ring.untagged:
            return sum(by_key.values())
        return sum(
            n for label, n in by_key.items() if label != UNTAGGED and label not in ring.by_id
        )

    def roles(self) -> list[tuple[str, Key]]:
        if self.ring is None:
            return []
        roles = [("active", self.ring.active)] if self.ring.active else []
        return roles + [("fallback", key) for key in self.ring.fallbacks]

    def as_json(self) -> dict[str, Any]:
        ring = self.ring
        return {
            "configured": ring is not None and ring.active is not None,
            "key_id": ring.active.id if ring is not None and ring.active is not None else None,
            "fallbacks": len(ring.fallbacks) if ring is not None else 0,
            "fingerprints": [
                {"role": role, "key_id": key.id, "fingerprint": key.fingerprint}
                for role, key in self.roles()
            ],
            "errors": self.errors,
        }


# The command ---------------------------------------------------------------------------------


class Command(BaseCommand):
    help = (
        "Count, per model, field and JSON path, the values stored encrypted, as legacy "
        "plaintext, empty and NULL, and the key ids of the encrypted ones. Counts in SQL; "
        "--verify also decrypts every value."
    )
    # Must run with broken key settings: diagnosing them is one of its jobs.
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_shared_arguments(parser, verb="inspect", json_doc="docs/encryption_status.md")
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with status 1 when any plaintext remains, when the key settings are "
            "invalid, or when encrypted values exist and no key is configured (with --verify: "
            "also when any value fails to decrypt).",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Also decrypt every encrypted value, in batches, and report those that fail. "
            "Needs the key.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows per batch when rows are streamed (* paths, --verify); default 1000.",
        )

    def handle(
        self,
        *args: Any,
        selectors: list[str],
        database: str,
        format: str,
        check: bool,
        verify: bool,
        batch_size: int,
        verbosity: int,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be a positive number of rows.")
        check_database(database)
        try:
            found = survey(selectors, using=database)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        targets = found.targets
        self.verbosity = verbosity
        keys = KeyStatus.load()
        verifier = self._verifier(keys) if verify else None
        connection = connections[database]
        # The configured key ids let the aggregate query split the encrypted values by key
        # without a second query; without them (no key, broken settings) it is still exact.
        known_ids = tuple(keys.ring.by_id) if keys.ring is not None else ()
        tallies = self._count(targets, connection, known_ids, verifier, batch_size)

        if verbosity >= 1:
            if format == "json":
                report = self._json(tallies, keys, verify)
                report["excluded"] = [
                    {"model": e.model_label, "reason": e.reason} for e in found.excluded
                ]
                self.stdout.write(json.dumps(report, indent=2, cls=DjangoJSONEncoder))
            else:
                self._text(tallies, keys, verify, database)
                for excluded in found.excluded:
                    self.stdout.write(f"Left out {excluded.model_label}: {excluded.reason}.")
        if check:
            plaintext = sum(t.plaintext for t in tallies)
            failed = sum(t.failed for t in tallies)
            encrypted = sum(t.encrypted for t in tallies)
            # A deployment that cannot open what it stores fails too, not only one with
            # plaintext left: broken key settings, or ciphertext and no key at all.
            unusable = keys.ring is None or (encrypted and not keys.ring.untagged)
            if plaintext or failed or unusable:
                sys.exit(1)

    def _verifier(self, keys: KeyStatus) -> Verifier:
        if keys.ring is None:
            raise CommandError(
                "--verify decrypts every value, but the key settings are invalid: "
                + " ".join(keys.errors)
                + " Fix them (manage.py check lists them), or run without --verify to count "
                "by prefix only."
            )
        if not keys.ring.untagged:
            raise CommandError(
                "--verify decrypts every value and needs the key, but ENCRYPTION_KEY is not "
                "set. Set ENCRYPTION_KEY (and ENCRYPTION_KEY_FALLBACKS for older keys), or run "
                "without --verify to count by prefix only."
            )
        return Verifier(keys.ring)

    def _progress(self, message: str) -> None:
        if self.verbosity >= 2:
            self.stderr.write(message)

    def _count(
        self,
        targets: Sequence[Target],
        connection: BaseDatabaseWrapper,
        known_ids: Sequence[str],
        verifier: Verifier | None,
        batch_size: int,
    ) -> list[Tally]:
        dialect_class = DIALECTS.get(connection.vendor)
        # On a backend without a dialect here every target is streamed: slower, still exact.
        dialect = dialect_class() if dialect_class is not None else None
        by_model: dict[type[Model], list[Target]] = {}
        for target in targets:
            by_model.setdefault(target.model, []).append(target)
        results: dict[Target, Tally] = {}
        for model, model_targets in by_model.items():
            started = time.perf_counter()
            try:
                tallies, queries, streamed = self._count_model(
                    model, model_targets, connection, dialect, known_ids, verifier, batch_size
                )
            except DatabaseError as exc:
                raise CommandError(
                    f"Cannot read {model._meta.label} (table {model._meta.db_table!r}) in "
                    f"database {connection.alias!r}: {exc}. Has manage.py migrate run on it? "
                    "Select other models with app_label or app_label.Model."
                ) from exc
            results.update((tally.target, tally) for tally in tallies)
            self._progress(
                f"{model._meta.label}: {queries} aggregate quer{'y' if queries == 1 else 'ies'}"
                f"{', rows streamed' if streamed else ''}, "
                f"{time.perf_counter() - started:.2f} s"
            )
        return [results[t] for t in targets]

    def _count_model(
        self,
        model: type[Model],
        targets: Sequence[Target],
        connection: BaseDatabaseWrapper,
        dialect: Dialect | None,
        known_ids: Sequence[str],
        verifier: Verifier | None,
        batch_size: int,
    ) -> tuple[list[Tally], int, bool]:
        """The tallies of one model's targets, its aggregate queries, whether rows were read."""
        results: dict[Target, Tally] = {}
        queries = 0
        in_sql = [t for t in targets if not t.is_wildcard]
        if dialect is not None and in_sql:
            counter = ModelCounter(model, in_sql, connection, dialect, known_ids)
            results.update((tally.target, tally) for tally in counter.count())
            queries = counter.queries
        streamed = [Tally(t) for t in targets if t not in results]
        results.update((tally.target, tally) for tally in streamed)
        walked = streamed
        if verifier is not None:
            walked = [results[t] for t in targets]
            for tally in walked:
                tally.verified = True
        if walked:
            # Counting the streamed targets and verifying share one pass over the rows.
            stream(
                walked,
                counted=streamed,
                verifier=verifier,
                using=connection.alias,
                batch_size=batch_size,
                known_ids=tuple(sorted(set(known_ids))),
            )
        return [results[t] for t in targets], queries, bool(walked)

    # Output ----------------------------------------------------------------------------------

    @staticmethod
    def _totals(tallies: Sequence[Tally], verify: bool, keys: KeyStatus) -> dict[str, Any]:
        by_key: Counter[str] = Counter()
        for tally in tallies:
            by_key.update(tally.by_key)
        totals: dict[str, Any] = {
            "fields": len(tallies),
            "encrypted": sum(t.encrypted for t in tallies),
            "plaintext": sum(t.plaintext for t in tallies),
            "empty": sum(t.empty for t in tallies),
            "null": sum(t.null for t in tallies),
            "by_key": dict(sorted(by_key.items())),
            "unreadable": keys.unreadable(by_key),
        }
        if verify:
            totals["verify"] = {
                "checked": sum(t.checked for t in tallies),
                "failed": sum(t.failed for t in tallies),
            }
        return totals

    def _json(self, tallies: Sequence[Tally], keys: KeyStatus, verify: bool) -> dict[str, Any]:
        return {
            "key": keys.as_json(),
            "fields": [t.as_json() for t in tallies],
            "totals": self._totals(tallies, verify, keys),
        }

    def _text(self, tallies: Sequence[Tally], keys: KeyStatus, verify: bool, database: str) -> None:
        write = self.stdout.write
        totals = self._totals(tallies, verify, keys)
        if not tallies:
            write("No encrypted fields found in the selected models.")
        else:
            write(f"Encrypted values in database {database!r}:\n")
            # "(empty)" counts the plaintext values that are "": they are in Plaintext too.
            header = ["Model", "Field", "Path", "Encrypted", "Plaintext", "(empty)", "Null"]
            if verify:
                header.append("Failed")
            header.append("By key")
            rows = [header]
            for t in tallies:
                row = [
                    t.target.model_label,
                    t.target.field.name,
                    t.target.path_label or "-",
                    *(str(n) for n in (t.encrypted, t.plaintext, t.empty, t.null)),
                ]
                if verify:
                    row.append(str(t.failed))
                row.append(_by_key_text(t.by_key))
                rows.append(row)
            total_row = [f"Total ({len(tallies)} fields)", "", ""]
            total_row += [str(totals[k]) for k in ("encrypted", "plaintext", "empty", "null")]
            if verify:
                total_row.append(str(totals["verify"]["failed"]))
            total_row.append(_by_key_text(Counter(totals["by_key"])))
            rows.append(total_row)
            numeric = range(3, len(header) - 1)
            widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
            for n, r in enumerate(rows):
                if n == len(rows) - 1:
                    write("  ".join("-" * w for w in widths[:-1]))
                cells = [
                    c.rjust(w) if i in numeric else c.ljust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                ]
                write("  ".join(cells).rstrip())
        write("")
        self._key_text(keys)
        unreadable = totals["unreadable"]
        if unreadable:
            write(
                f"{unreadable} encrypted value(s) cannot be read with the configured keys "
                "(no key, invalid key settings, a key id that is not configured, or a malformed "
                "value)."
            )
        if verify:
            self._verify_text(tallies, keys)
        self._advice(totals, keys)

    def _key_text(self, keys: KeyStatus) -> None:
        write = self.stdout.write
        ring = keys.ring
        if ring is None:
            write("Key: the key settings are invalid, so nothing can be encrypted or read:")
            for error in keys.errors:
                write(f"  - {error}")
            return
        if ring.active is None:
            write("Key: ENCRYPTION_KEY is not set; new values are stored as plaintext.")
        else:
            active_id = ring.active.id
            written = f"key id {active_id!r}" if active_id else "no key id (untagged)"
            write(f"Key: configured; new values are written with {written}.")
        write(f"  {len(ring.fallbacks)} fallback key(s).")
        for role, key in keys.roles():
            write(f"  {role:<8}  key id {key.id or '-':<16}  fingerprint {key.fingerprint}")

    def _verify_text(self, tallies: Sequence[Tally], keys: KeyStatus) -> None:
        write = self.stdout.write
        checked = sum(t.checked for t in tallies)
        failed = [t for t in tallies if t.failed]
        write("")
        write(
            f"Verify: decrypted {checked} encrypted value(s); "
            f"{sum(t.failed for t in failed)} failed."
        )
        for t in failed:
            pks = ", ".join(repr(pk) for pk in t.failed_pks)
            more = ", ..." if t.failed > len(t.failed_pks) else ""
            write(f"  {t.target}: {t.failed} failed (primary keys {pks}{more}): {t.first_error}")
        opened: Counter[str] = Counter()
        for t in tallies:
            opened.update(t.untagged_opened_by)
        if opened:
            names = {key.fingerprint: f"{role} key {key.fingerprint}" for role, key in keys.roles()}
            parts = [f"{names.get(fp, fp)}: {n}" for fp, n in opened.most_common()]
            write(f"  Untagged values open under: {'; '.join(parts)}.")

    def _advice(self, totals: dict[str, Any], keys: KeyStatus) -> None:
        plaintext = totals["plaintext"]
        if not plaintext:
            return
        write = self.stdout.write
        write("")
        values = (
            f"{plaintext} value{'s are' if plaintext != 1 else ' is'} still stored as plaintext"
        )
        if keys.ring is None:
            write(
                f"{values}. Fix the key settings above first; then run `manage.py "
                "encryption_migrate` to encrypt them."
            )
        elif keys.ring.active is None:
            write(
                f"{values}, and ENCRYPTION_KEY is not set, so nothing is encrypted yet. Set "
                "ENCRYPTION_KEY, then run `manage.py encryption_migrate` to encrypt them."
            )
        else:
            write(
                f"{values}. Each is encrypted the next time its row is saved; run `manage.py "
                "encryption_migrate` to encrypt them all now."
            )


def _by_key_text(by_key: Counter[str]) -> str:
    if not by_key:
        return "-"
    # Every label is a key id, "" or MALFORMED: never other text from a row (see key_label).
    return ", ".join(f"{key or '(untagged)'}={n}" for key, n in sorted(by_key.items()))
