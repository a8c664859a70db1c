"""Model fields that store their values encrypted at rest."""

from __future__ import annotations

from authhero_encrypt.fields.envelope import EnvelopeEncryptedTextField
from authhero_encrypt.fields.expressions import StoredText
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.fields.scalar import EncryptedCharField, EncryptedTextField

__all__ = [
    "EncryptedCharField",
    "EncryptedTextField",
    "EnvelopeEncryptedTextField",
    "JSONPathEncryptedField",
    "StoredText",
]
