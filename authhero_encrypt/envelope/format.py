"""The ``env:v1`` stored format: strict parsing, composing, and sealing the payload under a DEK.

A stored value is ``env:v1:<provider>:<key id>:<wrapped DEK>:<payload>``:

* ``provider`` names the key-encryption-key (KEK) provider that wrapped the data key: an entry
  of ``ENCRYPTION_ENVELOPE_PROVIDERS`` (``local``, a key of the ``ENCRYPTION_KEY`` ring, and
  ``aws-kms`` by default), of the alphabet :data:`PROVIDER_NAME`;
* ``key id`` names the KEK: a ring key id (empty for a key without an id), a KMS key ARN or
  another provider's id; it may hold ``:``, so the fields are split from both ends (base64url
  has no ``:``). ``local`` and ``aws-kms`` key ids follow their own rules here; other providers'
  ids are checked against :data:`GENERIC_KEY_ID`, then against the provider's own pattern;
* ``wrapped DEK`` and ``payload`` are unpadded, canonical base64url. The payload is ``iv (12
  bytes) || ciphertext || GCM tag (16 bytes)``: the UTF-8 plaintext sealed with AES-256-GCM
  under a fresh random 256-bit data key (DEK), with the associated data :func:`payload_aad`.

The payload's associated data binds it to the format and to the field's context (the model and
field it belongs to), but deliberately not to the provider, key id or wrapped DEK: rotation
rewraps the DEK under a new KEK and must leave the payload byte for byte as it is. The payload
is bound to its wrapped DEK anyway, since only that DEK opens it.

Pure Python, no Django: every function here can be tested alone, and parsing never echoes the
text it refuses (a value that merely looks like an envelope may be a secret).
"""

from __future__ import annotations

import binascii
import re
from binascii import b2a_base64
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authhero_encrypt.crypto import (
    _FINAL_CHARS,
    _FROM_URLSAFE,
    _PADDING,
    _TO_URLSAFE,
    strict_b64decode,
    utf8,
)
from authhero_encrypt.exceptions import DecryptionError

__all__ = [
    "DEK_BYTES",
    "GENERIC_KEY_ID",
    "IV_BYTES",
    "KMS_KEY_ID",
    "PREFIX",
    "PROVIDERS",
    "PROVIDER_NAME",
    "Envelope",
    "check_context",
    "compose",
    "is_envelope",
    "open_payload",
    "parse",
    "payload_aad",
    "seal_payload",
]

PREFIX = "env:v1:"
DEK_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16
LOCAL = "local"
AWS_KMS = "aws-kms"
PROVIDERS = (LOCAL, AWS_KMS)  # the names configured by default
# What the format can carry: a provider name never holds ``:`` (it ends the first field); a key
# id may, since the key id, wrapped key and payload fields are split from the right.
PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
GENERIC_KEY_ID = re.compile(r"[A-Za-z0-9:/_.@+=-]{0,256}")
# The local wrap is AES-256-GCM of the 32-byte DEK: iv || 32 bytes || tag.
LOCAL_WRAPPED_BYTES = IV_BYTES + DEK_BYTES + TAG_BYTES
# The largest ciphertext blob KMS returns (its documented CiphertextBlob limit).
MAX_WRAPPED_BYTES = 6144
# Ring key ids (see authhero_encrypt.keys); empty for a ring key without an id.
_LOCAL_KEY_ID = re.compile(r"[A-Za-z0-9_-]{0,64}")
# KMS key ARNs (arn:aws:kms:region:account:key/uuid) and key ids; never empty.
KMS_KEY_ID = re.compile(r"[A-Za-z0-9:/_.-]{1,256}")
_KEY_ID_RULES = {LOCAL: _LOCAL_KEY_ID, AWS_KMS: KMS_KEY_ID}
_PAYLOAD_LABEL = b"authhero_encrypt env:v1 payload\x00"
# The derived-key payload (written with the opt-in write cache, where one data key seals several
# values): ``d.`` + base64url(salt || iv || ciphertext || tag), sealed under
# HKDF-SHA256(DEK, salt, info=_DERIVED_LABEL + context). ``.`` is not base64url, so a reader
# without this extension refuses such a value instead of misreading it.
DERIVED_MARK = "d."
SALT_BYTES = 16
_DERIVED_LABEL = b"authhero_encrypt env:v1 derived payload\x00"


def _malformed(what: str) -> DecryptionError:
    return DecryptionError(
        f"The stored value carries the env:v1: prefix but {what}; it was corrupted or was "
        "never written by this codec."
    )


@dataclass(frozen=True)
class Envelope:
    """One parsed ``env:v1`` value. Its repr names the provider and key id, never the bytes."""

    provider: str
    key_id: str
    wrapped: bytes = field(repr=False)
    payload: bytes = field(repr=False)
    salt: bytes | None = field(default=None, repr=False)
    """The per-value HKDF salt of a derived-key payload; ``None`` for the plain form."""


