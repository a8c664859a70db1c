from __future__ import annotations

from django.db import models

from authhero_encrypt.fields import EncryptedCharField


class MigrateRow(models.Model):
    """One encrypted column, as a credentials table that predates encryption would have."""

    token = EncryptedCharField(max_length=64)

    class Meta:
        app_label = "migrate_app"
        db_table = "migrate_benchmark_row"

    def __str__(self) -> str:
        return f"MigrateRow {self.pk}"
