"""The per-model aggregate query: every scalar field and fixed JSON path of one model counted
in one scan, with no row loaded into Python however large the table.

The inner query sorts each target's value of each row into a class code (reading the value
once, in the backend's :mod:`~authhero_encrypt.status.dialects`); the outer one counts the
codes. Only a target holding values under key ids that are not configured costs one more
``GROUP BY`` query, to name those ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from authhero_encrypt.inventory import UNTAGGED, Target, group_label
from authhero_encrypt.status.classify import (
    EMPTY_CODE,
    KNOWN_CODE,
    OTHER_CODE,
    PLAINTEXT_CODE,
    UNTAGGED_CODE,
    decode,
)
from authhero_encrypt.status.dialects import Dialect, Fragment, compose
from authhero_encrypt.status.report import Tally

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

__all__ = ["ModelCounter", "column_of"]


def column_of(target: Target) -> str:
    # Encrypted fields are concrete: their column is never None.
    return cast(str, target.field.column)


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
            found = decode(codes, rows, len(self.known_ids))
            tally = Tally(
                target,
                encrypted=found.encrypted,
                plaintext=found.plaintext,
                empty=found.empty,
                null=found.null,
            )
            if found.other:
                # Values under key ids that are not configured: name each one, with a second
                # query only for a target that holds such values.
                by_key = self._group_by_key(target)
                by_key[UNTAGGED] += found.encrypted - sum(by_key.values())
            else:
                by_key = Counter({UNTAGGED: found.untagged})
                by_key.update(dict(zip(self.known_ids, found.known, strict=True)))
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
