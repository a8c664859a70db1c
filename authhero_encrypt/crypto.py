"""The ``enc:v1`` codec: AES-256-GCM values stored as text, byte-compatible with AuthHero.

A stored value is ``enc:v1:`` followed by the unpadded base64url of ``iv (12 bytes) ||
ciphertext || GCM tag (16 bytes)``, no associated data, UTF-8 plaintext. AuthHero also writes a
keyed form, ``enc:v1:<key id>:<payload>``, and reads padded payloads; both are read here, and
padded payloads are written on request (``KeyRing.pad_payload``) for AuthHero 5.13 to 8.22.0,
whose decoder requires the padding. A value
without the (case-sensitive) prefix is legacy plaintext and is returned unchanged, which is what
lets a table migrate lazily, one write at a time.

The functions that take a :class:`~authhero_encrypt.keys.KeyRing` are pure: no Django settings,
so they can be tested against the reference vectors alone. ``encrypt_value`` and
``decrypt_value`` use the ring built from settings.
"""

from __future__ import annotations

import binascii
import os
import sys
from binascii import a2b_base64, b2a_base64

from cryptography.exceptions import InvalidTag

from authhero_encrypt.exceptions import DecryptionError, EncryptionError, MissingKeyError
from authhero_encrypt.keys import Key, KeyRing, get_keyring

__all__ = [
    "PREFIX",
    "decrypt_value",
    "decrypt_with",
    "encrypt_value",
    "encrypt_with",
    "is_encrypted",
    "parse_stored",
    "stored_key_id",
]

PREFIX = "enc:v1:"
IV_BYTES = 12
TAG_BYTES = 16
_PREFIX_LEN = len(PREFIX)
_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_KEY_ID_CHARS = frozenset(_URLSAFE)

