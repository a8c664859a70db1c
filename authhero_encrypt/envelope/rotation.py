"""Rotation primitives for ``env:v1`` values: rewrap a data key, and classify stored text.

Both are pure functions meant for ``encryption_migrate`` and ``encryption_status``: they take
stored text and providers, touch no database and no settings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from authhero_encrypt.crypto import PREFIX as ENC_V1_PREFIX
from authhero_encrypt.envelope.codec import Resolver
from authhero_encrypt.envelope.format import (
    PREFIX,
    Envelope,
    check_context,
    compose,
    open_payload,
    parse,
)
from authhero_encrypt.envelope.providers import KeyProvider
from authhero_encrypt.exceptions import DecryptionError

__all__ = ["Kind", "StoredStatus", "classify", "rewrap"]


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
    dek = resolve(envelope.provider).unwrap(envelope.key_id, envelope.wrapped, context)
    if verify:
        open_payload(dek, envelope.payload, context, key_id=envelope.key_id or None)
    key_id, wrapped = target.wrap(dek, context)
    return compose(Envelope(target.name, key_id, wrapped, envelope.payload))


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
