from __future__ import annotations

from django.db import models

from authhero_encrypt.fields import EncryptedCharField, EncryptedTextField


class Secret(models.Model):
    """One of each scalar field, both nullable, beside a plaintext label."""

    label = models.CharField(max_length=50, blank=True)
    token = EncryptedCharField(max_length=100, null=True, blank=True)
    notes = EncryptedTextField(null=True, blank=True)

    def __str__(self) -> str:
        return self.label


class Swapped(models.Model):
    """Started life with a plain CharField (0001); migration 0002 makes it encrypted."""

    token = EncryptedCharField(max_length=40)

    def __str__(self) -> str:
        return f"Swapped {self.pk}"
