"""One model per (library, row kind), identical but for the field class of the secret.

Three row kinds: a two-column model (``id`` and the secret), the realistic row of an OAuth
client (eight columns, one of them secret) and AuthHero's connection ``options`` document.

The peers are imported defensively: a peer that is not installed, or that does not import on
this Django, leaves its models undefined and its reason in ``UNAVAILABLE``, so the run reports it
instead of failing.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from django.db import models

from authhero_encrypt.fields import EncryptedCharField, JSONPathEncryptedField
from benchmarks.suite.recipe import RecipeCharField, RecipeJSONField

FERNET = "django-fernet-encrypted-fields"
MODEL_FIELDS = "django-encrypted-model-fields"
UNAVAILABLE: dict[str, str] = {}

# AuthHero's connections table: these are the secret paths of ``options`` (the data fills two).
CONNECTION_SECRET_PATHS = [
    "client_secret",
    "app_secret",
    "twilio_token",
    "configuration.client_secret",
]
SECRET_LENGTH = 40


def _import_peer(distribution: str, module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        UNAVAILABLE[distribution] = (
            f"not importable ({exc}); install it with: .venv/bin/pip install -e '.[bench]'"
        )
    except Exception as exc:  # a peer broken on this Django fails in any way it likes
        UNAVAILABLE[distribution] = f"fails to import on this Django: {type(exc).__name__}: {exc}"
    return None


class PassThroughCharField(models.CharField):  # type: ignore[type-arg]
    """A ``CharField`` with a ``from_db_value`` that does nothing.

    Any field that converts what it reads pays for Django's converter machinery (a list per row,
    a call per value) before it does any work: this measures that floor.
    """

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return value


class BenchRow(models.Model):
    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class PlainSecret(BenchRow):
    token = models.CharField(max_length=100)


class PassThroughSecret(BenchRow):
    token = PassThroughCharField(max_length=100)


class RecipeSecret(BenchRow):
    token = RecipeCharField(max_length=200)


class OursSecret(BenchRow):
    token = EncryptedCharField(max_length=100)


class OAuthClient(BenchRow):
    """What an application row looks like: AuthHero's ``clients`` table, trimmed to 8 columns."""

    client_id = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    tenant_id = models.CharField(max_length=64)
    callbacks = models.JSONField(default=list)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        abstract = True


class PlainClient(OAuthClient):
    client_secret = models.CharField(max_length=100)


class PassThroughClient(OAuthClient):
    client_secret = PassThroughCharField(max_length=100)


class RecipeClient(OAuthClient):
    client_secret = RecipeCharField(max_length=200)


class OursClient(OAuthClient):
    client_secret = EncryptedCharField(max_length=100)


class PlainOptions(BenchRow):
    options = models.JSONField()


class RecipeOptions(BenchRow):
    options = RecipeJSONField(encrypted_paths=CONNECTION_SECRET_PATHS)


class OursOptions(BenchRow):
    options = JSONPathEncryptedField(encrypted_paths=CONNECTION_SECRET_PATHS)


# ``Any``: the peers ship no type hints.
fernet: Any = _import_peer(FERNET, "encrypted_fields.fields")
if fernet is not None:

    class FernetSecret(BenchRow):
        token = fernet.EncryptedCharField(max_length=100)

    class FernetClient(OAuthClient):
        client_secret = fernet.EncryptedCharField(max_length=100)

    class FernetOptions(BenchRow):
        # The peer has no per-path encryption: the whole document is one Fernet token.
        options = fernet.EncryptedJSONField()


model_fields: Any = _import_peer(MODEL_FIELDS, "encrypted_model_fields.fields")
if model_fields is not None:

    class ModelFieldsSecret(BenchRow):
        token = model_fields.EncryptedCharField(max_length=100)

    class ModelFieldsClient(OAuthClient):
        client_secret = model_fields.EncryptedCharField(max_length=100)
