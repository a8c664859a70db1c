from __future__ import annotations

from django.db import models

from authhero_encrypt.fields import EncryptedCharField, JSONPathEncryptedField


class StatusRow(models.Model):
    """One scalar and one JSON field with two fixed paths, as AuthHero's tables have."""

    token = EncryptedCharField(max_length=64, null=True)
    options = JSONPathEncryptedField(
        encrypted_paths=["client_secret", "configuration.client_secret"], null=True
    )

    class Meta:
        app_label = "status_app"
        db_table = "status_benchmark_row"

    def __str__(self) -> str:
        return f"StatusRow {self.pk}"
