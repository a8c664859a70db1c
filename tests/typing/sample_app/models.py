"""A user's models as mypy with django-stubs sees them: each encrypted field, with and without null.

Only type-checked (tests/test_typing.py), never installed in the test suite's settings.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from authhero_encrypt.fields import (
    EncryptedCharField,
    EncryptedTextField,
    EnvelopeEncryptedTextField,
    JSONPathEncryptedField,
)


class Client(models.Model):
    client_secret = EncryptedCharField(max_length=255)
    backup_secret = EncryptedCharField(max_length=255, null=True)
    notes = EncryptedTextField()
    old_notes = EncryptedTextField(null=True, blank=True)
    private_key = EnvelopeEncryptedTextField()
    old_private_key = EnvelopeEncryptedTextField(null=True)
    # As JSONField: the document type is Any unless the field is annotated with one.
    options = JSONPathEncryptedField(encrypted_paths=["client_secret"], default=dict)
    old_options = JSONPathEncryptedField(encrypted_paths=["client_secret"], null=True)
    plain_options = models.JSONField(default=dict)
    typed_options: JSONPathEncryptedField[dict[str, Any], dict[str, Any]] = JSONPathEncryptedField(
        encrypted_paths=["*"], default=dict
    )
    typed_plain_options: models.JSONField[dict[str, Any], dict[str, Any]] = models.JSONField(
        default=dict
    )

    def __str__(self) -> str:
        return str(self.pk)
