"""Envelope encryption: each value sealed under its own data key, wrapped by a KEK provider.

See ``docs/envelope.md`` for the ``env:v1`` format, the providers and the settings. The model
field is :class:`authhero_encrypt.fields.EnvelopeEncryptedTextField`.
"""

from __future__ import annotations

from authhero_encrypt.envelope.codec import open_value, seal
from authhero_encrypt.envelope.format import PREFIX, Envelope, is_envelope, parse
from authhero_encrypt.envelope.rotation import Kind, StoredStatus, classify, rewrap

__all__ = [
    "PREFIX",
    "Envelope",
    "Kind",
    "StoredStatus",
    "classify",
    "is_envelope",
    "open_value",
    "parse",
    "rewrap",
    "seal",
]
