"""``local``: the KEK is a key of the ``ENCRYPTION_KEY`` ring, so there is no new secret."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag

from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.envelope.format import IV_BYTES, LOCAL, LOCAL_WRAPPED_BYTES
from authhero_encrypt.exceptions import DecryptionError, MissingKeyError
from authhero_encrypt.keys import Key, KeyRing, get_keyring

__all__ = ["LocalKeyProvider"]

_LOCAL_WRAP_LABEL = b"authhero_encrypt env:v1 local wrap\x00"


def _local_aad(key_id: str, context: str) -> bytes:
    return _LOCAL_WRAP_LABEL + key_id.encode("ascii") + b"\x00" + context.encode("utf-8")


class LocalKeyProvider(KeyProvider):
    """The KEK is a key of the ``ENCRYPTION_KEY`` ring (``ring``, or the configured ring).

    New DEKs are wrapped with the active key (AES-256-GCM, a fresh IV, the key id and context as
    associated data); any key of the ring opens the DEKs it wrapped, found by id, or by trying
    each key for values wrapped by a key without an id. ``ring`` and ``random_bytes`` are test
    seams (the known-answer vectors); configured through the settings it takes no OPTIONS.
    """

    key_id_pattern = re.compile(r"[A-Za-z0-9_-]{0,64}")

    def __init__(
        self,
        name: str = LOCAL,
        *,
        ring: KeyRing | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        **options: Any,
    ) -> None:
        super().__init__(name, **options)
        self._ring = ring
        self._random = random_bytes

    @property
    def ring(self) -> KeyRing:
        if self._ring is not None:
            return self._ring
        return get_keyring()

    def _active(self) -> Key:
        active = self.ring.active
        if active is None:
            raise MissingKeyError(
                "ENCRYPTION_KEY is not set, so the local provider has no key to wrap data keys "
                "with. Set ENCRYPTION_KEY (openssl rand -base64 32)."
            )
        return active

    def enabled(self) -> bool:
        return self.ring.active is not None

    def configured_key_id(self) -> str | None:
        active = self.ring.active
        return None if active is None else (active.id or "")

    def active_key_id(self) -> str:
        return self._active().id or ""

    def is_active(self, key_id: str, wrapped: bytes, context: str) -> bool:
        active = self._active()
        if key_id or active.id:
            return key_id == (active.id or "")
        # A key without an id is named by nothing: only opening tells the active key apart from
        # an id-less fallback.
        try:
            active.aead.decrypt(wrapped[:IV_BYTES], wrapped[IV_BYTES:], _local_aad("", context))
        except InvalidTag:
            return False
        return True

    def wrap(self, dek: bytes, context: str) -> tuple[str, bytes]:
        key = self._active()
        key_id = key.id or ""
        iv = self._random(IV_BYTES)
        return key_id, iv + key.aead.encrypt(iv, dek, _local_aad(key_id, context))

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        ring = self.ring
        if key_id:
            key = ring.by_id.get(key_id)
            if key is None:
                raise MissingKeyError(
                    f"The data key was wrapped by ring key id {key_id!r}, which is not "
                    "configured. Add that key to ENCRYPTION_KEY_FALLBACKS as "
                    f'"{key_id}:BASE64KEY".',
                    key_id=key_id,
                )
            candidates: tuple[Key, ...] = (key,)
        else:
            candidates = ring.untagged
            if not candidates:
                raise MissingKeyError(
                    "This value is envelope-encrypted with the local provider but ENCRYPTION_KEY "
                    "is not set. Set ENCRYPTION_KEY (or ENCRYPTION_KEY_FALLBACKS) to the key "
                    "that wrote it."
                )
        if len(wrapped) == LOCAL_WRAPPED_BYTES:
            aad = _local_aad(key_id, context)
            for key in candidates:
                try:
                    return key.aead.decrypt(wrapped[:IV_BYTES], wrapped[IV_BYTES:], aad)
                except InvalidTag:
                    continue
        raise DecryptionError(
            "The wrapped data key does not open under "
            + (f"ring key id {key_id!r}" if key_id else "any configured key")
            + ": it was tampered with, copied from another field or row, or wrapped by a key "
            "that is not in ENCRYPTION_KEY or ENCRYPTION_KEY_FALLBACKS.",
            key_id=key_id or None,
        )
