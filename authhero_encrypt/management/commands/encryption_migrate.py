"""``manage.py encryption_migrate``: bring every encrypted value to the active key, online.

Legacy plaintext is encrypted, values under a fallback key or another key id are re-encrypted,
values already under the active key are left byte for byte (see :mod:`authhero_encrypt.rotation`).

The command is built to run against a live database:

* each field is walked in keyset batches by primary key, and each batch is written in its own
  short transaction, so no lock is held for long and memory stays flat;
* every write is a compare-and-swap (``UPDATE ... WHERE pk = %s AND col = <value read>``): a row
  that changed after it was read is never overwritten; it is re-read and retried, and whatever
  still will not settle is reported for a rerun;
* a row is rewritten whole or not at all, so stopping it at any point (Ctrl-C, ``kill -9``, a
  lost connection) leaves nothing half-written, and a rerun finishes the job.

Exit status: 0 when every value ends under the active key; ``CommandError`` (status 1) when a
value failed to decrypt or a row kept changing underneath, after the summary is printed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import DatabaseError, DataError, IntegrityError, connections, transaction

from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.inventory import (
    PrimaryKey,
    Target,
    column_as_text,
    iter_raw_rows,
    load_json,
    survey,
)
from authhero_encrypt.json_paths import path_text
from authhero_encrypt.json_text import dumps_exact, loads_exact
from authhero_encrypt.keys import get_keyring
from authhero_encrypt.management.options import add_shared_arguments, check_database
from authhero_encrypt.rotation import Outcome, Rotation

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

# How often a row that changed between read and write is re-read and tried again in one run.
MAX_ATTEMPTS = 5
# Primary keys named per field and kind: enough to find the rows, small on a huge table.
REPORTED_PKS = 100  # in --format json
TEXT_PKS = 10
# Primary keys per ``IN (...)`` when re-reading rows, well below every backend's parameter limit.
REREAD_CHUNK = 500
PROGRESS_INTERVAL = 0.25

OUTCOMES = (
    Outcome.ENCRYPTED,
    Outcome.REENCRYPTED,
    Outcome.UNCHANGED,
    Outcome.FAILED,
    Outcome.SKIPPED,
)

Row = tuple[Any, Any]
# What a row contributes to the counts once it settles: one outcome (scalar field) or, per
# path label, the outcomes of a document's leaves (JSON field).
Tally = Outcome | Counter[tuple[str | None, Outcome]]


@dataclass
class FieldReport:
    """What happened to one field; ``counts`` are of values, the rest of rows."""

    model: str
    field_name: str
    paths: list[str | None]
    counts: dict[str | None, Counter[Outcome]]
    is_json: bool = False
    rows: int = 0
    written: int = 0
    retried: int = 0
    failed_rows: int = 0
    failures: list[tuple[Any, str | None, str]] = field(default_factory=list)
    left_over: int = 0
    left_over_pks: list[Any] = field(default_factory=list)
    write_failed: int = 0
    write_failures: list[tuple[Any, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model}.{self.field_name}"

    def total(self, outcome: Outcome) -> int:
        return sum(counter[outcome] for counter in self.counts.values())

    def settle(self, tally: Tally) -> None:
        if isinstance(tally, Outcome):
            self.counts[None][tally] += 1
        else:
            for (path, outcome), n in tally.items():
                self.counts[path][outcome] += n

    def fail(self, pk: Any, path: str | None, reason: str) -> None:
        if len(self.failures) < REPORTED_PKS:
            self.failures.append((pk, path, reason))

    def as_json(self) -> dict[str, Any]:
        def values(counter: Counter[Outcome]) -> dict[str, int]:
            return {outcome.value: counter[outcome] for outcome in OUTCOMES}

        totals: Counter[Outcome] = Counter()
        for counter in self.counts.values():
            totals.update(counter)
        return {
            "model": self.model,
            "field": self.field_name,
            "rows": self.rows,
            "written": self.written,
            "retried": self.retried,
            "values": values(totals),
            "paths": [
                {"path": path, **values(self.counts[path])}
                for path in self.paths
                if path is not None
            ],
            "failed_rows": self.failed_rows,
            "failed": [
                {"pk": pk, "path": path, "reason": reason} for pk, path, reason in self.failures
            ],
            "left_over": self.left_over,
            "left_over_pks": self.left_over_pks,
            "write_failed": self.write_failed,
            "write_failures": [{"pk": pk, "reason": reason} for pk, reason in self.write_failures],
        }


class Progress:
    """Rows done / total and the rate on one rewritten stderr line, or a line per batch."""

    def __init__(self, out: OutputWrapper, label: str, total: int, *, live: bool) -> None:
        self.out, self.label, self.total, self.live = out, label, total, live
        self.done = 0
        self.started = self.shown = time.monotonic()

    def _write(self, text: str, ending: str) -> None:
        # OutputWrapper colours stderr as an error on a terminal; progress is not one.
        self.out.write(text, style_func=lambda s: s, ending=ending)

    def line(self, last_pk: Any) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (
            f"{self.label}: {self.done:,}/{self.total:,} rows, {self.done / elapsed:,.0f} rows/s, "
            f"last pk {last_pk}"
        )

    def advance(self, rows: int, last_pk: Any) -> None:
        self.done += rows
        if not self.live:
            self._write(self.line(last_pk), "\n")
            return
        now = time.monotonic()
        if now - self.shown >= PROGRESS_INTERVAL:
            self.shown = now
            self._write("\r" + self.line(last_pk) + "\x1b[K", "")

    def finish(self, last_pk: Any) -> None:
        if self.live:
            self._write("\r" + self.line(last_pk) + "\x1b[K", "\n")


class Swapper:
    """Compare-and-swap writes and re-reads of one column, in the dialect of its backend."""

    def __init__(
        self, connection: BaseDatabaseWrapper, model: type[Model], column: str, *, is_json: bool
    ) -> None:
        self.connection = connection
        self.is_json = is_json
        quote = connection.ops.quote_name
        self.key = PrimaryKey(model, connection)
        self.table = quote(model._meta.db_table)
        self.col = quote(column)
        # JSON is read as its text, so that the documents are rewritten from what is stored.
        self.read = column_as_text(connection, column) if is_json else self.col
        vendor = connection.vendor
        pk_field = model._meta.pk
        pk_type = None
        if vendor == "postgresql" and not self.key.composite and pk_field is not None:
            pk_type = pk_field.rel_db_type(connection)
        if pk_type:
            self.pk = self.key.quoted[0]
            # One statement per batch, and the rows that matched come back: no per-row round
            # trip and no re-read to find the conflicts. The batch travels as one JSON text of
            # [pk, old, new] triples: json.dumps is C, where psycopg's client-side array
            # literals cost three times as much per row.
            cast = "::jsonb" if is_json else ""
            self.bulk_sql: str | None = (
                f"UPDATE {self.table} AS t SET {self.col} = v.new{cast} "  # noqa: S608
                f"FROM (SELECT (e->>0)::{pk_type} AS pk, e->>1 AS old, e->>2 AS new "
                "FROM json_array_elements(%s::json) AS e) AS v "
                f"WHERE t.{self.pk} = v.pk AND t.{self.col} = v.old{cast} "
                f"RETURNING t.{self.pk}"
            )
        else:
            self.bulk_sql = None
        # The comparison must be exact. MySQL/MariaDB compare text under the column's collation,
        # often case- and trailing-space-insensitive, so a concurrent "Secret" -> "secret" would
        # pass for unchanged; BINARY compares the bytes. MySQL's native JSON type is compared
        # as JSON (MariaDB's JSON is text with a binary collation).
        value, compared = "%s", f"{self.col} = %s"
        if vendor == "mysql":
            if is_json and not getattr(connection, "mysql_is_mariadb", True):
                compared = f"{self.col} = CAST(%s AS JSON)"
            else:
                compared = f"BINARY {self.col} = %s"
        elif vendor == "postgresql" and is_json:
            value, compared = "%s::jsonb", f"{self.col} = %s::jsonb"
        self.row_sql = (
            f"UPDATE {self.table} SET {self.col} = {value} "  # noqa: S608
            f"WHERE {self.key.match} AND {compared}"
        )

    def swap(self, updates: Sequence[tuple[Any, ...]]) -> set[Any]:
        """Write ``(pk, old, new, ...)`` where the column still holds ``old``; the pks that did
        not (changed or deleted underneath)."""
        pks = [u[0] for u in updates]
        with self.connection.cursor() as cursor:
            if self.bulk_sql is not None:
                batch = json.dumps([u[:3] for u in updates], ensure_ascii=False, default=str)
                cursor.execute(self.bulk_sql, [batch])
                return set(pks).difference(row[0] for row in cursor.fetchall())
            params = self.key.params
            cursor.executemany(self.row_sql, [(u[2], *params(u[0]), u[1]) for u in updates])
            if cursor.rowcount == len(updates):
                return set()
        # Some rows changed underneath. Every new value holds a fresh random IV, so a row that
        # now holds exactly what was written was written by this run, and no other.
        wanted = {u[0]: u[2] for u in updates}
        now = dict(self.reread(pks))
        return {pk for pk in pks if not self.same(now.get(pk), wanted[pk])}

    def same(self, current: Any, written: str) -> bool:
        if current is None:
            return False
        if self.is_json:
            # A JSON column may hand the document back re-serialised (MySQL's JSON type does).
            return bool(load_json(current) == load_json(written))
        return bool(current == written)

    def reread(self, pks: Sequence[Any]) -> list[Row]:
        rows: list[Row] = []
        key = self.key
        with self.connection.cursor() as cursor:
            for start in range(0, len(pks), REREAD_CHUNK):
                chunk = pks[start : start + REREAD_CHUNK]
                if key.composite:
                    where = " OR ".join([f"({key.match})"] * len(chunk))
                    params = [value for pk in chunk for value in key.params(pk)]
                else:
                    where = f"{key.select} IN ({', '.join(['%s'] * len(chunk))})"
                    params = list(chunk)
                cursor.execute(
                    f"SELECT {key.select}, {self.read} FROM {self.table} "  # noqa: S608
                    f"WHERE {where} ORDER BY {key.order}",
                    params,
                )
                rows.extend((key.key(row), row[key.width]) for row in cursor.fetchall())
        return rows


class FieldMigrator:
    """Walks one field's column in batches and brings every value to the active key."""

    def __init__(
        self,
        *,
        model: type[Model],
        field: Any,
        paths: list[str | None],
        using: str,
        rotation: Rotation,
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
        self.swapper = Swapper(connections[using], model, field.column, is_json=self.is_json)
        self.report = FieldReport(
            model=model._meta.label,
            field_name=field.name,
            paths=paths,
            counts={path: Counter() for path in paths},
            is_json=self.is_json,
        )
        self.plan: Callable[[Sequence[Row]], Sequence[tuple[Any, Any, str, Tally]]] = (
            self.plan_documents if self.is_json else self.plan_values
        )

    def run(self, progress: Progress | None) -> FieldReport:
        report = self.report
        last_pk = None
        column = self.field.column
        for rows in iter_raw_rows(
            self.model,
            [column],
            using=self.using,
            batch_size=self.batch_size,
            as_text=[column] if self.is_json else [],
        ):
            report.rows += len(rows)
            pending = self.apply(self.plan(rows))
            attempt = 1
            while pending and attempt < MAX_ATTEMPTS:
                report.retried += len(pending)
                # A short pause lets the writer that got in first finish what it is doing.
                time.sleep(0.005 * attempt)
                pending = self.apply(self.plan(self.swapper.reread(sorted(pending))))
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
        return report

    def plan_values(self, rows: Sequence[Row]) -> Sequence[tuple[Any, Any, str, Tally]]:
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

    def plan_documents(self, rows: Sequence[Row]) -> Sequence[tuple[Any, Any, str, Tally]]:
        """The writes one batch of a JSON column needs; only the secret leaves change."""
        report = self.report
        trie, declared = self.field.path_trie, self.field.encrypted_paths
        updates: list[tuple[Any, Any, str, Tally]] = []
        for pk, raw in rows:
            if raw is None:
                continue
            if isinstance(raw, (bytes, bytearray)):
                raw = raw.decode("utf-8")
            # Parsed keeping every number as its text, and written back token for token: only
            # the secret leaves change (see authhero_encrypt.json_text).
            document = loads_exact(raw) if isinstance(raw, str) else raw
            rewrite = self.rotation.document(trie, declared, document)
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
        self, updates: Sequence[tuple[Any, Any, str, Tally]]
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

    def apply(self, updates: Sequence[tuple[Any, Any, str, Tally]]) -> set[Any]:
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
            encrypted = sum(update[3] is Outcome.ENCRYPTED for update in written)
            counts = report.counts[None]
            counts[Outcome.ENCRYPTED] += encrypted
            counts[Outcome.REENCRYPTED] += len(written) - encrypted
        return conflicts


class Command(BaseCommand):
    help = (
        "Encrypt legacy plaintext and re-encrypt values under fallback keys with the active "
        "key (ENCRYPTION_KEY / ENCRYPTION_KEY_ID), in small batches that never overwrite a "
        "concurrent change. Safe to stop and rerun. Exits with status 1 when a value fails to "
        "decrypt (it is left untouched) or a row kept changing (rerun for it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_shared_arguments(parser, verb="migrate", json_doc="docs/key_rotation.md")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows read and written per batch, each batch in its own transaction "
            "(default: 500).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would change and write nothing.",
        )

    def handle(
        self,
        *args: Any,
        selectors: list[str],
        database: str,
        batch_size: int,
        dry_run: bool,
        format: str,
        verbosity: int,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, not {batch_size}.")
        check_database(database)
        try:
            ring = get_keyring()
        except EncryptionError as exc:
            raise CommandError(f"The key settings are invalid: {exc}") from exc
        if ring.active is None:
            raise CommandError(
                "ENCRYPTION_KEY is not set, so there is no key to migrate values to; nothing was "
                "changed. Set ENCRYPTION_KEY (with a new ENCRYPTION_KEY_ID) to the new key and "
                "list the previous keys in ENCRYPTION_KEY_FALLBACKS, then rerun."
            )
        try:
            found = survey(selectors, using=database)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        targets = found.targets

        connection = connections[database]
        tables = set(connection.introspection.table_names())
        rotation = Rotation(ring)
        live = verbosity >= 1 and self.stderr.isatty()
        reports: list[FieldReport] = []
        totals: dict[type[Model], int] = {}
        for model, fld, paths in _group(targets):
            if model._meta.db_table not in tables:
                if verbosity >= 1:
                    self.stderr.write(
                        f"Skipping {model._meta.label}: its table {model._meta.db_table!r} does "
                        f"not exist in database {database!r} (run migrate first)."
                    )
                continue
            migrator = FieldMigrator(
                model=model,
                field=fld,
                paths=paths,
                using=database,
                rotation=rotation,
                batch_size=batch_size,
                dry_run=dry_run,
            )
            progress = None
            if live or verbosity >= 2:
                if model not in totals:
                    totals[model] = model._base_manager.using(database).count()
                progress = Progress(self.stderr, migrator.report.label, totals[model], live=live)
            try:
                reports.append(migrator.run(progress))
            except (KeyboardInterrupt, DatabaseError) as exc:
                if live:
                    self.stderr.write("")  # end the progress line
                # The error's own text is left out: a driver may quote the values involved.
                what = (
                    "Interrupted"
                    if isinstance(exc, KeyboardInterrupt)
                    else (f"The database failed ({type(exc).__name__})")
                )
                raise CommandError(
                    f"{what} while migrating {migrator.report.label}, after "
                    f"{migrator.report.rows:,} rows. Every batch before the current one is "
                    "committed and the current one was rolled back, so nothing is half-written: "
                    "rerun to finish."
                ) from exc

        summary: dict[str, Any] = {
            "database": database,
            "dry_run": dry_run,
            "key": {"key_id": ring.active.id, "fingerprint": ring.active.fingerprint},
            "fields": [report.as_json() for report in reports],
            "totals": _totals(reports),
            "excluded": [{"model": e.model_label, "reason": e.reason} for e in found.excluded],
        }
        if verbosity >= 1:
            if format == "json":
                self.stdout.write(json.dumps(summary, indent=2, default=str))
            else:
                self.write_text(summary, reports)

        failed = summary["totals"]["values"][Outcome.FAILED.value]
        left_over = summary["totals"]["left_over"]
        write_failed = summary["totals"]["write_failed"]
        problems = []
        if write_failed:
            problems.append(
                f"{write_failed} row(s) could not be written (the database refused the new "
                "value) and were left as they were; see the rows named above"
            )
        if failed:
            problems.append(
                f"{failed} value(s) failed to decrypt and were left untouched; add the key "
                "that wrote them to ENCRYPTION_KEY_FALLBACKS (or repair those rows) and rerun"
            )
        if left_over:
            problems.append(
                f"{left_over} row(s) kept changing while they were migrated and were left as "
                "they were; rerun to finish them"
            )
        if problems:
            raise CommandError("; ".join(problems) + ".")

    def write_text(self, summary: dict[str, Any], reports: list[FieldReport]) -> None:
        out = self.stdout
        key = summary["key"]
        key_text = f"key id {key['key_id']!r}" if key["key_id"] else "the active key (no key id)"
        if summary["dry_run"]:
            out.write(f"Dry run: nothing was written. Target: {key_text}.")
        else:
            out.write(f"Migrated to {key_text}, fingerprint {key['fingerprint']}.")
        written = "Would write" if summary["dry_run"] else "Written"
        header = ["Field / path", "Rows", written, "Encrypted", "Re-encrypted"]
        header += ["Unchanged", "Failed", "Skipped", "Left over"]
        table: list[list[str]] = [header]
        for report in reports:
            values = [f"{report.total(outcome):,}" for outcome in OUTCOMES]
            rows, written_rows = f"{report.rows:,}", f"{report.written:,}"
            table.append([report.label, rows, written_rows, *values, f"{report.left_over:,}"])
            if report.is_json:
                for path in report.paths:
                    counts = report.counts[path]
                    cells = [f"{counts[outcome]:,}" for outcome in OUTCOMES]
                    table.append([f"  {path}", "", "", *cells, ""])
        for excluded in summary["excluded"]:
            out.write(f"Left out {excluded['model']}: {excluded['reason']}.")
        if not reports:
            out.write("No encrypted fields found.")
            return
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            out.write("  ".join(cells).rstrip())

        totals = summary["totals"]
        values = totals["values"]
        verb = "would be written" if summary["dry_run"] else "written"
        out.write(
            f"\nTotal: {totals['rows']:,} rows read, {totals['written']:,} {verb}; values: "
            f"{values['encrypted']:,} encrypted, {values['reencrypted']:,} re-encrypted, "
            f"{values['unchanged']:,} already under the active key, "
            f"{values['failed']:,} failed to decrypt."
        )
        if totals["retried"]:
            out.write(
                f"{totals['retried']:,} row(s) changed while they were being migrated and were "
                "re-read and retried."
            )
        for report in reports:
            if report.failed_rows:
                named = report.failures[:TEXT_PKS]
                shown = ", ".join(
                    f"pk {pk}" + (f" [{path}]" if path else "") for pk, path, _ in named
                )
                more = report.failed_rows - len({pk for pk, _path, _reason in named})
                out.write(
                    f"{report.label}: {report.failed_rows:,} row(s) left untouched because a "
                    f"value failed to decrypt: {shown}" + (f" and {more:,} more" if more else "")
                )
                reasons = Counter(reason for _pk, _path, reason in report.failures)
                for reason, n in reasons.most_common(3):
                    out.write(f"  {n} x {reason}")
            if report.write_failed:
                shown = ", ".join(f"pk {pk}" for pk, _reason in report.write_failures[:TEXT_PKS])
                more = report.write_failed - min(len(report.write_failures), TEXT_PKS)
                out.write(
                    f"{report.label}: {report.write_failed:,} row(s) could not be written, the "
                    f"database refused the new value: {shown}"
                    + (f" and {more:,} more" if more else "")
                )
            if report.left_over:
                shown = ", ".join(f"pk {pk}" for pk in report.left_over_pks[:TEXT_PKS])
                more = report.left_over - min(len(report.left_over_pks), TEXT_PKS)
                out.write(
                    f"{report.label}: {report.left_over:,} row(s) kept changing and were left "
                    f"for a rerun: {shown}" + (f" and {more:,} more" if more else "")
                )
        if not values["failed"] and not totals["left_over"] and not totals["write_failed"]:
            tail = "would be" if summary["dry_run"] else "is"
            out.write(f"Every value {tail} under the active key.")


def _group(targets: Sequence[Target]) -> list[tuple[type[Model], Any, list[str | None]]]:
    """Targets by field, in order: a JSON field's paths are rewritten together, in one pass."""
    grouped: dict[tuple[type[Model], str], tuple[type[Model], Any, list[str | None]]] = {}
    for target in targets:
        key = (target.model, target.field.name)
        entry = grouped.setdefault(key, (target.model, target.field, []))
        entry[2].append(target.path_label)
    return list(grouped.values())


def _totals(reports: Sequence[FieldReport]) -> dict[str, Any]:
    values: Counter[Outcome] = Counter()
    for report in reports:
        for counter in report.counts.values():
            values.update(counter)
    return {
        "rows": sum(r.rows for r in reports),
        "written": sum(r.written for r in reports),
        "retried": sum(r.retried for r in reports),
        "values": {outcome.value: values[outcome] for outcome in OUTCOMES},
        "failed_rows": sum(r.failed_rows for r in reports),
        "left_over": sum(r.left_over for r in reports),
        "write_failed": sum(r.write_failed for r in reports),
    }
