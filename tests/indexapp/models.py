"""Models with blind indexes (authhero_encrypt.blind_index), for tests/test_blind_index*.py."""

from __future__ import annotations

from django.db import models

from authhero_encrypt.blind_index import BlindIndexField
from authhero_encrypt.fields import EncryptedCharField, EncryptedTextField, JSONPathEncryptedField


class Member(models.Model):
    """An email unique after casefolding, a phone searched by its digits, a token as stored."""

    name = models.CharField(max_length=50, default="")
    email = EncryptedCharField(max_length=254, null=True, blank=True)
    email_index = BlindIndexField("email", normalize=["strip", "casefold"], unique=True)
    phone = EncryptedCharField(max_length=40, null=True, blank=True)
    phone_index = BlindIndexField("phone", normalize="digits")
    token = EncryptedTextField(null=True, blank=True)
    token_index = BlindIndexField("token")

    def __str__(self) -> str:
        return self.name


class MemberCopy(models.Model):
    """The plaintext twin of Member: the answers its queries must give."""

    name = models.CharField(max_length=50, default="")
    # NULL as in Member: the copy must hold exactly what Member holds.
    email = models.CharField(max_length=254, null=True, blank=True)  # noqa: DJ001
    phone = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001
    token = models.TextField(null=True, blank=True)  # noqa: DJ001

    def __str__(self) -> str:
        return self.name


class Connection(models.Model):
    """A JSON document whose ``client_secret`` is encrypted and searchable."""

    name = models.CharField(max_length=50, default="")
    options = JSONPathEncryptedField(encrypted_paths=["client_secret"], default=dict)
    secret_index = BlindIndexField("options__client_secret")

    def __str__(self) -> str:
        return self.name


class ConnectionCopy(models.Model):
    """The plaintext twin of Connection (tests/test_blind_index_json.py)."""

    name = models.CharField(max_length=50, default="")
    options = models.JSONField(default=dict)

    def __str__(self) -> str:
        return self.name


class Provider(models.Model):
    """A nullable document: a nested secret indexed case-insensitively, a unique top one."""

    name = models.CharField(max_length=50, default="")
    settings = JSONPathEncryptedField(
        encrypted_paths=["client_secret", "oauth.client_secret"], null=True, blank=True
    )
    oauth_index = BlindIndexField("settings__oauth__client_secret", normalize=["strip", "casefold"])
    secret_index = BlindIndexField("settings__client_secret", unique=True)

    def __str__(self) -> str:
        return self.name


class ProviderCopy(models.Model):
    """The plaintext twin of Provider."""

    name = models.CharField(max_length=50, default="")
    settings = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class Badge(models.Model):
    """Truncated tags (tests/test_blind_index_truncated.py): false positives are removed."""

    name = models.CharField(max_length=50, default="")
    code = EncryptedCharField(max_length=100, null=True, blank=True)
    code_index = BlindIndexField("code", normalize="casefold", bits=32)
    options = JSONPathEncryptedField(encrypted_paths=["client_secret"], default=dict)
    secret_index = BlindIndexField("options__client_secret", bits=32)

    def __str__(self) -> str:
        return self.name


class BadgeCopy(models.Model):
    """The plaintext twin of Badge."""

    name = models.CharField(max_length=50, default="")
    code = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    options = models.JSONField(default=dict)

    def __str__(self) -> str:
        return self.name


class Pin(models.Model):
    """A low-entropy value behind a slow (PBKDF2) index; few iterations keep the tests fast."""

    name = models.CharField(max_length=50, default="")
    pin = EncryptedCharField(max_length=20, null=True, blank=True)
    pin_index = BlindIndexField("pin", normalize="digits", slow=1000)
    fast_index = BlindIndexField("pin", normalize="digits")

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    """An email unique per tenant (``unique_with``): the same email may sign up in two tenants."""

    tenant = models.CharField(max_length=20)
    email = EncryptedCharField(max_length=254, null=True, blank=True)
    email_index = BlindIndexField("email", normalize=["strip", "casefold"], unique_with=["tenant"])

    def __str__(self) -> str:
        return self.tenant
