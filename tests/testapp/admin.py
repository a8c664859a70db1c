from __future__ import annotations

from django.contrib import admin

from authhero_encrypt.admin import EncryptedFieldsAdminMixin
from tests.testapp.models import Secret, Swapped


@admin.register(Secret)
class SecretAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    """``notes`` is read-only: the change form shows its badge, never an input."""

    list_display = ["label", "token", "notes"]
    readonly_fields = ["notes"]


@admin.register(Swapped)
class SwappedAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    """``token`` is required (not blank, not null): clearing it must fail validation."""
