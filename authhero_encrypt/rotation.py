"""What key rotation does to one stored value or one JSON document, decided without a database.

The ``encryption_migrate`` command reads stored text, asks :class:`Rotation` what each value
should become under the current key ring, and writes back only what changed:

* legacy plaintext (no ``enc:v1:`` prefix, ``""`` included) is encrypted, as the field would on
  its next save;
* a value that opens under a fallback key, or is tagged with a key id other than the active one
  (an untagged value written by the active key before it had an id included), is re-encrypted
  with the active key and tagged with the active key id;
* a value already under the active key, with the active key id, is kept byte for byte, so a
  second run changes nothing;
* a value that no configured key opens is kept byte for byte and reported: rewriting it would
  lose it.

Pure Python, no Django, so the rules can be tested against key rings alone.
"""

from __future__ import annotations

import enum
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from authhero_encrypt.crypto import IV_BYTES, PREFIX, decrypt_with, encrypt_with, stored_key_id
from authhero_encrypt.exceptions import DecryptionError, EncryptionError, MissingKeyError
from authhero_encrypt.json_paths import WILDCARD, Path, PathTrie
from authhero_encrypt.keys import Key, KeyRing

__all__ = ["DocumentRewrite", "Outcome", "Rotation", "RowsRotation"]


class Outcome(enum.Enum):
    """What rotation does to one value."""

    UNCHANGED = "unchanged"
    """Already under the active key and key id: kept byte for byte."""
    ENCRYPTED = "encrypted"
    """Legacy plaintext, now encrypted."""
    REENCRYPTED = "reencrypted"
    """Was under a fallback key or another key id, now under the active one."""
    REWRAPPED = "rewrapped"
    """An ``env:v1`` value whose data key was wrapped by another KEK, now wrapped by the active
    one; its sealed payload is kept byte for byte (envelope fields only)."""
    FAILED = "failed"
    """No configured key opens it (or, as plaintext, it cannot be encrypted): kept byte for
    byte and reported."""
    SKIPPED = "skipped"
    """Would change, but shares its document with a value that failed, so it is kept too."""


@dataclass
class DocumentRewrite:
    """The result of rotating every secret leaf of one JSON document.

    ``document`` is the rewritten document, or the very object passed in when nothing changes
    (no leaf needed it, or one leaf failed and the whole document is kept). ``counts`` holds,
    per declared path (``("*",)`` style for wildcard leaves) and outcome, how many leaves it
    covered; ``failures`` the concrete path and reason of every leaf that failed.
    """

    document: Any
    changed: bool
    counts: Counter[tuple[Path, Outcome]] = field(default_factory=Counter)
    failures: list[tuple[Path, str]] = field(default_factory=list)


K = TypeVar("K")


@dataclass
class RowsRotation(Generic[K]):
    """What rotating a batch of rows found: the rows to rewrite as ``(key, stored, new,
    outcome)``, how many were already under the active key, and ``(key, reason)`` for each
    value that failed (kept as it is)."""

    changes: list[tuple[K, str, str, Outcome]]
    unchanged: int
    failures: list[tuple[K, str]]