# The codec runs once per value read or written, so it sticks to ``binascii`` and
# ``bytes.translate`` (the ``base64`` module's url-safe functions are Python wrappers around the
# same calls) and to set and tuple lookups instead of regular expressions.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# '+', '/' and '=' are not base64url payload characters: mapped to '*', which the strict decoder
# refuses like any other stray byte. Padding is added after this translation.
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/***")
# The '=' a decoder needs for each length mod 4; 1 never occurs in base64.
_PADDING = (b"", b"", b"==", b"=")
# A last partial group of 2 (3) characters carries 4 (2) bits more than its 1 (2) bytes: a
# decoder ignores them, so several texts would open to the same bytes and a flipped bit could go
# unnoticed. Only the canonical form, with those bits zero, is accepted; indexed by length mod 4.
_FINAL_CHARS: tuple[frozenset[str], ...] = (
    frozenset(_URLSAFE),
    frozenset(),
    frozenset(c for i, c in enumerate(_URLSAFE) if i & 0b1111 == 0),
    frozenset(c for i, c in enumerate(_URLSAFE) if i & 0b11 == 0),
)


# Python 3.11's decoder has a strict mode, called directly on the hot path (a ``partial`` with a
# keyword costs a dict merge per call, about as much as the decoding itself).
_HAS_STRICT_MODE = sys.version_info >= (3, 11)
_STANDARD_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _strict_b64decode_310(data: bytes) -> bytes:  # pragma: no cover - Python 3.10 (tox)
    # Python 3.10's decoder has no strict mode and skips stray bytes (such as the '*' that
    # stands for a character foreign to base64url), so refuse them first.
    if not _STANDARD_ALPHABET.issuperset(data):
        raise binascii.Error("a character outside the base64 alphabet")
    return a2b_base64(data)


def strict_b64decode(data: bytes) -> bytes:
    """Decode standard base64, refusing any byte outside its alphabet, on every Python."""
    if _HAS_STRICT_MODE:
        return a2b_base64(data, strict_mode=True)
    return _strict_b64decode_310(data)  # pragma: no cover - Python 3.10 (tox)


def is_encrypted(value: object) -> bool:
    """True for a string carrying the ``enc:v1:`` prefix (whether or not it would decrypt)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def utf8(plaintext: str) -> bytes:
    """``plaintext`` as UTF-8, or ``EncryptionError`` for text that has no UTF-8 form."""
    try:
        return plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Lone surrogates cannot be stored as UTF-8; AuthHero would fail the same way.
        raise EncryptionError(
            "The value is not valid Unicode text (it holds a lone surrogate) and cannot be "
            "encrypted; clean it before saving."
        ) from exc


def _seal(key: Key, prefix: str, plaintext: str, iv: bytes, pad: bool) -> str:
    token = b2a_base64(iv + key.aead.encrypt(iv, utf8(plaintext), None), newline=False)
    token = token.translate(_TO_URLSAFE)
    if pad:
        return prefix + token.decode("ascii")
    return prefix + token.rstrip(b"=").decode("ascii")


def encrypt_with(
    key: Key, plaintext: str, *, iv: bytes | None = None, prefix: str = PREFIX, pad: bool = False
) -> str:
    """Encrypt ``plaintext`` under ``key``; ``iv`` is a test seam for known-answer vectors.

    ``prefix`` is ``enc:v1:`` or the keyed ``enc:v1:<id>:``; see ``KeyRing.write_prefix``.
    ``pad`` keeps the base64 ``=`` padding; see ``KeyRing.pad_payload``.
    """
    if iv is None:
        iv = os.urandom(IV_BYTES)
    elif len(iv) != IV_BYTES:
        raise ValueError(f"iv must be {IV_BYTES} bytes, got {len(iv)}")
    return _seal(key, prefix, plaintext, iv, pad)


def encrypt_value(plaintext: str, ring: KeyRing | None = None) -> str:
    """Encrypt with the active key (and active key id) from settings."""
    if ring is None:
        ring = get_keyring()
    key = ring.active
    if key is None:
        raise MissingKeyError(
            "ENCRYPTION_KEY is not set, so nothing can be encrypted. "
            "Set ENCRYPTION_KEY to the base64 of 32 random bytes (openssl rand -base64 32)."
        )
    # A fresh random IV for every value, from the OS each time: a buffered pool would be cheaper
    # but could hand the same IV to two threads or to both sides of a fork, which breaks GCM.
    return _seal(key, ring.write_prefix, plaintext, os.urandom(IV_BYTES), ring.pad_payload)


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


def _checked_key_id(key_id: str | None) -> str | None:
    # Any length is read, as AuthHero writes ids of any length; only ENCRYPTION_KEY_ID (what
    # this app writes) is limited, since the column widths are sized for it.
    if key_id is not None and not _KEY_ID_CHARS.issuperset(key_id):
        # Not a key id AuthHero could have written; the text is not echoed, since a value that
        # merely starts with the prefix may be a secret.
        raise DecryptionError(
            "The stored value carries the enc:v1: prefix but its key id is malformed; "
            "it was corrupted or was never written by this codec."
        )
    return key_id


def _not_base64url(key_id: str | None) -> DecryptionError:
    return DecryptionError(
        "The stored value carries the enc:v1: prefix but its payload is not base64url text; "
        "it was corrupted or was never written by this codec.",
        key_id=key_id,
    )


def _unpadded(payload: str, key_id: str | None) -> tuple[str, int]:
    """``payload`` and its length mod 4 once any '=' is dropped, for a canonical payload only.

    Canonical is what AuthHero writes (unpadded) or the same with exactly the padding a padded
    writer adds, and a last character whose unused bits are zero.
    """
    if not payload:
        return payload, 0  # found truncated next
    text = payload.rstrip("=")
    partial = len(text) % 4
    padding = len(payload) - len(text)
    if (padding and (partial < 2 or padding != 4 - partial)) or (
        text[-1:] not in _FINAL_CHARS[partial]
    ):
        raise _not_base64url(key_id)
    return text, partial


def _truncated(size: int, key_id: str | None) -> DecryptionError:
    return DecryptionError(
        f"The stored payload is truncated: {size} bytes, fewer than the "
        f"{IV_BYTES + TAG_BYTES} that an IV and a GCM tag need.",
        key_id=key_id,
    )


def parse_stored(stored: str) -> tuple[str | None, bytes]:
    """``(key id or None, iv || ciphertext || tag)`` of a well-formed ``enc:v1:`` value.

    Nothing is decrypted. Raises :class:`DecryptionError` (which never repeats the value) for
    anything else, including text without the prefix: a report that must not echo what follows
    the prefix (a badge, a count by key id) shows a key id only when this accepts the value.
    """
    if not stored.startswith(PREFIX):
        raise DecryptionError("The value does not carry the enc:v1: prefix.")
    return _parse(stored)


def _parse(stored: str) -> tuple[str | None, bytes]:
    # The hot path of every read: parsing and canonical base64url decoding; anything unusual is
    # handed to the helpers above.
    key_id: str | None = None
    payload = stored[_PREFIX_LEN:]
    if ":" in payload:
        key_id, payload = _split(stored)
        key_id = _checked_key_id(key_id)
    partial = len(payload) % 4
    if payload[-1:] not in _FINAL_CHARS[partial]:
        # Padding, an empty payload, a length of 1 mod 4 (no character ends that), a stray or
        # non-canonical last character: rarely seen, so checked off the hot path.
        payload, partial = _unpadded(payload, key_id)
    try:
        text = payload.encode("ascii").translate(_FROM_URLSAFE) + _PADDING[partial]
        if _HAS_STRICT_MODE:
            raw = a2b_base64(text, strict_mode=True)
        else:  # pragma: no cover - Python 3.10 (tox)
            raw = _strict_b64decode_310(text)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise _not_base64url(key_id) from exc
    if len(raw) < IV_BYTES + TAG_BYTES:
        raise _truncated(len(raw), key_id)
    return key_id, raw


def decrypt_with(ring: KeyRing, stored: str) -> str:
    """Decrypt ``stored`` with the keys of ``ring``; legacy plaintext comes back unchanged."""
    if not stored.startswith(PREFIX):
        return stored
    key_id, raw = _parse(stored)
    if key_id is None:
        # The usual case: an untagged value, written under the active key.
        opener = ring.open_first
        if opener is None:
            raise _missing_key(None)
        try:
            data = opener(raw[:IV_BYTES], raw[IV_BYTES:], None)
        except InvalidTag as exc:
            data = _try_fallbacks(ring, raw, exc)
    else:
        data = _open_tagged(ring, key_id, raw)
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise DecryptionError(
            "The value decrypted but is not UTF-8 text; it was not written by this codec.",
            key_id=key_id,
        ) from exc


def _open_tagged(ring: KeyRing, key_id: str, raw: bytes) -> bytes:
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
        return key.aead.decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None)
    except InvalidTag as exc:
        raise DecryptionError(
            f"The value does not authenticate under key id {key_id!r}: it was tampered with, "
            "or that id names a different key than the one that wrote it.",
            key_id=key_id,
        ) from exc


def _try_fallbacks(ring: KeyRing, raw: bytes, last: InvalidTag) -> bytes:
    # The first untagged key failed. The GCM tag tells which key is right, so trying each of the
    # others in turn is safe.
    for key in ring.untagged[1:]:
        try:
            return key.aead.decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None)
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
    return decrypt_with(get_keyring() if ring is None else ring, stored)
