"""One field brought to the active key: its column walked in keyset batches, each batch
planned by the rotation rules (:mod:`authhero_encrypt.rotation`) and written in its own short
transaction through compare-and-swap (:mod:`~authhero_encrypt.migrate.swap`), with retries for
rows that changed underneath and a row-by-row fallback for rows the database refuses.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from django.db import DataError, IntegrityError, connections, transaction

from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.inventory import is_envelope_field, iter_raw_rows
from authhero_encrypt.json_paths import path_text
from authhero_encrypt.json_text import dumps_exact, loads_exact
from authhero_encrypt.migrate.report import REPORTED_PKS, FieldReport, RowTally
from authhero_encrypt.migrate.swap import Row, Swapper
from authhero_encrypt.rotation import Outcome, Rotation

if TYPE_CHECKING:
    from django.db.models import Model

    from authhero_encrypt.envelope.rotation import EnvelopeRotation

__all__ = ["MAX_ATTEMPTS", "FieldMigrator", "ProgressSink", "walk"]

# How often a row that changed between read and write is re-read and tried again in one run.
MAX_ATTEMPTS = 5


class ProgressSink(Protocol):
    """Told after each batch of a field, and once at its end (see ``migrate(progress=...)``)."""

    def advance(self, rows: int, last_pk: Any) -> None: ...

    def finish(self, last_pk: Any) -> None: ...


class WalkedReport(Protocol):
    rows: int
    retried: int
    left_over: int
    left_over_pks: list[Any]


class Walker(Protocol):
    """What :func:`walk` drives: a plan of each batch's writes, and their compare-and-swap."""

    @property
    def report(self) -> WalkedReport: ...

    def plan(self, rows: Sequence[Any]) -> Sequence[Any]: ...

    def apply(self, updates: Any) -> set[Any]: ...

    def reread(self, pks: Sequence[Any]) -> Sequence[Any]: ...


def walk(walker: Walker, batches: Iterable[Sequence[Any]], progress: ProgressSink | None) -> None:
    """Plan and write each batch; re-read and retry the rows that changed underneath, up to
    ``MAX_ATTEMPTS`` times, and report the rest as left over for a rerun. Shared by the value
    pass (:class:`FieldMigrator`) and the blind index pass
    (:class:`authhero_encrypt.blind_index.migrate.IndexMigrator`)."""
    report = walker.report
    last_pk = None
    for rows in batches:
        report.rows += len(rows)
        pending = walker.apply(walker.plan(rows))
        attempt = 1
        while pending and attempt < MAX_ATTEMPTS:
            report.retried += len(pending)
            # A short pause lets the writer that got in first finish what it is doing.
            time.sleep(0.005 * attempt)
            pending = walker.apply(walker.plan(walker.reread(sorted(pending))))
            attempt += 1
        if pending:
            report.left_over += len(pending)
            room = REPORTED_PKS - len(report.left_over_pks)
            report.left_over_pks.extend(sorted(pending)[:room])
        last_pk = rows[-1][0]
        if progress is not None:
            progress.advance(len(rows), last_pk)
    if progress is not None:
        progress.finish(last_pk)


