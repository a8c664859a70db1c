"""The migration report as people and scripts read it: a table of fields and paths with the
rows to look at, or the JSON object documented in docs/key_rotation.md; and the progress line
``encryption_migrate`` keeps on stderr while it runs.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.core.management.base import OutputWrapper

from authhero_encrypt.blind_index.migrate import INDEX_OUTCOMES
from authhero_encrypt.inventory import NO_KEY_ID
from authhero_encrypt.migrate.report import OUTCOMES, MigrationReport
from authhero_encrypt.rotation import Outcome

__all__ = ["Progress", "render_json", "render_text"]

# Primary keys named per field and kind in the text report.
TEXT_PKS = 10
PROGRESS_INTERVAL = 0.25


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


def render_json(report: MigrationReport) -> str:
    """The report as ``--format json`` prints it."""
    return json.dumps(report.as_json(), indent=2, default=str)


def render_text(report: MigrationReport) -> list[str]:
    """The report as the lines of its text form."""
    summary, reports = report.as_json(), report.fields
    lines: list[str] = []
    write = lines.append
    key = summary["key"]
    key_text = f"key id {key['key_id']!r}" if key["key_id"] else f"the active key {NO_KEY_ID}"
    if summary["dry_run"]:
        write(f"Dry run: nothing was written. Target: {key_text}.")
    else:
        write(f"Migrated to {key_text}, fingerprint {key['fingerprint']}.")
    envelope = summary["envelope"]
    if envelope is not None:
        kek = f"{envelope['provider']} key {envelope['key_id'] or NO_KEY_ID}"
        write(f"Envelope fields: data keys wrapped by {kek}.")
    # The Rewrapped column only where an envelope field was migrated: the enc:v1 report keeps
    # its columns.
    outcomes = [o for o in OUTCOMES if envelope is not None or o is not Outcome.REWRAPPED]
    written = "Would write" if summary["dry_run"] else "Written"
    header = ["Field / path", "Rows", written, "Encrypted", "Re-encrypted"]
    header += ["Rewrapped"] if envelope is not None else []
    header += ["Unchanged", "Failed", "Skipped", "Left over"]
    table: list[list[str]] = [header]
    for field in reports:
        values = [f"{field.total(outcome):,}" for outcome in outcomes]
        rows, written_rows = f"{field.rows:,}", f"{field.written:,}"
        table.append([field.label, rows, written_rows, *values, f"{field.left_over:,}"])
        if field.is_json:
            for path in field.paths:
                counts = field.counts[path]
                cells = [f"{counts[outcome]:,}" for outcome in outcomes]
                table.append([f"  {path}", "", "", *cells, ""])
    for excluded in summary["excluded"]:
        write(f"Left out {excluded['model']}: {excluded['reason']}.")
    if not reports:
        write("No encrypted fields found.")
        return lines
    _table(table, write)
    totals = summary["totals"]
    values = totals["values"]
    verb = "would be written" if summary["dry_run"] else "written"
    write(
        f"\nTotal: {totals['rows']:,} rows read, {totals['written']:,} {verb}; values: "
        f"{values['encrypted']:,} encrypted, {values['reencrypted']:,} re-encrypted, "
        + (f"{values['rewrapped']:,} rewrapped, " if envelope is not None else "")
        + f"{values['unchanged']:,} already under the active key, "
        f"{values['failed']:,} failed to decrypt."
    )
    if totals["retried"]:
        write(
            f"{totals['retried']:,} row(s) changed while they were being migrated and were "
            "re-read and retried."
        )
    _index_text(report, write)
    for field in reports:
        if field.failed_rows:
            named = field.failures[:TEXT_PKS]
            shown = ", ".join(f"pk {pk}" + (f" [{path}]" if path else "") for pk, path, _ in named)
            more = field.failed_rows - len({pk for pk, _path, _reason in named})
            write(
                f"{field.label}: {field.failed_rows:,} row(s) left untouched because a "
                f"value failed to decrypt: {shown}" + (f" and {more:,} more" if more else "")
            )
            reasons = Counter(reason for _pk, _path, reason in field.failures)
            for reason, n in reasons.most_common(3):
                write(f"  {n} x {reason}")
        if field.write_failed:
            shown = ", ".join(f"pk {pk}" for pk, _reason in field.write_failures[:TEXT_PKS])
            more = field.write_failed - min(len(field.write_failures), TEXT_PKS)
            write(
                f"{field.label}: {field.write_failed:,} row(s) could not be written, the "
                f"database refused the new value: {shown}" + (f" and {more:,} more" if more else "")
            )
        if field.left_over:
            shown = ", ".join(f"pk {pk}" for pk in field.left_over_pks[:TEXT_PKS])
            more = field.left_over - min(len(field.left_over_pks), TEXT_PKS)
            write(
                f"{field.label}: {field.left_over:,} row(s) kept changing and were left "
                f"for a rerun: {shown}" + (f" and {more:,} more" if more else "")
            )
    for index in report.indexes:
        for count, pks, what in (
            (index.failed_rows, index.failed_pks, "left untagged, their value failed to decrypt"),
            (index.write_failed, index.write_failed_pks, "refused by the database"),
            (index.left_over, index.left_over_pks, "kept changing, left for a rerun"),
        ):
            if count:
                shown = ", ".join(f"pk {pk}" for pk in pks[:TEXT_PKS])
                more = count - min(len(pks), TEXT_PKS)
                tail = f" and {more:,} more" if more else ""
                write(f"{index.label} blind indexes: {count:,} row(s) {what}: {shown}{tail}")
    if report.ok:
        tail = "would be" if summary["dry_run"] else "is"
        write(f"Every value {tail} under the active key.")
        if report.indexes:
            write(f"Every blind index tag {tail} up to date.")
    return lines


def _table(table: list[list[str]], write: Callable[[str], None]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        write("  ".join(cells).rstrip())


def _index_text(report: MigrationReport, write: Callable[[str], None]) -> None:
    """The blind index passes: per source field its rows, and per index column its tags."""
    if not report.indexes:
        return
    written = "Would write" if report.dry_run else "Written"
    header = ["Blind index", "Rows", written, *(o.capitalize() for o in INDEX_OUTCOMES)]
    table = [[*header, "Left over"]]
    for index in report.indexes:
        table.append([index.label, f"{index.rows:,}", f"{index.written:,}", *[""] * 5, ""])
        for name in index.columns:
            counts = index.counts[name]
            cells = [f"{counts[outcome]:,}" for outcome in INDEX_OUTCOMES]
            table.append([f"  {name}", "", "", *cells, ""])
        table[-1 - len(index.columns)][-1] = f"{index.left_over:,}"
    write("")
    _table(table, write)
    totals = report.index_totals()
    tags = totals["tags"]
    verb = "would be written" if report.dry_run else "written"
    write(
        f"\nBlind indexes: {totals['rows']:,} rows read, {totals['written']:,} {verb}; tags: "
        f"{tags['filled']:,} filled, {tags['moved']:,} moved to their key, {tags['fixed']:,} "
        f"recomputed, {tags['cleared']:,} cleared, {tags['unchanged']:,} already up to date."
    )
    if totals["retried"]:
        write(
            f"{totals['retried']:,} row(s) changed while their tags were being computed and "
            "were re-read and retried."
        )
