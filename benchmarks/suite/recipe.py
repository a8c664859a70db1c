"""The bare recipe: what any AES-GCM + base64url code must do, and nothing else.

One prebuilt ``AESGCM``, ``os.urandom(12)`` for each IV, base64url, the ``enc:v1:`` prefix: no
key ring, no key ids, no canonical-form or length checks, no error context. ``Floor`` is the
recipe as one writes it with the ``base64`` module; ``BinasciiFloor`` skips that module's
wrappers. ``RecipeCharField`` and ``RecipeJSONField`` put the recipe in a Django field, so the
ORM cases can say how far authhero_encrypt is above the least any encrypted field can cost.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import models

from authhero_encrypt.keys import load_encryption_key

IV_BYTES = 12
PREFIX = "enc:v1:"


class Floor:
    def __init__(self, secret: bytes) -> None:
        self.aead = AESGCM(secret)

    def encrypt(self, text: str) -> str:
        iv = os.urandom(IV_BYTES)
        token = base64.urlsafe_b64encode(iv + self.aead.encrypt(iv, text.encode(), None))
        return "enc:v1:" + token.rstrip(b"=").decode()

    def decrypt(self, stored: str) -> str:
        payload = stored[7:]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        return self.aead.decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None).decode()


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = ("", "===", "==", "=")


class BinasciiFloor(Floor):
    def encrypt(self, text: str) -> str:
        iv = os.urandom(IV_BYTES)
        raw = iv + self.aead.encrypt(iv, text.encode(), None)
        token = binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=")
        return "enc:v1:" + token.decode()

    def decrypt(self, stored: str) -> str:
        payload = stored[7:]
        text = (payload + _PADDING[len(payload) % 4]).encode().translate(_TO_STANDARD)
        raw = binascii.a2b_base64(text)
        return self.aead.decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None).decode()


_floor: Floor | None = None


def floor() -> Floor:
    """The one prebuilt recipe of the run (the benchmark's key never changes)."""
    global _floor
    if _floor is None:
        _floor = Floor(load_encryption_key(settings.ENCRYPTION_KEY))
    return _floor


class RecipeCharField(models.CharField):  # type: ignore[type-arg]
    """A ``CharField`` that stores the recipe's ciphertext: the least an encrypted field costs."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else floor().encrypt(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else (_floor or floor()).decrypt(value)


class RecipeJSONField(models.JSONField):  # type: ignore[type-arg]
    """A ``JSONField`` whose declared string leaves are stored as the recipe's ciphertext.

    Reading is Django's parse plus one decryption per declared leaf present; nothing is
    validated or walked beyond the declared paths (no wildcards, no error context).
    """

    def __init__(self, *args: Any, encrypted_paths: Sequence[str] = (), **kwargs: Any) -> None:
        self.leaves = [tuple(path.split(".")) for path in encrypted_paths]
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["encrypted_paths"] = [".".join(leaf) for leaf in self.leaves]
        return name, path, args, kwargs

    def _apply(self, document: Any, fn: Any, *, copy: bool) -> Any:
        if copy and isinstance(document, dict):
            document = dict(document)
        for *parents, leaf in self.leaves:
            node = document
            for key in parents:
                child = node.get(key) if isinstance(node, dict) else None
                if copy and isinstance(child, dict):
                    child = node[key] = dict(child)
                node = child
            if isinstance(node, dict):
                value = node.get(leaf)
                if isinstance(value, str):
                    node[leaf] = fn(value)
        return document

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return super().get_prep_value(self._apply(value, floor().encrypt, copy=True))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        document = super().from_db_value(value, expression, connection)
        return self._apply(document, (_floor or floor()).decrypt, copy=False)
