from __future__ import annotations

from django.contrib import admin

from authhero_encrypt.admin import EncryptedFieldsAdminMixin, JSONKeyColumn
from example_project.authhero.models import (
    AuthenticationMethod,
    Client,
    Connection,
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
class SigningKeyAdmin(admin.ModelAdmin):
    """Signing keys are not encrypted (see the model); the private key is still never shown."""

    list_display = ["kid", "type", "revoked_at"]
    search_fields = ["kid"]
    exclude = ["pkcs7"]
    readonly_fields = ["private_key"]

    @admin.display(description="Private key (pkcs7)")
    def private_key(self, obj: SigningKey) -> str:
        if not obj.pkcs7:
            return "empty"
        return (
            f"plaintext at rest, {len(obj.pkcs7)} characters; not shown. AuthHero leaves private "
            "keys to a future envelope-encryption scheme."
        )
