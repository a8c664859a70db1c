"""The AuthHero tables of the encryption-at-rest table, with the same fields encrypted.

Only the credential fields AuthHero encrypts are encrypted here (``enc:v1``); identifiers such as
``client_id`` stay plaintext so they can be searched, filtered and shown. The private keys
AuthHero leaves in plaintext (``keys.pkcs7``, ``dkim_private_key``) are envelope-encrypted
(``env:v1``): the "future iteration" its document leaves open.
"""

from __future__ import annotations

from django.db import models

from authhero_encrypt.fields import (
    EncryptedCharField,
    EnvelopeEncryptedTextField,
    JSONPathEncryptedField,
)

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
    """AuthHero's ``keys`` (JWT signing keys): ``pkcs7`` is envelope-encrypted.

    AuthHero leaves private keys (``keys.pkcs7`` and ``dkim_private_key``) out of ``enc:v1:``
    because they are "better protected with envelope encryption", left for a future iteration.
    This is that iteration: each private key is sealed under a data key of its own, wrapped by
    the key ring's active key (``local``) or an AWS KMS key (``aws-kms``); see docs/envelope.md.
    AuthHero cannot read ``env:v1``, so this works only because the example project does not
    share its database with AuthHero (see ``SILENCED_SYSTEM_CHECKS`` in its settings).
    """

    kid = models.CharField(max_length=191, unique=True)
    type = models.CharField(max_length=32, default="jwt_signing")
    cert = models.TextField(help_text="The public certificate (PEM).")
    pkcs7 = EnvelopeEncryptedTextField(help_text="The private key (PEM), envelope-encrypted.")
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.kid


class CustomDomain(models.Model):
    """A tenant's custom domain, with the DKIM private key its mail is signed with.

    AuthHero holds ``dkim_private_key`` beside its custom domains and email providers, in
    plaintext; here it is envelope-encrypted, as ``SigningKey.pkcs7`` is. A domain that does
    not send mail has no key.
    """

    domain = models.CharField(max_length=255, unique=True)
    dkim_selector = models.CharField(max_length=63, default="authhero")
    dkim_private_key = EnvelopeEncryptedTextField(
        null=True, blank=True, help_text="The DKIM private key (PEM), envelope-encrypted."
    )

    def __str__(self) -> str:
        return self.domain
