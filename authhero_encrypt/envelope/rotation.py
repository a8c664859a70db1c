"""Rotation for ``env:v1`` values: rewrap a data key, classify stored text, rotate a batch.

``rewrap`` and ``classify`` are pure functions for ``encryption_migrate`` and
``encryption_status``; :class:`EnvelopeRotation` holds the rules ``encryption_migrate`` applies
to each value of an envelope column. None of them touches a database or the settings: they take
stored text and providers.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from authhero_encrypt.crypto import PREFIX as ENC_V1_PREFIX
from authhero_encrypt.crypto import decrypt_with
from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.envelope.codec import Resolver, resolve_for, seal
from authhero_encrypt.envelope.format import (
    PREFIX,
    check_context,
    compose,
    open_payload,
    parse,
)
from authhero_encrypt.exceptions import DecryptionError, EncryptionError
from authhero_encrypt.keys import KeyRing
from authhero_encrypt.rotation import Outcome, RowsRotation

__all__ = ["EnvelopeRotation", "Kind", "StoredStatus", "classify", "rewrap"]

K = TypeVar("K")


def rewrap(
    stored: str,
    context: str,
    *,
    resolve: Resolver,
    target: KeyProvider,
    verify: bool = True,
) -> str:
    """``stored`` with its data key rewrapped under ``target``'s active KEK; payload untouched.

    Contract, for the rotation command:

    * ``stored`` must be ``env:v1`` text of the field named by ``context`` (the same context the
      field uses, ``app_label.model_name.field_name`` unless the field pins its own);
    * ``resolve(name)`` returns the provider that can unwrap values of provider ``name`` (the
      old KEK: a ring with the old key among its fallbacks, or a KMS client allowed to
      ``Decrypt`` with the old key); ``target`` wraps with the new KEK;
    * when the value is already wrapped by ``target``'s active key, ``stored`` itself is
      returned (the same object, so ``result is stored`` tells "unchanged");
    * when ``target`` is the value's own provider and rewraps server-side
      (``supports_rewrap``, as Vault Transit does), the wrapped key is sent to it and the data
      key never enters this process; the payload is then not opened (``verify`` does not apply:
      ``encryption_status --verify`` opens values);
    * otherwise the DEK is unwrapped, the payload is opened with it to prove the value is whole
      (``verify=True``, the default; it costs one AES-GCM pass and no KMS call), the DEK is
      wrapped by ``target``, and the new text is returned. Its payload field is byte for byte the
      old one; only the provider, key id and wrapped DEK fields change;
    * every failure raises :class:`~authhero_encrypt.exceptions.DecryptionError` (or its
      subclasses ``MissingKeyError`` and ``KeyProviderError``), whose message never holds the
      value; the caller keeps the stored value as it is and reports the row.
    """
    check_context(context)
    envelope = parse(stored)
    if envelope.provider == target.name and target.is_active(
        envelope.key_id, envelope.wrapped, context
    ):
        return stored
    if envelope.provider == target.name and target.supports_rewrap:
        key_id, wrapped = target.rewrap(envelope.key_id, envelope.wrapped, context)
        return compose(replace(envelope, provider=target.name, key_id=key_id, wrapped=wrapped))
    source = resolve_for(resolve, envelope)
    dek = source.unwrap(envelope.key_id, envelope.wrapped, context)
    if verify:
        open_payload(
            dek, envelope.payload, context, key_id=envelope.key_id or None, salt=envelope.salt
        )
    key_id, wrapped = target.wrap(dek, context)
    return compose(replace(envelope, provider=target.name, key_id=key_id, wrapped=wrapped))


class Kind(enum.Enum):
    """What a stored string of an envelope column is, judged from its text alone."""

    NULL = "null"
    PLAINTEXT = "plaintext"
    """Legacy plaintext: envelope-encrypted on the field's next write."""
    ENC_V1 = "enc:v1"
    """An ``enc:v1`` value (the column used ``EncryptedTextField`` before): read with the key
    ring, and envelope-encrypted on the next write."""
    ENVELOPE = "envelope"
    MALFORMED = "malformed"
    """Carries the ``env:v1:`` prefix but does not parse; it cannot be read."""


