"""``migrate()``: bring every encrypted value of the selected models to the active key, online.

Legacy plaintext is encrypted, values under a fallback key or another key id are re-encrypted,
values already under the active key are left byte for byte (see :mod:`authhero_encrypt.rotation`).
Envelope fields follow their own rules (``authhero_encrypt.envelope.rotation.EnvelopeRotation``):
``env:v1`` values under another KEK have only their data key rewrapped, legacy plaintext and
``enc:v1`` values are sealed into ``env:v1``. Each field is walked in batches written in their
own short transactions by compare-and-swap
(:mod:`~authhero_encrypt.migrate.batches`), so a run can be stopped at any point and rerun.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from authhero_encrypt.blind_index.keys import IndexKeyRing, get_index_keyring
from authhero_encrypt.blind_index.migrate import IndexMigrator, IndexReport, indexed_columns
from authhero_encrypt.envelope.config import active_provider, provider_named
from authhero_encrypt.envelope.rotation import EnvelopeRotation
from authhero_encrypt.exceptions import EncryptionError, InvalidKeyError, MissingKeyError
from authhero_encrypt.inventory import Target, is_envelope_field, survey
from authhero_encrypt.keys import KeyRing, get_keyring
from authhero_encrypt.migrate.batches import FieldMigrator, ProgressSink
from authhero_encrypt.migrate.report import FieldReport, MigrationReport
from authhero_encrypt.rotation import Outcome, Rotation
from authhero_encrypt.status import TableReadError, status

if TYPE_CHECKING:
    from django.db.models import Model

    from authhero_encrypt.envelope.providers import KeyProvider

__all__ = ["MigrationInterrupted", "MigrationStopped", "migrate"]


class MigrationStopped(Exception):
    """The database failed part-way; ``report`` holds what the run had done until then.

    Every batch before the current one is committed and the current one was rolled back, so
    nothing is half-written: rerun to finish. The database error is the ``__cause__``.
    """

    def __init__(self, message: str, report: MigrationReport) -> None:
        super().__init__(message)
        self.report = report


class MigrationInterrupted(KeyboardInterrupt):
    """A ``KeyboardInterrupt`` part-way, saying where the run stopped; still a
    ``KeyboardInterrupt``, so Ctrl-C stops a script as it always does."""

    def __init__(self, message: str, report: MigrationReport) -> None:
        super().__init__(message)
        self.report = report


def migrate(
    targets: Sequence[str] = (),
    *,
    using: str = DEFAULT_DB_ALIAS,
    batch_size: int = 500,
    dry_run: bool = False,
    progress: Callable[[str, int], ProgressSink] | None = None,
    log: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Encrypt legacy plaintext and re-encrypt values under other keys with the active key.

    ``targets`` are ``app_label`` or ``app_label.Model`` (every installed model by default);
    ``batch_size`` rows are read and written per transaction; ``dry_run`` decides everything
    and writes nothing. ``progress(label, total_rows)``, when given, is called at the start of
    each field and returns what is told of its batches; ``log`` receives a line for each model
    skipped because its table does not exist.

    Values that fail to decrypt, rows that kept changing and rows the database refused are
    left as they were and reported: check ``report.ok`` / ``report.problems()``. Raises
    ``ValueError`` for a ``batch_size`` below 1 or an unknown database alias,
    ``InvalidKeyError`` / ``MissingKeyError`` for key settings with no active key to migrate to
    (before anything is read), ``LookupError`` for an unknown app or model, and
    ``MigrationStopped`` / ``MigrationInterrupted`` when the run stops part-way.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    if using not in connections:
        raise ValueError(f"Unknown database alias {using!r}; see settings.DATABASES.")
    try:
        ring = get_keyring()
    except EncryptionError as exc:
        raise InvalidKeyError(f"The key settings are invalid: {exc}") from exc
    if ring.active is None:
        raise MissingKeyError(
            "ENCRYPTION_KEY is not set, so there is no key to migrate values to; nothing was "
            "changed. Set ENCRYPTION_KEY (with a new ENCRYPTION_KEY_ID) to the new key and "
            "list the previous keys in ENCRYPTION_KEY_FALLBACKS, then rerun."
        )
    found = survey(targets, using=using)
    index_ring = _index_ring(found.targets)
    envelope = _envelope_target(found.targets)
    result = MigrationReport(using, dry_run, ring.active, excluded=found.excluded)
    if envelope is not None:
        result.envelope = (envelope.name, envelope.active_key_id())  # known by now: no call
    tables = set(connections[using].introspection.table_names())
    rotation = Rotation(ring)
    totals: dict[type[Model], int] = {}
    for model, fld, paths in _group(found.targets):
        if model._meta.db_table not in tables:
            message = (
                f"Skipping {model._meta.label}: its table {model._meta.db_table!r} does "
                f"not exist in database {using!r} (run migrate first)."
            )
            result.skipped.append(message)
            if log is not None:
                log(message)
            continue
        rules: Rotation | EnvelopeRotation = rotation
        if envelope is not None and is_envelope_field(fld):
            kind = EnvelopeRotation if fld.row_context is None else RowContextRotation
            rules = kind(target=envelope, resolve=provider_named, ring=ring, context=fld.context)
            if isinstance(rules, RowContextRotation):
                rules.bind(model, fld, using)
        held: frozenset[Any] = frozenset()
        if index_ring is not None and indexed_columns(fld):
            # Before the values: a plaintext row is tagged while lookups still match it by
            # its plaintext (see authhero_encrypt.blind_index.migrate).
            indexer = IndexMigrator(
                model=model,
                source=fld,
                ring=index_ring,
                using=using,
                batch_size=batch_size,
                dry_run=dry_run,
            )
            sink = None
            if progress is not None:
                if model not in totals:
                    totals[model] = model._base_manager.using(using).count()
                sink = progress(f"{indexer.report.label} (blind indexes)", totals[model])
            try:
                result.indexes.append(indexer.run(sink))
            except (KeyboardInterrupt, DatabaseError) as exc:
                _stop(exc, indexer.report, result)
            held = frozenset(indexer.report.held)
        migrator = FieldMigrator(
            model=model,
            field=fld,
            paths=paths,
            using=using,
            rotation=rules,
            batch_size=batch_size,
            dry_run=dry_run,
        )
        migrator.hold = held
        sink = None
        if progress is not None:
            if model not in totals:
                totals[model] = model._base_manager.using(using).count()
            sink = progress(migrator.report.label, totals[model])
        try:
            result.fields.append(migrator.run(sink))
        except (KeyboardInterrupt, DatabaseError) as exc:
            _stop(exc, migrator.report, result)
    if not dry_run:
        result.remaining, result.remaining_indexes = _recount(targets, using, ring)
    return result


def _index_ring(targets: Sequence[Target]) -> IndexKeyRing | None:
    """The index key ring when a selected field has a blind index, checked before any row is
    read: invalid settings, or no index key, stop the run with nothing written."""
    if not any(indexed_columns(target.field) for target in targets):
        return None
    try:
        ring = get_index_keyring()
    except EncryptionError as exc:
        raise InvalidKeyError(f"The blind index key settings are invalid: {exc}") from exc
    if ring.active is None:
        raise MissingKeyError(
            "Blind indexes are declared on the selected models but ENCRYPTION_INDEX_KEY is not "
            "set, so their tags cannot be computed; nothing was changed. Set "
            "ENCRYPTION_INDEX_KEY (a key of its own), then rerun."
        )
    return ring


def _recount(
    targets: Sequence[str], using: str, ring: KeyRing
) -> tuple[dict[str, int], dict[str, int]]:
    """What is still not under the active key once the run is over, counted as
    ``encryption_status --require-active-key`` counts it: a process still writing with the old
    key while the run went past its rows leaves values the run never saw.

    Prefixes tell for every value with a key id; values without one are decrypted (only when
    the active key has no id and fallback keys are configured: otherwise prefixes tell too).
    """
    verify = ring.active is not None and ring.active.id is None and bool(ring.fallbacks)
    try:
        report = status(targets, using=using, verify=verify, require_active_key=True)
    except TableReadError:
        return {}, {}  # a table the run skipped: what the run did is reported as it is
    other, unattributed = report.off_active()
    values = {
        "plaintext": report.plaintext_total,
        "other_keys": other,
        "unattributed": unattributed,
    }
    return values, report.index_totals()


class RowContextRotation(EnvelopeRotation):
    """The envelope rules for a field whose context is per row (``envelope_context`` is a
    function of the instance): each batch's instances are loaded, without the field, to ask
    the function; a row the function fails on is kept as it is and reported."""

    def bind(self, model: type[Model], field: Any, using: str) -> None:
        self.model, self.field, self.using = model, field, using

    def contexts(self, row_keys: Sequence[Any]) -> dict[Any, str]:
        manager = self.model._base_manager.using(self.using).defer(self.field.attname)
        instances = manager.in_bulk(row_keys)
        found = {}
        for pk, instance in instances.items():
            try:
                found[pk] = self.field.context_for(instance)
            except ValueError:
                found[pk] = "\x00"  # refused by the rules, so the row is reported failed
        return found

    def value(self, stored: str, context: str | None = None) -> tuple[Outcome, str, str | None]:
        if context is None or "\x00" in context:
            return Outcome.FAILED, stored, "the row's envelope_context function gave no context"
        return super().value(stored, context)


def _envelope_target(targets: Sequence[Target]) -> KeyProvider | None:
    """The active KEK provider when an envelope field is selected; asked before any row is read,
    so a broken provider setting or an unreachable KMS stops the run with nothing written."""
    if not any(target.is_envelope for target in targets):
        return None
    try:
        provider = active_provider()
        # A key alias is resolved here (KMS DescribeKey, once per process); a ring without an
        # active key or a KMS provider without a key id fails here too.
        provider.active_key_id()
    except ImproperlyConfigured as exc:
        raise InvalidKeyError(f"The envelope settings are invalid: {exc}") from exc
    return provider


def _stop(exc: BaseException, field: FieldReport | IndexReport, result: MigrationReport) -> None:
    # The error's own text is left out: a driver may quote the values involved.
    interrupted = isinstance(exc, KeyboardInterrupt)
    what = "Interrupted" if interrupted else f"The database failed ({type(exc).__name__})"
    message = (
        f"{what} while migrating {field.label}, after {field.rows:,} rows. Every batch "
        "before the current one is committed and the current one was rolled back, so nothing "
        "is half-written: rerun to finish."
    )
    if isinstance(field, IndexReport):
        result.indexes.append(field)
    else:
        result.fields.append(field)
    if interrupted:
        raise MigrationInterrupted(message, result) from exc
    raise MigrationStopped(message, result) from exc


def _group(targets: Sequence[Target]) -> list[tuple[type[Model], Any, list[str | None]]]:
    """Targets by field, in order: a JSON field's paths are rewritten together, in one pass."""
    grouped: dict[tuple[type[Model], str], tuple[type[Model], Any, list[str | None]]] = {}
    for target in targets:
        key = (target.model, target.field.name)
        entry = grouped.setdefault(key, (target.model, target.field, []))
        entry[2].append(target.path_label)
    return list(grouped.values())
