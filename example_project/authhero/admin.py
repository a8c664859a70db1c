from __future__ import annotations

from django.contrib import admin

from authhero_encrypt.admin import EncryptedFieldsAdminMixin, JSONKeyColumn
from example_project.authhero.models import (
    AuthenticationMethod,
    Client,
    Connection,
    CustomDomain,
    EmailProvider,
    MigrationSource,
    SigningKey,
)


@admin.register(Client)
class ClientAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    list_display = ["client_id", "name", "client_secret"]
    search_fields = ["client_id", "name"]
    ordering = ["client_id"]


@admin.register(Connection)
class ConnectionAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "strategy",
        JSONKeyColumn("options", "client_id", description="options.client_id"),
        "options",
    ]
    search_fields = ["name", "options__client_id"]
    list_filter = ["strategy"]
    ordering = ["name"]


@admin.register(EmailProvider)
class EmailProviderAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    list_display = ["name", "default_from_address", "enabled", "credentials"]
    search_fields = ["name", "default_from_address"]
    list_filter = ["enabled"]


@admin.register(AuthenticationMethod)
class AuthenticationMethodAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    list_display = ["user_id", "type", "confirmed", "totp_secret"]
    search_fields = ["user_id"]
    list_filter = ["type", "confirmed"]


@admin.register(MigrationSource)
class MigrationSourceAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "provider",
        JSONKeyColumn("credentials", "domain", description="credentials.domain"),
        JSONKeyColumn("credentials", "client_id", description="credentials.client_id"),
        "credentials",
    ]
    search_fields = ["name", "credentials__client_id", "credentials__domain"]


@admin.register(SigningKey)
class SigningKeyAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    """``pkcs7`` is envelope-encrypted: its badge names the KEK, the form takes a new key only."""

    list_display = ["kid", "type", "revoked_at", "pkcs7"]
    search_fields = ["kid"]


@admin.register(CustomDomain)
class CustomDomainAdmin(EncryptedFieldsAdminMixin, admin.ModelAdmin):
    """``dkim_private_key`` is envelope-encrypted, shown and edited as ``SigningKey.pkcs7``."""

    list_display = ["domain", "dkim_selector", "dkim_private_key"]
    search_fields = ["domain"]