def is_envelope(value: object) -> bool:
    """True for a string carrying the ``env:v1:`` prefix (whether or not it would open)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def check_context(context: str) -> str:
    """``context`` if it can name a field in associated data; ``ValueError`` otherwise."""
    if not isinstance(context, str) or not context or "\x00" in context:
        raise ValueError("An envelope context must be a non-empty string without NUL characters.")
    return context


def _b64url(raw: bytes) -> str:
    return b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")


def _decode(text: str, what: str) -> bytes:
    """Canonical unpadded base64url only: one text for each byte string, so no flip goes unseen."""
    partial = len(text) % 4
    if not text or text[-1] not in _FINAL_CHARS[partial]:
        raise _malformed(f"its {what} is not canonical base64url text")
    try:
        return strict_b64decode(text.encode("ascii").translate(_FROM_URLSAFE) + _PADDING[partial])
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise _malformed(f"its {what} is not canonical base64url text") from exc


def parse(stored: str) -> Envelope:
    """Split ``stored`` into its fields, refusing anything but the canonical form.

    Raises :class:`DecryptionError` for a value without the prefix, a provider name outside
    :data:`PROVIDER_NAME`, a key id the provider could not have written, non-canonical
    base64url, or a wrapped DEK or payload of an impossible length. The message never repeats
    the text.
    """
    if not stored.startswith(PREFIX):
        raise DecryptionError("The value does not start with env:v1: and is not an envelope.")
    provider, sep, rest = stored[len(PREFIX) :].partition(":")
    if not sep or not PROVIDER_NAME.fullmatch(provider):
        raise _malformed("its provider name is not one a provider can have")
    head, sep, payload_text = rest.rpartition(":")
    key_id, sep2, wrapped_text = head.rpartition(":")
    if not sep or not sep2:
        raise _malformed("it lacks a field (provider:key id:wrapped key:payload)")
    if not _KEY_ID_RULES.get(provider, GENERIC_KEY_ID).fullmatch(key_id):
        raise _malformed(f"its key id is not one the {provider} provider writes")
    wrapped = _decode(wrapped_text, "wrapped data key")
    salt = None
    if payload_text.startswith(DERIVED_MARK):
        body = _decode(payload_text[len(DERIVED_MARK) :], "payload")
        salt, payload = body[:SALT_BYTES], body[SALT_BYTES:]
    else:
        payload = _decode(payload_text, "payload")
    if provider == LOCAL and len(wrapped) != LOCAL_WRAPPED_BYTES:
        raise _malformed(f"its wrapped data key is not {LOCAL_WRAPPED_BYTES} bytes")
    if len(wrapped) > MAX_WRAPPED_BYTES:
        raise _malformed(f"its wrapped data key is longer than {MAX_WRAPPED_BYTES} bytes")
    if len(payload) < IV_BYTES + TAG_BYTES:
        raise _malformed(
            f"its payload is truncated ({len(payload)} bytes, fewer than an IV and a tag need)"
        )
    return Envelope(provider, key_id, wrapped, payload, salt)


def compose(envelope: Envelope) -> str:
    """The stored text of ``envelope``; ``parse(compose(e)) == e`` for every valid envelope."""
    if not PROVIDER_NAME.fullmatch(envelope.provider):
        raise ValueError(f"{envelope.provider!r} cannot be stored as a provider name.")
    if not _KEY_ID_RULES.get(envelope.provider, GENERIC_KEY_ID).fullmatch(envelope.key_id):
        raise ValueError(f"Key id {envelope.key_id!r} cannot be stored for {envelope.provider}.")
    if envelope.salt is None:
        payload = _b64url(envelope.payload)
    elif len(envelope.salt) == SALT_BYTES:
        payload = DERIVED_MARK + _b64url(envelope.salt + envelope.payload)
    else:
        raise ValueError(f"A derived-key payload's salt is {SALT_BYTES} bytes.")
    return f"{PREFIX}{envelope.provider}:{envelope.key_id}:{_b64url(envelope.wrapped)}:{payload}"


def payload_aad(context: str, *, derived: bool = False) -> bytes:
    """The payload's associated data: the format label and the field's context."""
    return (_DERIVED_LABEL if derived else _PAYLOAD_LABEL) + context.encode("utf-8")


def payload_key(dek: bytes, salt: bytes | None, context: str) -> bytes:
    """The key a payload is sealed under: the DEK, or for a derived-key payload
    HKDF-SHA256(DEK, salt, info=label + context), one key per value."""
    if salt is None:
        return dek
    hkdf = HKDF(
        algorithm=SHA256(), length=DEK_BYTES, salt=salt, info=payload_aad(context, derived=True)
    )
    return hkdf.derive(dek)


def seal_payload(
    dek: bytes, plaintext: str, context: str, iv: bytes, salt: bytes | None = None
) -> bytes:
    """``iv || AES-256-GCM(payload_key(dek, salt), plaintext, aad=payload_aad(context))``."""
    if len(dek) != DEK_BYTES or len(iv) != IV_BYTES:
        raise ValueError(f"A DEK is {DEK_BYTES} bytes and an IV {IV_BYTES} bytes.")
    key = payload_key(dek, salt, context)
    aad = payload_aad(context, derived=salt is not None)
    return iv + AESGCM(key).encrypt(iv, utf8(plaintext), aad)


def open_payload(
    dek: bytes,
    payload: bytes,
    context: str,
    *,
    key_id: str | None = None,
    salt: bytes | None = None,
) -> str:
    """The plaintext sealed in ``payload``; :class:`DecryptionError` if it does not open."""
    try:
        key = payload_key(dek, salt, context)
        aad = payload_aad(context, derived=salt is not None)
        data = AESGCM(key).decrypt(payload[:IV_BYTES], payload[IV_BYTES:], aad)
    except InvalidTag as exc:
        raise DecryptionError(
            "The envelope's payload does not authenticate under its data key: it was tampered "
            "with, or was copied from another field or another value.",
            key_id=key_id,
        ) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:  # pragma: no cover - only a writer of foreign bytes
        raise DecryptionError(
            "The envelope opened but does not hold UTF-8 text.", key_id=key_id
        ) from exc
