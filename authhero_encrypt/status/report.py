"""What ``status()`` returns: the counts of every target, the key settings, and their totals.

:class:`StatusReport` is what ``manage.py encryption_status`` prints (as text or JSON) and what
a deploy script reads: ``report.plaintext_total``, ``report.ok`` (what ``--check`` tests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.checks import ERROR

from authhero_encrypt.blind_index.status import IndexTally
from authhero_encrypt.checks import check_key_settings
from authhero_encrypt.exceptions import InvalidKeyError
from authhero_encrypt.inventory import MALFORMED, UNTAGGED, Excluded, Target, key_label
from authhero_encrypt.keys import Key, KeyRing, get_keyring
from authhero_encrypt.status.classify import value_class
from authhero_encrypt.status.envelopes import (
    envelope_kek,
    envelope_label,
    is_remote_label,
    label_readable,
)

__all__ = ["KeyStatus", "StatusReport", "Tally"]


@dataclass
class Tally:
    """The counts of one target; with ``--verify`` also what decrypting its values found."""

    target: Target
    encrypted: int = 0
    plaintext: int = 0
    empty: int = 0
    null: int = 0
    by_key: Counter[str] = field(default_factory=Counter)
    verified: bool = False
    checked: int = 0
    failed: int = 0
    failed_pks: list[Any] = field(default_factory=list)
    first_error: str | None = None
    untagged_opened_by: Counter[str] = field(default_factory=Counter)

    def count(self, value: Any, known_ids: Sequence[str]) -> None:
        """Count one stored value as the SQL does (for the values that are streamed)."""
        if self.target.is_envelope and isinstance(value, str):
            label = envelope_label(value, tuple(known_ids))
            if label is not None:
                self.encrypted += 1
                self.by_key[label] += 1
                return
        kind = value_class(value)
        if kind == "null":
            self.null += 1
        elif kind == "encrypted":
            self.encrypted += 1
            self.by_key[key_label(value, tuple(known_ids))] += 1
        else:
            # "" is legacy plaintext too: the field and AuthHero encrypt it, and so does
            # encryption_migrate. ``empty`` says how many of the plaintext values are "".
            self.plaintext += 1
            if kind == "empty":
                self.empty += 1

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.target.model_label,
            "field": self.target.field.name,
            "path": self.target.path_label,
            "format": "env:v1" if self.target.is_envelope else "enc:v1",
            "encrypted": self.encrypted,
            "plaintext": self.plaintext,
            "empty": self.empty,
            "no_value": self.null,
            "by_key": dict(sorted(self.by_key.items())),
        }
        if self.verified:
            data["verify"] = {
                "checked": self.checked,
                "failed": self.failed,
                "failed_pks": self.failed_pks,
                "first_error": self.first_error,
                "untagged_keys": dict(self.untagged_opened_by),
            }
        return data


@dataclass
class KeyStatus:
    """The key settings as the report shows them: the key ring, or what stops it loading."""

    ring: KeyRing | None
    errors: list[str]
    # The by_key label new envelope values get (``local:<id>``, ``aws-kms:<ARN>``); for a KMS
    # alias only once ``status(require_active_key=True)`` has resolved it.
    envelope_active: str | None = None

    @classmethod
    def load(cls) -> KeyStatus:
        try:
            return cls(get_keyring(), [])
        except InvalidKeyError as exc:
            # Every problem, as ``manage.py check`` lists them, not only the first one the ring
            # builder met; the messages never hold a key.
            errors = [
                f"{message.msg} ({message.id})"
                for message in check_key_settings()
                if message.level >= ERROR
            ]
            return cls(None, errors or [str(exc)])

    def unreadable(self, by_key: Counter[str]) -> int:
        """How many of the encrypted values counted in ``by_key`` no configured key can open,
        as far as their prefix tells (``--verify`` finds the rest: tampered values, wrong keys).
        """
        ring = self.ring
        unreadable = 0
        for label, n in by_key.items():
            envelope = label_readable(label, ring)
            if envelope is not None:
                unreadable += 0 if envelope else n
            elif ring is None or not ring.untagged or label not in (UNTAGGED, *ring.by_id):
                unreadable += n
        return unreadable

    def active_label(self) -> str | None:
        """The by_key label of values under the active key (``None`` without one)."""
        if self.ring is None or self.ring.active is None:
            return None
        return self.ring.active.id or UNTAGGED

    def off_active(self, tally: Tally) -> tuple[int, int]:
        """``(other, unattributed)``: how many encrypted values of ``tally`` are shown to be under
        another key than the active one, and how many without a key id it cannot attribute.

        A value without a key id says nothing of its key: while fallback keys are configured it
        is only known to be under the active key once ``--verify`` has opened it with that key
        (the active key is tried first, so ``untagged_opened_by`` names it). With no fallback
        there is no other key it can be under.
        """
        active = self.active_label()
        ring = self.ring
        other = unattributed = 0
        envelope_active = self.envelope_active
        for label, n in tally.by_key.items():
            if tally.target.is_envelope:
                # enc:v1 values in an envelope column are sealed on migrate: never done.
                if envelope_active is None or label != envelope_active:
                    other += n
                elif label.endswith(f":{UNTAGGED}") and ring is not None and ring.fallbacks:
                    other, unattributed = _untagged(tally, n, ring, other, unattributed)
            elif active is None or label == MALFORMED:
                other += n
            elif label == UNTAGGED:
                if active != UNTAGGED:
                    other += n  # the active key writes its id: these are older values
                elif ring is not None and ring.fallbacks:
                    other, unattributed = _untagged(tally, n, ring, other, unattributed)
            elif label != active:
                other += n
        return other, unattributed

    def needs_ring(self, by_key: Counter[str]) -> int:
        """How many of the values counted in ``by_key`` only the key ring can open (all but
        those wrapped by another envelope provider: AWS KMS, Vault, a custom backend)."""
        return sum(n for label, n in by_key.items() if not is_remote_label(label))

    def roles(self) -> list[tuple[str, Key]]:
        if self.ring is None:
            return []
        roles = [("active", self.ring.active)] if self.ring.active else []
        return roles + [("fallback", key) for key in self.ring.fallbacks]

    def as_json(self) -> dict[str, Any]:
        ring = self.ring
        return {
            "configured": ring is not None and ring.active is not None,
            "key_id": ring.active.id if ring is not None and ring.active is not None else None,
            "fallbacks": len(ring.fallbacks) if ring is not None else 0,
            "fingerprints": [
                {"role": role, "key_id": key.id, "fingerprint": key.fingerprint}
                for role, key in self.roles()
            ],
            "errors": self.errors,
            "envelope": envelope_kek(ring),
            "active_label": self.active_label(),
        }


def _untagged(
    tally: Tally, n: int, ring: KeyRing, other: int, unattributed: int
) -> tuple[int, int]:
    # Values without a key id, the active key without one either, and fallback keys that may
    # have written them: only opening them (--verify) tells which key did.
    if not tally.verified or ring.active is None:
        return other, unattributed + n
    return other + n - tally.untagged_opened_by.get(ring.active.fingerprint, 0), unattributed


@dataclass
class StatusReport:
    """The counts of every selected target in one database, and the key settings.

    ``tallies`` are in the order of the targets; ``excluded`` names the selected models that
    were left out, with the reason. ``verified`` says whether every encrypted value was also
    decrypted (``verify=True``): only then do ``checked_total`` and ``failed_total`` count.
    """

    database: str
    tallies: list[Tally]
    keys: KeyStatus
    verified: bool = False
    excluded: list[Excluded] = field(default_factory=list)
    indexes: list[IndexTally] = field(default_factory=list)

    def index_totals(self) -> dict[str, int]:
        """Blind index tags still to write: missing, stale (not under their column's key) and
        orphaned (on rows with no value), and with ``--verify`` mismatched, over every column."""
        totals = {
            "missing": sum(t.missing for t in self.indexes),
            "stale": sum(t.stale for t in self.indexes),
            "orphaned": sum(t.orphaned for t in self.indexes),
        }
        if self.verified:
            totals["mismatched"] = sum(t.mismatched for t in self.indexes)
        return totals

    @property
    def indexes_ok(self) -> bool:
        """Every blind index tag present, under its column's key, and (verified) right."""
        return all(tally.ok for tally in self.indexes)

    @property
    def encrypted_total(self) -> int:
        return sum(t.encrypted for t in self.tallies)

    @property
    def plaintext_total(self) -> int:
        """Values still stored as legacy plaintext, ``""`` included."""
        return sum(t.plaintext for t in self.tallies)

    @property
    def empty_total(self) -> int:
        return sum(t.empty for t in self.tallies)

    @property
    def null_total(self) -> int:
        return sum(t.null for t in self.tallies)

    @property
    def checked_total(self) -> int:
        return sum(t.checked for t in self.tallies)

    @property
    def failed_total(self) -> int:
        """Values that failed to decrypt (with ``verify=True``; 0 otherwise)."""
        return sum(t.failed for t in self.tallies)

    @property
    def by_key(self) -> Counter[str]:
        """Encrypted values per key label: a key id, ``""`` (untagged) or ``"(malformed)"``."""
        by_key: Counter[str] = Counter()
        for tally in self.tallies:
            by_key.update(tally.by_key)
        return by_key

    @property
    def unreadable(self) -> int:
        """Encrypted values no configured key can open, as far as their prefixes tell."""
        return self.keys.unreadable(self.by_key)

    @property
    def ok(self) -> bool:
        """What ``--check`` tests: no plaintext left, no value failed to decrypt, no value under
        a key id that is not configured (or otherwise unreadable by its prefix), and a
        deployment that can open what it stores (valid key settings, and a key whenever
        encrypted values exist)."""
        ring = self.keys.ring
        unusable = ring is None or bool(self.keys.needs_ring(self.by_key) and not ring.untagged)
        trouble = self.plaintext_total or self.failed_total or self.unreadable or unusable
        return not trouble and self.indexes_ok

    def off_active(self) -> tuple[int, int]:
        """``(other, unattributed)`` over every target: encrypted values shown to be under
        another key than the active one, and values without a key id only ``--verify`` can
        attribute (see :meth:`KeyStatus.off_active`)."""
        other = unattributed = 0
        for tally in self.tallies:
            o, u = self.keys.off_active(tally)
            other, unattributed = other + o, unattributed + u
        return other, unattributed

    @property
    def on_active_key(self) -> bool:
        """What ``--require-active-key`` tests on top of :attr:`ok`: every value is encrypted
        and shown to be under the active key (its key id, or for values without a key id,
        opened by it under ``--verify`` or the only key configured), so the other keys can go."""
        other, unattributed = self.off_active()
        return self.ok and not (other or unattributed or self.keys.active_label() is None)

    def totals(self) -> dict[str, Any]:
        """The ``totals`` object of the JSON report."""
        by_key = self.by_key
        totals: dict[str, Any] = {
            "fields": len(self.tallies),
            "encrypted": self.encrypted_total,
            "plaintext": self.plaintext_total,
            "empty": self.empty_total,
            "no_value": self.null_total,
            "by_key": dict(sorted(by_key.items())),
            "unreadable": self.keys.unreadable(by_key),
        }
        other, unattributed = self.off_active()
        totals["not_under_active_key"] = {"other_keys": other, "unattributed": unattributed}
        if self.verified:
            totals["verify"] = {"checked": self.checked_total, "failed": self.failed_total}
        return totals

    def as_json(self) -> dict[str, Any]:
        """The report as ``--format json`` prints it (see docs/encryption_status.md)."""
        return {
            "key": self.keys.as_json(),
            "fields": [t.as_json() for t in self.tallies],
            "totals": self.totals(),
            "check": {
                "ok": self.ok,
                "on_active_key": self.on_active_key,
                "indexes_ok": self.indexes_ok,
            },
            "excluded": [{"model": e.model_label, "reason": e.reason} for e in self.excluded],
            "indexes": [t.as_json() for t in self.indexes],
            "index_totals": self.index_totals(),
        }