class FieldMigrator:
    """Walks one field's column in batches and brings every value to the active key."""

    def __init__(
        self,
        *,
        model: type[Model],
        field: Any,
        paths: list[str | None],
        using: str,
        rotation: Rotation | EnvelopeRotation,
        batch_size: int,
        dry_run: bool,
    ) -> None:
        self.model = model
        self.field = field
        self.using = using
        self.rotation = rotation
        self.batch_size = batch_size
        self.dry_run = dry_run
        self.is_json = isinstance(field, JSONPathEncryptedField)
        self.is_envelope = is_envelope_field(field)
        self.swapper = Swapper(connections[using], model, field.column, is_json=self.is_json)
        self.report = FieldReport(
            model=model._meta.label,
            field_name=field.name,
            paths=paths,
            counts={path: Counter() for path in paths},
            is_json=self.is_json,
            is_envelope=self.is_envelope,
        )
        self.plan_rows: Callable[[Sequence[Row]], Sequence[tuple[Any, Any, str, RowTally]]] = (
            self.plan_documents if self.is_json else self.plan_values
        )
        # Rows left as they are (counted Skipped): legacy plaintext whose blind index tag the
        # database refused, which lookups would no longer find once encrypted.
        self.hold: frozenset[Any] = frozenset()

    def plan(self, rows: Sequence[Row]) -> Sequence[tuple[Any, Any, str, RowTally]]:
        updates = self.plan_rows(rows)
        if not self.hold:
            return updates
        kept = []
        for update in updates:
            if update[0] not in self.hold:
                kept.append(update)
                continue
            tally = update[3]
            if isinstance(tally, Outcome):
                self.report.settle(Outcome.SKIPPED)
            else:
                self.report.settle(
                    Counter({(path, Outcome.SKIPPED): n for (path, _outcome), n in tally.items()})
                )
        return kept

    def run(self, progress: ProgressSink | None) -> FieldReport:
        column = self.field.column
        batches = iter_raw_rows(
            self.model,
            [column],
            using=self.using,
            batch_size=self.batch_size,
            as_text=[column] if self.is_json else [],
        )
        walk(self, batches, progress)
        return self.report

    def reread(self, pks: Sequence[Any]) -> Sequence[Row]:
        return self.swapper.reread(pks)

    def plan_values(self, rows: Sequence[Row]) -> Sequence[tuple[Any, Any, str, RowTally]]:
        """The writes one batch of a scalar column needs; settles the rows that need none."""
        report = self.report
        if any(isinstance(raw, (bytes, bytearray)) for _pk, raw in rows):  # some drivers
            rows = [(pk, raw.decode("utf-8") if raw is not None else None) for pk, raw in rows]
        batch = self.rotation.rows(rows)
        counts = report.counts[None]
        counts[Outcome.UNCHANGED] += batch.unchanged
        for pk, reason in batch.failures:
            counts[Outcome.FAILED] += 1
            report.failed_rows += 1
            report.fail(pk, None, reason)
        return batch.changes

    def plan_documents(self, rows: Sequence[Row]) -> Sequence[tuple[Any, Any, str, RowTally]]:
        """The writes one batch of a JSON column needs; only the secret leaves change."""
        report = self.report
        rotation = self.rotation
        if not isinstance(rotation, Rotation):  # pragma: no cover - envelope fields are scalar
            raise TypeError(f"{report.label} is a JSON field without enc:v1 rotation rules.")
        trie, declared = self.field.path_trie, self.field.encrypted_paths
        updates: list[tuple[Any, Any, str, RowTally]] = []
        for pk, raw in rows:
            if raw is None:
                continue
            if isinstance(raw, (bytes, bytearray)):
                raw = raw.decode("utf-8")
            # Parsed keeping every number as its text, and written back token for token: only
            # the secret leaves change (see authhero_encrypt.json_text).
            document = loads_exact(raw) if isinstance(raw, str) else raw
            rewrite = rotation.document(trie, declared, document)
            tally: Counter[tuple[str | None, Outcome]] = Counter(
                {(path_text(path), outcome): n for (path, outcome), n in rewrite.counts.items()}
            )
            if rewrite.failures:
                report.failed_rows += 1
                for path, reason in rewrite.failures:
                    report.fail(pk, path_text(path), reason)
            if not rewrite.changed:
                report.settle(tally)
                continue
            # The compare-and-swap needs the document as read: the text on SQLite and MariaDB,
            # compared as jsonb on PostgreSQL (a driver that hands back parsed data gets it
            # serialised, which jsonb equality accepts).
            old = raw if isinstance(raw, str) else json.dumps(raw)
            updates.append((pk, old, dumps_exact(rewrite.document), tally))
        return updates

    def apply_one_by_one(
        self, updates: Sequence[tuple[Any, Any, str, RowTally]]
    ) -> tuple[set[Any], set[Any]]:
        """Write each row in its own transaction: the pks that changed underneath, and those
        whose new value the database refused (reported, left as they are)."""
        conflicts: set[Any] = set()
        refused: set[Any] = set()
        report = self.report
        for update in updates:
            try:
                with transaction.atomic(using=self.using):
                    conflicts |= self.swapper.swap([update])
            except (IntegrityError, DataError) as exc:
                refused.add(update[0])
                report.write_failed += 1
                if len(report.write_failures) < REPORTED_PKS:
                    # The driver's own text is left out: it may quote the value.
                    report.write_failures.append(
                        (update[0], f"the database refused the new value ({type(exc).__name__})")
                    )
        return conflicts, refused

    def apply(self, updates: Sequence[tuple[Any, Any, str, RowTally]]) -> set[Any]:
        """Write one batch in one transaction; the primary keys that changed underneath."""
        if not updates:
            return set()
        conflicts: set[Any] = set()
        if not self.dry_run:
            try:
                with transaction.atomic(using=self.using):
                    conflicts = self.swapper.swap(updates)
            except (IntegrityError, DataError):
                # One row's new value was refused (a constraint, a column too narrow): the
                # batch was rolled back; write its rows one by one so that only the rows the
                # database refuses are left, named, and the rest of the table goes on.
                conflicts, refused = self.apply_one_by_one(updates)
                updates = [u for u in updates if u[0] not in refused]
        written = [u for u in updates if u[0] not in conflicts] if conflicts else updates
        report = self.report
        report.written += len(written)
        if self.is_json:
            for update in written:
                report.settle(update[3])
        else:
            # A scalar row's tally is its one outcome: counted by identity, which is cheaper
            # per row than hashing the enum members into the Counter.
            counts = report.counts[None]
            encrypted = sum(update[3] is Outcome.ENCRYPTED for update in written)
            rewrapped = 0
            if self.is_envelope:
                rewrapped = sum(update[3] is Outcome.REWRAPPED for update in written)
                counts[Outcome.REWRAPPED] += rewrapped
            counts[Outcome.ENCRYPTED] += encrypted
            counts[Outcome.REENCRYPTED] += len(written) - encrypted - rewrapped
        return conflicts
