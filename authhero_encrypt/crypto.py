"""The ``enc:v1`` codec: AES-256-GCM values stored as text, byte-compatible with AuthHero.

A stored value is ``enc:v1:`` followed by the unpadded base64url of ``iv (12 bytes) ||
ciphertext || GCM tag (16 bytes)``, no associated data, UTF-8 plaintext. AuthHero also writes a
keyed form, ``enc:v1:<key id>:<payload>``, and reads padded payloads; both are read here. A value
without the (case-sensitive) prefix is legacy plaintext and is returned unchanged, which is what
lets a table migrate lazily, one write at a time.

The functions that take a :class:`~authhero_encrypt.keys.KeyRing` are pure: no Django settings,
so they can be tested against the reference vectors alone. ``encrypt_value`` and
``decrypt_value`` use the ring built from settings.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.exceptions import InvalidTag

from authhero_encrypt.exceptions import DecryptionError, EncryptionError, MissingKeyError
from authhero_encrypt.keys import KEY_ID_MAX_LENGTH, Key, KeyRing, get_keyring

__all__ = [
    "PREFIX",
    "decrypt_value",
    "decrypt_with",
    "encrypt_value",
    "encrypt_with",
    "is_encrypted",
    "stored_key_id",
]

PREFIX = "enc:v1:"
IV_BYTES = 12
TAG_BYTES = 16
_PREFIX_LEN = len(PREFIX)
_PAYLOAD_RE = re.compile(r"[A-Za-z0-9_-]*")
_B64URL_VALUES = {
    char: value
    for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}
_KEY_ID_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{KEY_ID_MAX_LENGTH}}}")


def is_encrypted(value: object) -> bool:
    """True for a string carrying the ``enc:v1:`` prefix (whether or not it would decrypt)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt_with(key: Key, plaintext: str, *, iv: bytes | None = None, prefix: str = PREFIX) -> str:
    """Encrypt ``plaintext`` under ``key``; ``iv`` is a test seam for known-answer vectors.

    ``prefix`` is ``enc:v1:`` or the keyed ``enc:v1:<id>:``; see ``KeyRing.write_prefix``.
    """
    if iv is None:
        iv = os.urandom(IV_BYTES)
    elif len(iv) != IV_BYTES:
        raise ValueError(f"iv must be {IV_BYTES} bytes, got {len(iv)}")
    try:
        data = plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Lone surrogates cannot be stored as UTF-8; AuthHero would fail the same way.
        raise EncryptionError(
            "The value is not valid Unicode text (it holds a lone surrogate) and cannot be "
            "encrypted; clean it before saving."
        ) from exc
    token = base64.urlsafe_b64encode(iv + key.aead.encrypt(iv, data, None)).rstrip(b"=")
    return prefix + token.decode("ascii")


def encrypt_value(plaintext: str, ring: KeyRing | None = None) -> str:
    """Encrypt with the active key (and active key id) from settings."""
    ring = ring or get_keyring()
    key = ring.active
    if key is None:
        raise MissingKeyError(
            "ENCRYPTION_KEY is not set, so nothing can be encrypted. "
            "Set ENCRYPTION_KEY to the base64 of 32 random bytes (openssl rand -base64 32)."
        )
    return encrypt_with(key, plaintext, prefix=ring.write_prefix)


def _split(stored: str) -> tuple[str | None, str]:
    """Split a prefixed value into (key id or None, payload text)."""
    rest = stored[_PREFIX_LEN:]
    # base64url has no ':', so a ':' after the prefix can only end a key id. The empty id of
    # ``enc:v1::payload`` is read as untagged.
    key_id, sep, payload = rest.partition(":")
    if not sep:
        return None, rest
    return key_id or None, payload


def stored_key_id(stored: str) -> str | None:
    """The key id a prefixed value is tagged with, or ``None`` for an untagged one."""
    if not is_encrypted(stored):
        return None
    return _split(stored)[0]


