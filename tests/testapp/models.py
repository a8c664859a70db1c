from __future__ import annotations

from django.db import models

from authhero_encrypt.fields import (
    EncryptedCharField,
    EncryptedTextField,
    EnvelopeEncryptedTextField,
    JSONPathEncryptedField,
)


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


class Connection(models.Model):
    """AuthHero's connections table: only the four secret paths of ``options`` are encrypted."""

    name = models.CharField(max_length=100)
    options = JSONPathEncryptedField(
        encrypted_paths=[
            "client_secret",
            "app_secret",
            "twilio_token",
            "configuration.client_secret",
        ],
        null=True,
        blank=True,
    )

    def __str__(self) -> str:
        return self.name


class EmailProvider(models.Model):
    """AuthHero's email_providers table: every top-level string of ``credentials``."""

    name = models.CharField(max_length=100)
    credentials = JSONPathEncryptedField(encrypted_paths=["*"], default=dict)

    def __str__(self) -> str:
        return self.name


class MigrationSource(models.Model):
    """AuthHero's migration_sources table."""

    name = models.CharField(max_length=100)
    credentials = JSONPathEncryptedField(encrypted_paths=["client_secret"], default=dict)

    def __str__(self) -> str:
        return self.name


class TenantCredential(models.Model):
    """A composite primary key (Django 5.2+): rows are paged through and named by both."""

    pk = models.CompositePrimaryKey("tenant", "name")
    tenant = models.CharField(max_length=20)
    name = models.CharField(max_length=40)
    secret = EncryptedCharField(max_length=100, null=True, blank=True)
    options = JSONPathEncryptedField(encrypted_paths=["client_secret"], null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.tenant}/{self.name}"


class UnmanagedClient(models.Model):
    """A table this project maps but does not manage, as one mapping AuthHero's own tables
    would; migration 0004 creates it with RunSQL."""

    id = models.IntegerField(primary_key=True)
    client_secret = EncryptedTextField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "testapp_unmanaged_client"

    def __str__(self) -> str:
        return f"UnmanagedClient {self.pk}"


class UnmanagedGhost(models.Model):
    """Unmanaged, and nothing creates its table: the commands say they leave it out."""

    client_secret = EncryptedTextField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "testapp_no_such_table"

    def __str__(self) -> str:
        return f"UnmanagedGhost {self.pk}"


class PrivateKey(models.Model):
    """A PEM private key (and an optional PKCS#7 bundle) sealed with envelope encryption."""

    name = models.CharField(max_length=100)
    pem = EnvelopeEncryptedTextField(null=True, blank=True)
    bundle = EnvelopeEncryptedTextField(
        null=True, blank=True, envelope_context="testapp.privatekey.bundle-v1"
    )

    def __str__(self) -> str:
        return self.name


class GuardAccount(models.Model):
    """A parent table with secrets, for multi-table updates and cascading deletes."""

    name = models.CharField(max_length=100)
    client_secret = EncryptedTextField(null=True, blank=True)
    options = JSONPathEncryptedField(encrypted_paths=["client_secret"], null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class GuardPremiumAccount(GuardAccount):
    """Multi-table inheritance: ``tier`` lives in this table, the secrets in the parent's."""

    tier = models.CharField(max_length=20, default="gold")
    api_key = EncryptedCharField(max_length=100, null=True, blank=True)


class GuardVaultItem(models.Model):
    """A child row with a secret, deleted in cascade with its account."""

    account = models.ForeignKey(GuardAccount, on_delete=models.CASCADE, related_name="items")
    secret = EncryptedCharField(max_length=100, null=True, blank=True)
    pem = EnvelopeEncryptedTextField(null=True, blank=True)

    def __str__(self) -> str:
        return f"GuardVaultItem {self.pk}"
