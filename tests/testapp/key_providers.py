"""A KEK provider written the way a project would write its own: the test of the provider API.

It keeps its KEKs in OPTIONS (a real one would call its key service); ``unavailable=True``
stands for that service being down. Configured as::

    ENCRYPTION_ENVELOPE_PROVIDERS = {
        "inmemory": {
            "BACKEND": "tests.testapp.key_providers.InMemoryKeyProvider",
            "OPTIONS": {"keys": {"kek1": "<base64 of 32 bytes>"}, "active": "kek1"},
        },
    }
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.checks import CheckMessage, Warning
from django.core.exceptions import ImproperlyConfigured

from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.exceptions import DecryptionError, KeyProviderError, MissingKeyError

_LABEL = b"inmemory wrap\x00"


class InMemoryKeyProvider(KeyProvider):
    """KEKs by id from ``OPTIONS["keys"]``; new data keys are wrapped with ``OPTIONS["active"]``."""

    key_id_pattern = re.compile(r"[a-z0-9]{1,16}")

    def __init__(
        self,
        name: str,
        *,
        keys: dict[str, str] | None = None,
        active: str | None = None,
        unavailable: bool = False,
    ) -> None:
        super().__init__(name)
        if not isinstance(keys, dict):
            raise ImproperlyConfigured('"keys" must be a dict of key id to base64 key.')
        self.keys: dict[str, AESGCM] = {}
        for key_id, text in keys.items():
            if not self.key_id_valid(key_id):
                raise ImproperlyConfigured(f"Key id {key_id!r} is not 1-16 of a-z and 0-9.")
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, TypeError) as exc:
                raise ImproperlyConfigured(f"Key {key_id!r} is not base64.") from exc
            if len(raw) != 32:
                raise ImproperlyConfigured(f"Key {key_id!r} is not 32 bytes.")
            self.keys[key_id] = AESGCM(raw)
        self.active = active
        self.unavailable = unavailable

    def checks(self, *, active: bool = True) -> list[CheckMessage]:
        if active and self.active not in self.keys:
            return [Warning(f"{self.name}: no active key", id="testapp.W001")]
        return []

    def configured_key_id(self) -> str | None:
        return self.active

    def _service(self, key_id: str) -> AESGCM:
        if self.unavailable:
            raise KeyProviderError(
                f"The key service of provider {self.name!r} is unavailable.",
                key_id=key_id,
                provider=self.name,
                code="Unavailable",
            )
        key = self.keys.get(key_id)
        if key is None:
            raise MissingKeyError(f"KEK {key_id!r} is not configured.", key_id=key_id)
        return key

    def active_key_id(self) -> str:
        if self.active is None:
            raise MissingKeyError(f"Provider {self.name!r} has no active KEK.")
        return self.active

    def wrap(self, dek: bytes, context: str) -> tuple[str, bytes]:
        key_id = self.active_key_id()
        nonce = os.urandom(12)
        aad = _LABEL + context.encode()
        return key_id, nonce + self._service(key_id).encrypt(nonce, dek, aad)

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        key = self._service(key_id)
        try:
            return key.decrypt(wrapped[:12], wrapped[12:], _LABEL + context.encode())
        except InvalidTag as exc:
            raise DecryptionError(
                f"The data key does not open under KEK {key_id!r} in this context.",
                key_id=key_id,
            ) from exc


def options(*key_ids: str, active: str | None = None, **extra: Any) -> dict[str, Any]:
    """OPTIONS with a deterministic key for each of ``key_ids`` (the tests' fixtures)."""
    keys = {kid: base64.b64encode(kid.encode().ljust(32, b"\x00")).decode() for kid in key_ids}
    return {"keys": keys, "active": active or key_ids[-1], **extra}
