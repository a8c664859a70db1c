"""What ``migrate()`` returns: per field, what happened to its values and rows, and the totals.

:class:`MigrationReport` is what ``manage.py encryption_migrate`` prints (as text or JSON) and
what a deploy script reads: ``report.ok``, ``report.problems()``, ``report.totals()``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from authhero_encrypt.blind_index.migrate import INDEX_OUTCOMES, IndexReport
from authhero_encrypt.inventory import Excluded
from authhero_encrypt.keys import Key
from authhero_encrypt.rotation import Outcome

__all__ = ["OUTCOMES", "REPORTED_PKS", "FieldReport", "MigrationReport", "RowTally"]

# Primary keys named per field and kind: enough to find the rows, small on a huge table.
REPORTED_PKS = 100  # in --format json

OUTCOMES = (
    Outcome.ENCRYPTED,
    Outcome.REENCRYPTED,
    Outcome.REWRAPPED,
    Outcome.UNCHANGED,
    Outcome.FAILED,
    Outcome.SKIPPED,
)

# What a row contributes to the counts once it settles: one outcome (scalar field) or, per
# path label, the outcomes of a document's leaves (JSON field).
RowTally = Outcome | Counter[tuple[str | None, Outcome]]


@dataclass
class FieldReport:
    """What happened to one field; ``counts`` are of values, the rest of rows."""

    model: str
    field_name: str
    paths: list[str | None]
    counts: dict[str | None, Counter[Outcome]]
    is_json: bool = False
    is_envelope: bool = False
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

    def settle(self, tally: RowTally) -> None:
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
            "format": "env:v1" if self.is_envelope else "enc:v1",
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


@dataclass
class MigrationReport:
    """What one run did in one database, field by field.

    ``key`` is the active key every value was brought to; ``envelope`` the ``(provider, key
    id)`` of the KEK the data keys of envelope fields were wrapped by (``None`` when no envelope
    field was selected); ``excluded`` names the selected models that were left out, with the
    reason, and ``skipped`` the models whose table does not exist in the database. The run
    wrote nothing when ``dry_run`` is true.
    """

    database: str
    dry_run: bool
    key: Key
    envelope: tuple[str, str] | None = None
    fields: list[FieldReport] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # What a recount after a run (not a dry run) found still not under the active key:
    # ``{"plaintext", "other_keys", "unattributed"}``, those the run reported included.
    remaining: dict[str, int] | None = None
    # The blind index passes (one per indexed source field), and what the recount found still
    # to do on them: ``{"missing", "stale", "orphaned"}`` tags.
    indexes: list[IndexReport] = field(default_factory=list)
    remaining_indexes: dict[str, int] | None = None

    def index_totals(self) -> dict[str, Any]:
        """The ``index_totals`` object of the JSON report: rows read and tags written."""
        return _summed(self.indexes, "tags", INDEX_OUTCOMES)

    @property
    def would_write(self) -> bool:
        """Whether the run wrote (or, in a dry run, would write) a value or a tag."""
        return bool(self.totals()["written"] or self.index_totals()["written"])

    def totals(self) -> dict[str, Any]:
        """The ``totals`` object of the JSON report."""
        return _summed(self.fields, "values", OUTCOMES)

    def as_json(self) -> dict[str, Any]:
        """The report as ``--format json`` prints it (see docs/key_rotation.md)."""
        return {
            "database": self.database,
            "dry_run": self.dry_run,
            "key": {"key_id": self.key.id, "fingerprint": self.key.fingerprint},
            "envelope": None
            if self.envelope is None
            else {"provider": self.envelope[0], "key_id": self.envelope[1]},
            "fields": [report.as_json() for report in self.fields],
            "totals": self.totals(),
            "excluded": [{"model": e.model_label, "reason": e.reason} for e in self.excluded],
            "remaining": self.remaining,
            "indexes": [report.as_json() for report in self.indexes],
            "index_totals": self.index_totals(),
            "remaining_indexes": self.remaining_indexes,
            "would_write": self.dry_run and self.would_write,
        }

    def problems(self) -> list[str]:
        """What keeps the run from having brought every value to the active key, and what to
        do about each; empty when it did."""
        totals = self.totals()
        failed = totals["values"][Outcome.FAILED.value]
        left_over = totals["left_over"]
        write_failed = totals["write_failed"]
        problems = []
        if write_failed:
            problems.append(
                f"{write_failed} row(s) could not be written (the database refused the new "
                "value) and were left as they were; see the rows named above"
            )
        if failed:
            envelope = any(r.is_envelope and r.total(Outcome.FAILED) for r in self.fields)
            kms = " (for envelope values, or allow kms:Decrypt on the KMS key)" if envelope else ""
            problems.append(
                f"{failed} value(s) failed to decrypt and were left untouched; add the key "
                f"that wrote them to ENCRYPTION_KEY_FALLBACKS{kms} (or repair those rows) and rerun"
            )
        if left_over:
            problems.append(
                f"{left_over} row(s) kept changing while they were migrated and were left as "
                "they were; rerun to finish them"
            )
        problems += self.index_problems()
        left = sum((self.remaining or {}).values())
        # Only when the run itself reported nothing: the recount would count those values
        # again, and a rerun is asked for already.
        if left and not problems:
            assert self.remaining is not None
            parts = [
                f"{self.remaining[kind]} {what}"
                for kind, what in (
                    ("plaintext", "plaintext"),
                    ("other_keys", "under other keys"),
                    ("unattributed", "without a key id no key opened"),
                )
                if self.remaining[kind]
            ]
            problems.append(
                f"a recount after the run finds {left} value(s) not under the active key "
                f"({', '.join(parts)}): written while it ran by processes still configured "
                "with the previous key settings; deploy the new settings to every process "
                "and rerun"
            )
        left_tags = sum((self.remaining_indexes or {}).values())
        if left_tags and not problems:
            problems.append(
                f"a recount after the run finds {left_tags} blind index tag(s) missing or not "
                "under their key: written while it ran by processes still configured with the "
                "previous index key settings (or by AuthHero, which writes no tags); deploy the "
                "new settings to every process and rerun"
            )
        return problems

    def index_problems(self) -> list[str]:
        """What kept the blind index passes from bringing every tag up to date."""
        totals = self.index_totals()
        problems = []
        if totals["write_failed"]:
            problems.append(
                f"{totals['write_failed']} row(s) could not get their blind index tags (the "
                "database refused them: a unique index finds two rows with one value; those "
                "holding legacy plaintext were left unencrypted, so lookups still find them); "
                "make those values distinct and rerun"
            )
        if totals["failed_rows"]:
            problems.append(
                f"{totals['failed_rows']} row(s) could not get their blind index tags because "
                "their value failed to decrypt"
            )
        if totals["left_over"]:
            problems.append(
                f"{totals['left_over']} row(s) kept changing while their blind index tags were "
                "computed and were left as they were; rerun to finish them"
            )
        return problems

    @property
    def ok(self) -> bool:
        """Every value selected is under the active key (or, in a dry run, would be)."""
        return not self.problems()


def _summed(reports: Sequence[Any], counted_as: str, outcomes: Iterable[Any]) -> dict[str, Any]:
    """The totals of field or index reports: rows, writes and each outcome's count."""
    counted: Counter[Any] = Counter()
    for report in reports:
        for counter in report.counts.values():
            counted.update(counter)
    return {
        "rows": sum(r.rows for r in reports),
        "written": sum(r.written for r in reports),
        "retried": sum(r.retried for r in reports),
        counted_as: {getattr(o, "value", o): counted[o] for o in outcomes},
        "failed_rows": sum(r.failed_rows for r in reports),
        "left_over": sum(r.left_over for r in reports),
        "write_failed": sum(r.write_failed for r in reports),
    }