def _canonical(text: str, padding: int) -> bool:
    """Whether ``text`` (plus ``padding`` '=') is the one base64url form of its bytes.

    Decoders ignore the unused low bits of a last partial group and excess padding, so without
    this several texts would open to the same value and a flipped bit could go unnoticed. Only
    what AuthHero writes (unpadded) or the same with exact padding is accepted.
    """
    partial = len(text) % 4
    if partial == 0:
        return padding == 0
    if partial == 1 or padding not in (0, 4 - partial):
        return False
    # 2 characters carry 1 byte (4 spare bits), 3 characters carry 2 bytes (2 spare bits).
    spare = 0b1111 if partial == 2 else 0b11
    return _B64URL_VALUES[text[-1]] & spare == 0


def _decode_payload(payload: str, key_id: str | None) -> bytes:
    text = payload.rstrip("=")
    if not _PAYLOAD_RE.fullmatch(text) or not _canonical(text, len(payload) - len(text)):
        raise DecryptionError(
            "The stored value carries the enc:v1: prefix but its payload is not base64url text; "
            "it was corrupted or was never written by this codec.",
            key_id=key_id,
        )
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:  # pragma: no cover - the pattern above rules this out
        raise DecryptionError("The stored payload is not base64url text.", key_id=key_id) from exc
    if len(raw) < IV_BYTES + TAG_BYTES:
        raise DecryptionError(
            f"The stored payload is truncated: {len(raw)} bytes, fewer than the "
            f"{IV_BYTES + TAG_BYTES} that an IV and a GCM tag need.",
            key_id=key_id,
        )
    return raw


def _open(key: Key, raw: bytes) -> bytes:
    return key.aead.decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None)


def decrypt_with(ring: KeyRing, stored: str) -> str:
    """Decrypt ``stored`` with the keys of ``ring``; legacy plaintext comes back unchanged."""
    if not stored.startswith(PREFIX):
        return stored
    key_id, payload = _split(stored)
    if key_id is not None and not _KEY_ID_RE.fullmatch(key_id):
        # Not a key id this codec could have written; the text is not echoed, since a value that
        # merely starts with the prefix may be a secret.
        raise DecryptionError(
            "The stored value carries the enc:v1: prefix but its key id is malformed; "
            "it was corrupted or was never written by this codec."
        )
    raw = _decode_payload(payload, key_id)
    if key_id is not None:
        key = ring.by_id.get(key_id)
        if key is None:
            if not ring.untagged:
                raise _missing_key(key_id)
            raise DecryptionError(
                f"The value was encrypted with key id {key_id!r}, which is not configured. "
                f'Add that key to ENCRYPTION_KEY_FALLBACKS as "{key_id}:BASE64KEY".',
                key_id=key_id,
            )
        try:
            data = _open(key, raw)
        except InvalidTag as exc:
            raise DecryptionError(
                f"The value does not authenticate under key id {key_id!r}: it was tampered with, "
                "or that id names a different key than the one that wrote it.",
                key_id=key_id,
            ) from exc
    else:
        if not ring.untagged:
            raise _missing_key(None)
        data = _try_untagged(ring, raw)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecryptionError(
            "The value decrypted but is not UTF-8 text; it was not written by this codec.",
            key_id=key_id,
        ) from exc


def _try_untagged(ring: KeyRing, raw: bytes) -> bytes:
    # The GCM tag tells which key is right, so trying each key in turn is safe.
    last: InvalidTag | None = None
    for key in ring.untagged:
        try:
            return _open(key, raw)
        except InvalidTag as exc:
            last = exc
    raise DecryptionError(
        f"The value does not authenticate under any of the {len(ring.untagged)} configured "
        "key(s): it was tampered with, or it was written with a key that is not in "
        "ENCRYPTION_KEY or ENCRYPTION_KEY_FALLBACKS.",
    ) from last


def _missing_key(key_id: str | None) -> MissingKeyError:
    wanted = f" (key id {key_id!r})" if key_id else ""
    return MissingKeyError(
        f"This value is encrypted{wanted} but ENCRYPTION_KEY is not set. Set ENCRYPTION_KEY "
        "(or ENCRYPTION_KEY_FALLBACKS) to the key that wrote it.",
        key_id=key_id,
    )


def decrypt_value(stored: str, ring: KeyRing | None = None) -> str:
    """Decrypt with the keys from settings; legacy plaintext comes back unchanged."""
    return decrypt_with(ring or get_keyring(), stored)
