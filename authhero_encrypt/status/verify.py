"""The streamed pass of the status report: ``*`` paths (whose keys SQL cannot enumerate
portably) and envelope fields are counted, and with ``verify`` every encrypted value is
decrypted (an ``env:v1`` value unwrapped and opened), reading a model's rows in
keyset-paginated batches, so memory stays flat however large the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authhero_encrypt.crypto import PREFIX, decrypt_with, stored_key_id
from authhero_encrypt.envelope.format import PREFIX as ENV_PREFIX
from authhero_encrypt.exceptions import DecryptionError
from authhero_encrypt.inventory import iter_raw_rows, load_json
from authhero_encrypt.keys import KeyRing
from authhero_encrypt.status.aggregate import column_of
from authhero_encrypt.status.classify import values_at
from authhero_encrypt.status.envelopes import envelope_opener, is_stored_encrypted, open_envelope
from authhero_encrypt.status.report import Tally

__all__ = ["FAILED_PKS_SHOWN", "Verifier", "stream"]

# Primary keys named per field when values fail to decrypt: enough to find them.
FAILED_PKS_SHOWN = 5


class Verifier:
    """Decrypt stored values and record, for untagged ones, which key opened them."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.using = "default"  # the database a per-row envelope context is read from
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
            if tally.target.is_envelope and stored.startswith(ENV_PREFIX):
                open_envelope(tally.target.field, stored, pk, self.using)
                field = tally.target.field
                if getattr(field, "row_context", None) is None:
                    context = getattr(field, "context", "")
                    opener = envelope_opener(stored, self.ring, context)
                    if opener:
                        tally.untagged_opened_by[opener] += 1
                return
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
    if verifier is not None:
        verifier.using = using
    for batch in iter_raw_rows(model, columns, using=using, batch_size=batch_size):
        for row in batch:
            documents: dict[int, Any] = {}  # each JSON column parsed once per row
            for tally, position, is_json, count in work:
                if tally.target.is_envelope:
                    stored = row[position]
                    if isinstance(stored, (bytes, bytearray)):
                        stored = stored.decode("utf-8")
                    if count:
                        tally.count(stored, known_ids)
                    if verifier is not None and stored and is_stored_encrypted(stored):
                        verifier.record(tally, row[0], stored)
                    continue
                stored = row[position]
                if is_json:
                    if position not in documents:
                        documents[position] = load_json(stored)
                    stored = documents[position]
                for value in values_at(tally.target.path, stored):
                    if count:
                        tally.count(value, known_ids)
                    if verifier is not None and isinstance(value, str) and value.startswith(PREFIX):
                        verifier.record(tally, row[0], value)
