"""``status()``: count every encrypted value of the selected models in one database.

One aggregate query per model covers its scalar fields and fixed JSON paths
(:mod:`~authhero_encrypt.status.aggregate`); ``*`` paths and ``verify`` stream the rows
(:mod:`~authhero_encrypt.status.verify`). The default run never needs the key: it only looks at
prefixes, which is what lets it diagnose a deployment whose key settings are broken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from authhero_encrypt.blind_index.status import count_indexes
from authhero_encrypt.exceptions import InvalidKeyError, MissingKeyError
from authhero_encrypt.inventory import Target, survey
from authhero_encrypt.status import dialects
from authhero_encrypt.status.aggregate import ModelCounter
from authhero_encrypt.status.envelopes import active_envelope_label
from authhero_encrypt.status.report import KeyStatus, StatusReport, Tally
from authhero_encrypt.status.verify import Verifier, stream

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

__all__ = ["TableReadError", "status"]


class TableReadError(Exception):
    """A selected model's table could not be read (not migrated, no permission, ...)."""


def status(
    targets: Sequence[str] = (),
    *,
    using: str = DEFAULT_DB_ALIAS,
    verify: bool = False,
    batch_size: int = 1000,
    progress: Callable[[str], None] | None = None,
    require_active_key: bool = False,
) -> StatusReport:
    """Count the values of every encrypted field and JSON path of the selected models.

    ``targets`` are ``app_label`` or ``app_label.Model`` (every installed model by default);
    ``verify`` also decrypts every encrypted value, ``batch_size`` rows at a time where rows are
    streamed; ``progress`` is called with one line per model (its queries and time);
    ``require_active_key`` resolves a KMS key alias to the ARN envelope values carry, so that
    ``report.on_active_key`` can tell which are under it (one KMS call).

    Blind index columns over the selected fields are counted too (``report.indexes``, see
    :mod:`authhero_encrypt.blind_index.status`); ``verify`` recomputes their tags.

    Raises ``ValueError`` for a ``batch_size`` below 1 or an unknown database alias,
    ``LookupError`` for an unknown app or model, ``InvalidKeyError`` / ``MissingKeyError`` when
    ``verify`` has no usable key, and ``TableReadError`` when a table cannot be read.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of rows, not {batch_size}.")
    if using not in connections:
        raise ValueError(f"Unknown database alias {using!r}; see settings.DATABASES.")
    found = survey(targets, using=using)
    keys = KeyStatus.load()
    keys.envelope_active = active_envelope_label(keys.ring, resolve=require_active_key)
    verifier = _verifier(keys) if verify else None
    # The configured key ids let the aggregate query split the encrypted values by key
    # without a second query; without them (no key, broken settings) it is still exact.
    known_ids = tuple(keys.ring.by_id) if keys.ring is not None else ()
    connection = connections[using]
    tallies = _count(found.targets, connection, known_ids, verifier, batch_size, progress)
    try:
        indexes = count_indexes(found.targets, connection, verify=verify, batch_size=batch_size)
    except DatabaseError as exc:
        raise TableReadError(
            f"Cannot read the blind index columns in database {using!r}: {exc}. Has manage.py "
            "migrate run on it?"
        ) from exc
    return StatusReport(
        using, tallies, keys, verified=verify, excluded=found.excluded, indexes=indexes
    )


def _verifier(keys: KeyStatus) -> Verifier:
    if keys.ring is None:
        raise InvalidKeyError(
            "--verify decrypts every value, but the key settings are invalid: "
            + " ".join(keys.errors)
            + " Fix them (manage.py check lists them), or run without --verify to count "
            "by prefix only."
        )
    if not keys.ring.untagged:
        raise MissingKeyError(
            "--verify decrypts every value and needs the key, but ENCRYPTION_KEY is not "
            "set. Set ENCRYPTION_KEY (and ENCRYPTION_KEY_FALLBACKS for older keys), or run "
            "without --verify to count by prefix only."
        )
    return Verifier(keys.ring)


def _count(
    targets: Sequence[Target],
    connection: BaseDatabaseWrapper,
    known_ids: Sequence[str],
    verifier: Verifier | None,
    batch_size: int,
    progress: Callable[[str], None] | None,
) -> list[Tally]:
    # Looked up on the module at each call, so that a test can take a backend's dialect away.
    dialect_class = dialects.DIALECTS.get(connection.vendor)
    # On a backend without a dialect here every target is streamed: slower, still exact.
    dialect = dialect_class() if dialect_class is not None else None
    by_model: dict[type[Model], list[Target]] = {}
    for target in targets:
        by_model.setdefault(target.model, []).append(target)
    results: dict[Target, Tally] = {}
    for model, model_targets in by_model.items():
        started = time.perf_counter()
        try:
            tallies, queries, streamed = _count_model(
                model, model_targets, connection, dialect, known_ids, verifier, batch_size
            )
        except DatabaseError as exc:
            raise TableReadError(
                f"Cannot read {model._meta.label} (table {model._meta.db_table!r}) in "
                f"database {connection.alias!r}: {exc}. Has manage.py migrate run on it? "
                "Select other models with app_label or app_label.Model."
            ) from exc
        results.update((tally.target, tally) for tally in tallies)
        if progress is not None:
            progress(
                f"{model._meta.label}: {queries} aggregate quer{'y' if queries == 1 else 'ies'}"
                f"{', rows streamed' if streamed else ''}, "
                f"{time.perf_counter() - started:.2f} s"
            )
    return [results[t] for t in targets]


def _count_model(
    model: type[Model],
    targets: Sequence[Target],
    connection: BaseDatabaseWrapper,
    dialect: dialects.Dialect | None,
    known_ids: Sequence[str],
    verifier: Verifier | None,
    batch_size: int,
) -> tuple[list[Tally], int, bool]:
    """The tallies of one model's targets, its aggregate queries, whether rows were read."""
    results: dict[Target, Tally] = {}
    queries = 0
    # Envelope values are classified by parsing them (status.envelopes): always streamed.
    in_sql = [t for t in targets if not t.is_wildcard and not t.is_envelope]
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
