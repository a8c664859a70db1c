"""What ``encryption_status`` reports of each blind index column: how many rows have a tag,
how many lack one, under which index key the tags are, under ``--verify`` how many do not match
their source, and how much the tags leak.

Counts are SQL (a few aggregate queries per index column, the key id split off each tag by the
database); ``--verify`` streams the rows, decrypts each source and recomputes each tag under
the key it names. A tag is *stale* when it is not under the key its column is written under:
the active index key for the declared column, the oldest configured one for a unique index's
``_previous`` column. *Orphaned* tags are on rows whose source holds no value.

The leakage figure: equal values have equal tags, so whoever reads the table learns how the
rows group by value. ``distinct`` tags against the tagged rows, and the share of the largest
group, say how much that is; a column with few distinct values or one value holding most rows
(near-boolean data: a flag, a country) gets a warning, since its tags all but name the value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authhero_encrypt.blind_index.field import BlindIndexField, PreviousIndexField
from authhero_encrypt.blind_index.keys import IndexKeyRing, get_index_keyring
from authhero_encrypt.blind_index.migrate import indexed_columns
from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.inventory import MALFORMED, Target, iter_raw_rows, load_json
from authhero_encrypt.keys import KEY_ID_MAX_LENGTH

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = [
    "FEW_DISTINCT",
    "LARGEST_SHARE",
    "LEAKAGE_MIN_ROWS",
    "IndexTally",
    "count_indexes",
    "index_ring_or_empty",
]

# The near-boolean warning: from LEAKAGE_MIN_ROWS tagged rows on (below that every figure is
# noise), when there are at most FEW_DISTINCT distinct tags, or the largest group holds more
# than LARGEST_SHARE of the tagged rows.
LEAKAGE_MIN_ROWS = 20
FEW_DISTINCT = 10
LARGEST_SHARE = 0.5
REPORTED_PKS = 100
_KEY_ID = re.compile(f"[A-Za-z0-9_-]{{1,{KEY_ID_MAX_LENGTH}}}")


@dataclass
class IndexTally:
    """The counts of one index column. ``expected`` is the key id its tags should be under."""

    index: BlindIndexField
    expected: str | None
    rows: int = 0
    with_value: int = 0
    filled: int = 0
    missing: int = 0
    orphaned: int = 0
    by_key: Counter[str] = field(default_factory=Counter)
    distinct: int | None = None
    largest: int | None = None
    verified: bool = False
    checked: int = 0
    mismatched: int = 0
    mismatched_pks: list[Any] = field(default_factory=list)
    unreadable: int = 0

    @property
    def is_previous(self) -> bool:
        return isinstance(self.index, PreviousIndexField)

    @property
    def stale(self) -> int:
        """Tags not under the key this column is written under (from ``by_key`` alone: one
        query, so a write between two queries cannot make it negative)."""
        return sum(self.by_key.values()) - (self.by_key[self.expected] if self.expected else 0)

    @property
    def largest_share(self) -> float | None:
        if self.largest is None or not self.filled:
            return None
        return self.largest / self.filled

    @property
    def near_boolean(self) -> bool:
        if self.distinct is None or self.filled < LEAKAGE_MIN_ROWS:
            return False
        share = self.largest_share or 0.0
        return self.distinct <= FEW_DISTINCT or share > LARGEST_SHARE

    @property
    def ok(self) -> bool:
        """What ``--check`` tests: every value tagged, under the right key, and (verified) right."""
        return not (self.missing or self.stale or self.orphaned or self.mismatched)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.index.model._meta.label,
            "index": self.index.name,
            "source": self.index.source_field.name
            + "".join(f"__{step}" for step in self.index.source_path),
            "generation": self.index.generation,
            "unique": bool(self.index.unique),
            "expected_key_id": self.expected,
            "rows": self.rows,
            "with_value": self.with_value,
            "filled": self.filled,
            "missing": self.missing,
            "stale": self.stale,
            "orphaned": self.orphaned,
            "by_key": dict(sorted(self.by_key.items())),
        }
        if not self.is_previous:
            share = self.largest_share
            data["leakage"] = {
                "distinct": self.distinct,
                "largest_group": self.largest,
                "largest_share": None if share is None else round(share, 4),
                "near_boolean": self.near_boolean,
            }
        if self.verified:
            data["verify"] = {
                "checked": self.checked,
                "mismatched": self.mismatched,
                "mismatched_pks": self.mismatched_pks,
                "unreadable": self.unreadable,
            }
        return data


def index_ring_or_empty() -> IndexKeyRing:
    """The index key ring, or an empty one when its settings are broken (E401 reports them):
    the counts do not need a key, and every tag then shows as stale."""
    try:
        return get_index_keyring()
    except EncryptionError:
        return IndexKeyRing(None, ())


def _label(key_id: Any, known: Sequence[str]) -> str:
    if isinstance(key_id, (bytes, bytearray)):
        key_id = key_id.decode("utf-8", "replace")
    if key_id in known:
        return str(key_id)
    # Only text shaped like a key id is shown: a column written by hand may hold anything.
    return key_id if isinstance(key_id, str) and _KEY_ID.fullmatch(key_id) else MALFORMED


def _value_at(index: BlindIndexField, raw: Any, is_json: bool) -> Any:
    """The stored value the index is computed from: the column, or the string at its path."""
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8")
    if not is_json:
        return raw
    value = load_json(raw) if raw is not None else None
    for step in index.source_path:
        value = value.get(step) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _count_column(
    connection: BaseDatabaseWrapper, tally: IndexTally, known: Sequence[str], batch_size: int
) -> None:
    from authhero_encrypt.status import dialects

    dialect_class = dialects.DIALECTS.get(connection.vendor)
    if dialect_class is None:
        # A backend without a dialect: the rows are streamed and counted here, same results.
        _count_streamed(connection, tally, known, batch_size)
        return
    dialect = dialect_class()
    index = tally.index
    quote = connection.ops.quote_name
    table, col = quote(index.model._meta.db_table), quote(str(index.column))
    source = quote(index.source_field.column)
    present, params = f"{source} IS NOT NULL", list[Any]()
    if index.source_path:
        present, params = dialect.is_string(source, index.source_path)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COUNT({col}), "  # noqa: S608
            f"SUM(CASE WHEN {present} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {col} IS NULL AND {present} THEN 1 ELSE 0 END), "
            f"COUNT(DISTINCT {col}) FROM {table}",
            params * 2,
        )
        rows, filled, with_value, missing, distinct = cursor.fetchone()
        tally.rows, tally.filled = int(rows), int(filled)
        tally.with_value, tally.missing = int(with_value or 0), int(missing or 0)
        # Tags on rows without a value: counted from the two figures above, no NULL logic.
        tally.orphaned = tally.filled - (tally.with_value - tally.missing)
        key_id = dialect.tag_key_id(col)
        cursor.execute(
            f"SELECT {key_id}, COUNT(*) FROM {table} WHERE {col} IS NOT NULL "  # noqa: S608
            f"GROUP BY {key_id}"
        )
        for found, n in cursor.fetchall():
            tally.by_key[_label(found, known)] += int(n)
        if not tally.is_previous:
            tally.distinct = int(distinct)
            cursor.execute(
                f"SELECT COUNT(*) FROM {table} WHERE {col} IS NOT NULL "  # noqa: S608
                f"GROUP BY {col} ORDER BY COUNT(*) DESC LIMIT 1"
            )
            top = cursor.fetchone()
            tally.largest = int(top[0]) if top else 0


def _count_streamed(
    connection: BaseDatabaseWrapper, tally: IndexTally, known: Sequence[str], batch_size: int
) -> None:
    index = tally.index
    source = index.source_field
    is_json = isinstance(source, JSONPathEncryptedField)
    groups: Counter[str] = Counter()
    for rows in iter_raw_rows(
        index.model,
        [source.column, str(index.column)],
        using=connection.alias,
        batch_size=batch_size,
        as_text=[source.column] if is_json else [],
    ):
        for _pk, raw, tag in rows:
            tally.rows += 1
            has_value = _value_at(index, raw, is_json) is not None
            tally.with_value += has_value
            if tag is None:
                tally.missing += has_value
                continue
            tag = tag.decode() if isinstance(tag, (bytes, bytearray)) else tag
            tally.filled += 1
            tally.orphaned += not has_value
            key_id, colon, _rest = tag.partition(":")
            tally.by_key[_label(key_id if colon else None, known)] += 1
            groups[tag] += 1
    if not tally.is_previous:
        tally.distinct = len(groups)
        tally.largest = max(groups.values(), default=0)


def _verify(
    tallies: Sequence[IndexTally], source: Any, ring: IndexKeyRing, using: str, batch_size: int
) -> None:
    """Recompute every tag of one source field's index columns under the key it names."""
    model = tallies[0].index.model
    is_json = isinstance(source, JSONPathEncryptedField)
    columns = [source.column, *(t.index.column for t in tallies)]
    keys = {key.id: key for key in ring.keys}
    for tally in tallies:
        tally.verified = True
    for rows in iter_raw_rows(
        model,
        columns,
        using=using,
        batch_size=batch_size,
        as_text=[source.column] if is_json else [],
    ):
        for pk, raw, *tags in rows:
            for tally, tag in zip(tallies, tags, strict=True):
                if tag is None:
                    continue
                tag = tag.decode() if isinstance(tag, (bytes, bytearray)) else tag
                index = tally.index
                value = _value_at(index, raw, is_json)
                key = keys.get(tag.partition(":")[0])
                if key is None or not isinstance(value, str):
                    continue  # stale or orphaned: counted as such already
                try:
                    plaintext = index.plaintext(value)
                except EncryptionError:
                    tally.unreadable += 1
                    continue
                tally.checked += 1
                assert plaintext is not None
                if index.tag(key, ring, plaintext) != tag:
                    tally.mismatched += 1
                    if len(tally.mismatched_pks) < REPORTED_PKS:
                        tally.mismatched_pks.append(pk)


