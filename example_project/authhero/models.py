"""The AuthHero tables of the encryption-at-rest table, with the same fields encrypted.

Only the credential fields AuthHero encrypts are encrypted here; identifiers such as
``client_id`` stay plaintext so they can be searched, filtered and shown.
"""

from __future__ import annotations

from django.db import models

from authhero_encrypt.fields import EncryptedCharField, JSONPathEncryptedField

# The four secret paths AuthHero encrypts in connections.options.
CONNECTION_SECRET_PATHS = [
    "client_secret",
    "app_secret",
    "twilio_token",
    "configuration.client_secret",
]


class Client(models.Model):
    """AuthHero's ``clients``: ``client_secret`` is encrypted, ``client_id`` is not."""

    client_id = models.CharField(max_length=191, unique=True)
    name = models.CharField(max_length=255)
    # Public clients (single-page and native apps) have no secret.
    client_secret = EncryptedCharField(max_length=255, null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"


class Connection(models.Model):
    """AuthHero's ``connections``: four paths of ``options`` are encrypted, the rest is JSON.

    ``options.client_id`` (the identity provider's id for this tenant) stays plaintext, so it
    can be searched and listed.
    """

    name = models.CharField(max_length=255, unique=True)
    strategy = models.CharField(max_length=64)
    options = JSONPathEncryptedField(
        encrypted_paths=CONNECTION_SECRET_PATHS, default=dict, blank=True
    )

    def __str__(self) -> str:
        return self.name


class EmailProvider(models.Model):
    """AuthHero's ``email_providers``: every string value of ``credentials`` is encrypted."""

    name = models.CharField(max_length=64, unique=True, help_text="mailgun, ses, smtp, …")
    default_from_address = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True)
    credentials = JSONPathEncryptedField(encrypted_paths=["*"], default=dict, blank=True)

    def __str__(self) -> str:
        return self.name


class AuthenticationMethod(models.Model):
    """AuthHero's ``authentication_methods``: enrolled factors; ``totp_secret`` is encrypted."""

    user_id = models.CharField(max_length=255, db_index=True)
    type = models.CharField(max_length=32, default="totp")
    totp_secret = EncryptedCharField(max_length=255, null=True, blank=True)
    confirmed = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.type} for {self.user_id}"


class MigrationSource(models.Model):
    """AuthHero's ``migration_sources``: only ``credentials.client_secret`` is encrypted."""

    name = models.CharField(max_length=255, unique=True)
    provider = models.CharField(max_length=64, default="auth0")
    connection = models.CharField(max_length=255, blank=True)
    credentials = JSONPathEncryptedField(
        encrypted_paths=["client_secret"], default=dict, blank=True
    )

    def __str__(self) -> str:
        return self.name


class SigningKey(models.Model):
    """AuthHero's ``keys`` (JWT signing keys), deliberately *not* encrypted by this scheme.

    ``pkcs7`` holds a private key, yet it is stored as plaintext on purpose: AuthHero leaves
    private keys (``keys.pkcs7`` and ``dkim_private_key``) out of ``enc:v1:`` because they are
    better protected by envelope encryption, planned for a future iteration. This demo mirrors
    that, and the admin never shows the value.
    """

    kid = models.CharField(max_length=191, unique=True)
    type = models.CharField(max_length=32, default="jwt_signing")
    cert = models.TextField(help_text="The public certificate (PEM).")
    pkcs7 = models.TextField(help_text="The private key (PEM); plaintext at rest, see above.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.kid