class Rotation:
    """Rotation rules for one key ring, which must have an active key."""

    def __init__(self, ring: KeyRing) -> None:
        if ring.active is None:
            raise MissingKeyError(
                "ENCRYPTION_KEY is not set, so there is no key to migrate values to. Set "
                "ENCRYPTION_KEY (and ENCRYPTION_KEY_ID) to the new key and list the old ones "
                "in ENCRYPTION_KEY_FALLBACKS."
            )
        self.ring = ring
        self.active: Key = ring.active
        self.prefix = ring.write_prefix
        self.pad = ring.pad_payload
        # Only the active key, to tell "under the active key" from "opens under some key" for
        # untagged values: the codec tries every key and does not say which one opened it.
        self._active_only = KeyRing.from_keys(ring.active, ())

    def value(self, stored: str, *, iv: bytes | None = None) -> tuple[Outcome, str, str | None]:
        """``(outcome, text to store, reason it failed or None)`` for one stored string.

        ``iv`` is the fresh random IV for the value, if it has to be (re-)encrypted; by default
        one is drawn from ``os.urandom``.
        """
        if not stored.startswith(PREFIX):
            try:
                encrypted = encrypt_with(
                    self.active, stored, iv=iv, prefix=self.prefix, pad=self.pad
                )
            except EncryptionError as exc:  # text that is not valid Unicode (a lone surrogate)
                return Outcome.FAILED, stored, str(exc)
            return Outcome.ENCRYPTED, encrypted, None
        key_id = stored_key_id(stored)
        if key_id == self.active.id:
            try:
                decrypt_with(self._active_only, stored)
            except DecryptionError as exc:
                if key_id is not None:
                    # Only the active key carries this id: no other key may open it.
                    return Outcome.FAILED, stored, str(exc)
            else:
                return Outcome.UNCHANGED, stored, None
        try:
            plaintext = decrypt_with(self.ring, stored)
        except DecryptionError as exc:
            return Outcome.FAILED, stored, str(exc)
        encrypted = encrypt_with(self.active, plaintext, iv=iv, prefix=self.prefix, pad=self.pad)
        return Outcome.REENCRYPTED, encrypted, None

    def rows(self, rows: Sequence[tuple[K, str | None]]) -> RowsRotation[K]:
        """Rotate the stored value of each ``(key, stored)`` row; ``None`` (SQL NULL) is skipped.

        This is the loop of a migration, so it is one pass with no call per row beyond the
        codec's. The IVs of the whole batch come from one ``os.urandom`` call, sliced 12 bytes
        a value: the same randomness as a call per value, which on a table of legacy plaintext
        would be a fifth of the cost.
        """
        ivs = os.urandom(IV_BYTES * len(rows))
        key, prefix, pad, value = self.active, self.prefix, self.pad, self.value
        encrypted = Outcome.ENCRYPTED
        result: RowsRotation[K] = RowsRotation([], 0, [])
        change, fail = result.changes.append, result.failures.append
        unchanged = 0
        offset = -IV_BYTES
        for row_key, stored in rows:
            offset += IV_BYTES
            if stored is None:
                continue
            iv = ivs[offset : offset + IV_BYTES]
            if not stored.startswith(PREFIX):
                try:
                    text = encrypt_with(key, stored, iv=iv, prefix=prefix, pad=pad)
                except EncryptionError as exc:  # not valid Unicode text (a lone surrogate)
                    fail((row_key, str(exc)))
                else:
                    change((row_key, stored, text, encrypted))
                continue
            outcome, text, reason = value(stored, iv=iv)
            if reason is not None:
                fail((row_key, reason))
            elif text is stored:
                unchanged += 1
            else:
                change((row_key, stored, text, outcome))
        result.unchanged = unchanged
        return result

    def document(self, trie: PathTrie, declared: Sequence[Path], document: Any) -> DocumentRewrite:
        """Rotate every secret string leaf of ``document`` (the other leaves never change).

        All leaves are rewritten together or not at all: when one fails, the document is kept
        as it is, so a row is never written with some of its values still unreadable.
        """
        result = DocumentRewrite(document, changed=False)
        declared_set = frozenset(declared)
        counts = result.counts
        changed = False

        def rotate(path: Path, stored: str) -> str:
            nonlocal changed
            outcome, text, reason = self.value(stored)
            declared_path = path if path in declared_set else (*path[:-1], WILDCARD)
            counts[declared_path, outcome] += 1
            if reason is not None:
                result.failures.append((path, reason))
            elif outcome is not Outcome.UNCHANGED:
                changed = True
            return text

        rewritten = trie.transform(document, rotate)
        if result.failures:
            for (path, outcome), n in list(counts.items()):
                if outcome in (Outcome.ENCRYPTED, Outcome.REENCRYPTED):
                    del counts[path, outcome]
                    counts[path, Outcome.SKIPPED] += n
            return result
        if changed:
            result.document = rewritten
            result.changed = True
        return result