@dataclass(frozen=True)
class StoredStatus:
    """The classification of one stored value: ``provider`` and ``key_id`` are set for
    :attr:`Kind.ENVELOPE` only, and ``reason`` (which never quotes the value) for
    :attr:`Kind.MALFORMED` only."""

    kind: Kind
    provider: str | None = None
    key_id: str | None = None
    reason: str | None = None


def classify(stored: str | None) -> StoredStatus:
    """Classify one stored value without a key, a provider or a network call.

    Contract, for the status command: never raises for any ``str`` or ``None``; a well-formed
    envelope reports its provider and key id (``""`` for a ring key without an id); anything
    with the ``env:v1:`` prefix that does not parse is ``MALFORMED`` with the parser's reason,
    and no part of the text is echoed. Well-formed does not mean it opens: only unwrapping, which
    needs the KEK, can tell that.
    """
    if stored is None:
        return StoredStatus(Kind.NULL)
    if stored.startswith(PREFIX):
        try:
            envelope = parse(stored)
        except DecryptionError as exc:
            return StoredStatus(Kind.MALFORMED, reason=str(exc))
        return StoredStatus(Kind.ENVELOPE, envelope.provider, envelope.key_id)
    if stored.startswith(ENC_V1_PREFIX):
        return StoredStatus(Kind.ENC_V1)
    return StoredStatus(Kind.PLAINTEXT)


class EnvelopeRotation:
    """What ``encryption_migrate`` does to each stored value of one envelope field.

    * ``env:v1`` under the active KEK of ``target``: kept byte for byte (``UNCHANGED``);
    * ``env:v1`` under another KEK: the data key is rewrapped (:func:`rewrap`), the payload
      kept byte for byte (``REWRAPPED``);
    * an ``enc:v1`` value (the column was an ``EncryptedTextField``): opened with ``ring`` and
      sealed under a fresh data key (``REENCRYPTED``); legacy plaintext, ``""`` included, is
      sealed too (``ENCRYPTED``), as the field does on its next write;
    * anything that does not open, or cannot be sealed (``target`` refuses to wrap): kept as it
      is, with the reason (``FAILED``), which never holds the value.

    ``resolve`` returns the provider that unwraps values of a stored provider name; ``context``
    is the field's (``EnvelopeEncryptedTextField.context``).
    """

    def __init__(
        self, *, target: KeyProvider, resolve: Resolver, ring: KeyRing, context: str
    ) -> None:
        self.target = target
        self.resolve = resolve
        self.ring = ring
        self.context = check_context(context)

    def value(self, stored: str, context: str | None = None) -> tuple[Outcome, str, str | None]:
        """``(outcome, text to store, reason it failed or None)`` for one stored string;
        ``context`` is the row's, for a field whose context is per row."""
        context = self.context if context is None else check_context(context)
        try:
            if stored.startswith(PREFIX):
                text = rewrap(stored, context, resolve=self.resolve, target=self.target)
                if text is stored:
                    return Outcome.UNCHANGED, stored, None
                return Outcome.REWRAPPED, text, None
            if stored.startswith(ENC_V1_PREFIX):
                plaintext, outcome = decrypt_with(self.ring, stored), Outcome.REENCRYPTED
            else:
                plaintext, outcome = stored, Outcome.ENCRYPTED
            return outcome, seal(self.target, plaintext, context), None
        except EncryptionError as exc:
            return Outcome.FAILED, stored, str(exc)

    def contexts(self, row_keys: Sequence[K]) -> dict[K, str]:
        """The context of each row (the field's, unless a subclass knows them per row)."""
        return {}

    def rows(self, rows: Sequence[tuple[K, str | None]]) -> RowsRotation[K]:
        """Rotate the stored value of each ``(key, stored)`` row; ``None`` (SQL NULL) is skipped."""
        result: RowsRotation[K] = RowsRotation([], 0, [])
        contexts = self.contexts([row_key for row_key, stored in rows if stored is not None])
        for row_key, stored in rows:
            if stored is None:
                continue
            outcome, text, reason = self.value(stored, contexts.get(row_key))
            if reason is not None:
                result.failures.append((row_key, reason))
            elif outcome is Outcome.UNCHANGED:
                result.unchanged += 1
            else:
                result.changes.append((row_key, stored, text, outcome))
        return result
