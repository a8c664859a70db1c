"""Blind indexes brought up to date by ``encryption_migrate``: missing tags filled, stale ones
moved to their key.

One pass per indexed source column reads the primary key, the source and every index column
over it (declared and ``_previous``) in keyset batches, recomputes each tag from the source's
plaintext (decrypting ciphertext, taking legacy plaintext as it is) and writes the rows whose
tags differ by compare-and-swap (:mod:`~authhero_encrypt.blind_index.swap`): an UPDATE only
lands while the source and every tag still hold what was read, so a concurrent write (which
sets source and tags in one statement) is never overwritten, and a row that changed is
re-read and tried again, as the value pass of :mod:`authhero_encrypt.migrate.batches` does.

The declared column is written under the active index key, the previous column of a unique
index under the oldest configured one: see :mod:`authhero_encrypt.blind_index.field` for why
uniqueness then holds at every moment of a change-over. Every tag is recomputed, so a
normalizer change is caught up too; a ``slow=`` index pays its hash per row and key.

The pass over a field runs before its values are encrypted or re-encrypted: a legacy
plaintext row gets its tag while its source is still plaintext, so lookups (which match
untagged rows by their plaintext) find it at every moment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import DataError, IntegrityError, connections, transaction

from authhero_encrypt.blind_index.field import BlindIndexField, PreviousIndexField, indexes_of
from authhero_encrypt.blind_index.keys import IndexKeyRing
from authhero_encrypt.blind_index.swap import IndexSwapper, Update
from authhero_encrypt.crypto import PREFIX
from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.inventory import iter_raw_rows, load_json

if TYPE_CHECKING:
    from django.db.models import Model

    from authhero_encrypt.migrate.batches import ProgressSink

__all__ = ["INDEX_OUTCOMES", "IndexMigrator", "IndexReport", "indexed_columns"]

REPORTED_PKS = 100
# What happened to one tag: NULL -> tag, another key's tag -> this key's, a wrong tag under the
# right key (a normalizer change) recomputed, a tag whose source holds no value cleared.
INDEX_OUTCOMES = ("filled", "moved", "fixed", "cleared", "unchanged")


def indexed_columns(fld: Any) -> tuple[BlindIndexField, ...]:
    """Every index column computed from ``fld`` (its JSON paths and previous columns too)."""
    return indexes_of(fld, for_writes=True)


@dataclass
class IndexReport:
    """What one pass did to the index columns over one source field; ``counts`` are per
    column, of tags, the rest of rows."""

    model: str
    source: str
    columns: list[str]
    counts: dict[str, Counter[str]]
    rows: int = 0
    written: int = 0
    retried: int = 0
    failed_rows: int = 0
    failed_pks: list[Any] = field(default_factory=list)
    left_over: int = 0
    left_over_pks: list[Any] = field(default_factory=list)
    write_failed: int = 0
    write_failed_pks: list[Any] = field(default_factory=list)
    # Every refused row whose indexed value is legacy plaintext: the value pass leaves it be.
    held: set[Any] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{self.model}.{self.source}"

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "source": self.source,
            "rows": self.rows,
            "written": self.written,
            "retried": self.retried,
            "columns": [
                {"column": name, **{o: self.counts[name][o] for o in INDEX_OUTCOMES}}
                for name in self.columns
            ],
            "failed_rows": self.failed_rows,
            "failed_pks": self.failed_pks,
            "left_over": self.left_over,
            "left_over_pks": self.left_over_pks,
            "write_failed": self.write_failed,
            "write_failed_pks": self.write_failed_pks,
        }


def _outcome(old: str | None, new: str | None) -> str:
    if old == new:
        return "unchanged"
    if old is None:
        return "filled"
    if new is None:
        return "cleared"
    return "fixed" if old.partition(":")[0] == new.partition(":")[0] else "moved"


def _note(pks: list[Any], pk: Any) -> None:
    if len(pks) < REPORTED_PKS:
        pks.append(pk)


class IndexMigrator:
    """Walks one source column with its index columns and writes the tags that differ."""

    def __init__(
        self,
        *,
        model: type[Model],
        source: Any,
        ring: IndexKeyRing,
        using: str,
        batch_size: int,
        dry_run: bool,
    ) -> None:
        self.model, self.source, self.ring = model, source, ring
        self.using, self.batch_size, self.dry_run = using, batch_size, dry_run
        self.indexes = indexed_columns(source)
        self.is_json = isinstance(source, JSONPathEncryptedField)
        self.swapper = IndexSwapper(
            connections[using],
            model,
            source.column,
            [str(index.column) for index in self.indexes],
            is_json=self.is_json,
        )
        names = [index.name for index in self.indexes]
        self.report = IndexReport(
            model=model._meta.label,
            source=source.name,
            columns=names,
            counts={name: Counter() for name in names},
        )

    def run(self, progress: ProgressSink | None) -> IndexReport:
        # Imported here: authhero_encrypt.migrate imports this module.
        from authhero_encrypt.migrate.batches import walk

        columns = [self.source.column, *(index.column for index in self.indexes)]
        batches = iter_raw_rows(
            self.model,
            columns,
            using=self.using,
            batch_size=self.batch_size,
            as_text=[self.source.column] if self.is_json else [],
        )
        walk(self, batches, progress)
        return self.report

    def reread(self, pks: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.swapper.reread(pks)

    def plaintexts(self, raw: Any) -> tuple[dict[tuple[str, ...], str | None], bool]:
        """The plaintext each index path of the row's source holds (may raise on decrypt), and
        whether one of them is stored as legacy plaintext."""
        if isinstance(raw, (bytes, bytearray)):
            raw = raw.decode("utf-8")
        document = load_json(raw) if self.is_json and raw is not None else raw
        found: dict[tuple[str, ...], str | None] = {}
        legacy = False
        for index in self.indexes:
            path = index.source_path
            if path in found:
                continue
            value = document
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if self.is_json and not isinstance(value, str):
                value = None  # a number or a document at the path is not a secret value
            legacy = legacy or (isinstance(value, str) and not value.startswith(PREFIX))
            found[path] = index.plaintext(value)
        return found, legacy

    def wanted(self, index: BlindIndexField, plaintext: str | None, memo: dict[Any, str]) -> Any:
        if plaintext is None:
            return None
        key = index.key_for_writes(self.ring)
        if key is None:
            return None
        main = index.main if isinstance(index, PreviousIndexField) else index
        # With one key the previous column holds the declared one's tag: computed once.
        cached = memo.get((main.name, key.id))
        if cached is None:
            cached = memo[(main.name, key.id)] = main.tag(key, self.ring, plaintext)
        return cached

    def plan(self, rows: Sequence[tuple[Any, ...]]) -> list[Update]:
        """The writes one batch needs; settles (counts) the rows that need none."""
        report = self.report
        updates: list[Update] = []
        for row in rows:
            pk, raw, *tags = row
            tags = [t.decode() if isinstance(t, (bytes, bytearray)) else t for t in tags]
            try:
                plaintexts, legacy = self.plaintexts(raw)
            except EncryptionError:
                # Reported, never shown: the value pass names the decrypt error of this row.
                report.failed_rows += 1
                _note(report.failed_pks, pk)
                continue
            memo: dict[Any, str] = {}
            new = [
                self.wanted(index, plaintexts[index.source_path], memo) for index in self.indexes
            ]
            outcomes = [_outcome(o, n) for o, n in zip(tags, new, strict=True)]
            if new == tags:
                self.settle(outcomes)
                continue
            old_source = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
            updates.append(Update(pk, old_source, tuple(tags), tuple(new), tuple(outcomes), legacy))
        return updates

    def settle(self, outcomes: Sequence[str]) -> None:
        for index, outcome in zip(self.indexes, outcomes, strict=True):
            self.report.counts[index.name][outcome] += 1

    def apply(self, updates: list[Update]) -> set[Any]:
        """Write one batch in one transaction; the primary keys that changed underneath."""
        if not updates:
            return set()
        conflicts: set[Any] = set()
        report = self.report
        if not self.dry_run:
            try:
                with transaction.atomic(using=self.using):
                    conflicts = self.swapper.swap(updates)
            except (IntegrityError, DataError):
                # A tag the unique index refuses (two legacy rows with one value): the batch
                # was rolled back; row by row, only the refused rows are left, and named.
                conflicts, refused = set(), set()
                for update in updates:
                    try:
                        with transaction.atomic(using=self.using):
                            conflicts |= self.swapper.swap([update])
                    except (IntegrityError, DataError):
                        refused.add(update.pk)
                        if update.legacy:
                            report.held.add(update.pk)
                        report.write_failed += 1
                        _note(report.write_failed_pks, update.pk)
                updates = [u for u in updates if u.pk not in refused]
        written = [u for u in updates if u.pk not in conflicts]
        report.written += len(written)
        for update in written:
            self.settle(update.outcomes)
        return conflicts