def count_indexes(
    targets: Sequence[Target],
    connection: BaseDatabaseWrapper,
    *,
    verify: bool = False,
    batch_size: int = 1000,
) -> list[IndexTally]:
    """The tallies of every index column over the selected targets' fields, in model order."""
    ring = index_ring_or_empty()
    if verify and ring.active is None and any(indexed_columns(t.field) for t in targets):
        from authhero_encrypt.exceptions import MissingKeyError

        raise MissingKeyError(
            "--verify recomputes every blind index tag and needs the index key, but "
            "ENCRYPTION_INDEX_KEY is not set (or its settings are invalid: manage.py check)."
        )
    known = [key.id for key in ring.keys]
    active = ring.active.id if ring.active else None
    oldest = ring.oldest.id if ring.oldest else None
    tallies: list[IndexTally] = []
    seen: set[Any] = set()
    for target in targets:
        source = target.field
        if source in seen or not indexed_columns(source):
            continue
        seen.add(source)
        group = []
        for index in indexed_columns(source):
            expected = oldest if isinstance(index, PreviousIndexField) else active
            tally = IndexTally(index, expected)
            _count_column(connection, tally, known, batch_size)
            group.append(tally)
        if verify:
            _verify(group, source, ring, connection.alias, batch_size)
        tallies.extend(group)
    return tallies
