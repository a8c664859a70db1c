"""``ENCRYPTION_ENVELOPE_PROVIDERS``: the named KEK providers, parsed and loaded.

The setting is a dict in the style of Django's ``CACHES`` and ``STORAGES``: each name (what is
stored in ``env:v1:<name>:``) maps to ``{"BACKEND": dotted path, "OPTIONS": {...}}``. The backend
class is loaded with ``import_string`` and must subclass
:class:`~authhero_encrypt.envelope.backends.base.KeyProvider`. ``local`` (the key ring) is always
configured, so ``env:v1:local:`` values stay readable whatever the dict lists.

Without the setting, the providers are the two of earlier releases: ``local`` and ``aws-kms``,
the latter configured by the ``ENCRYPTION_KMS_*`` settings, which are deprecated: setting one
warns with :class:`~authhero_encrypt.deprecation.RemovedInAuthheroEncrypt1Warning`.
"""

from __future__ import annotations

import warnings
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from authhero_encrypt.conf import conf
from authhero_encrypt.deprecation import RemovedInAuthheroEncrypt1Warning
from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.envelope.format import AWS_KMS, LOCAL, PROVIDER_NAME

__all__ = [
    "AWS_KMS_BACKEND",
    "LEGACY_KMS_SETTINGS",
    "LOCAL_BACKEND",
    "VAULT_BACKEND",
    "BackendImportError",
    "BackendOptionsError",
    "load_backend",
    "provider_entries",
]

LOCAL_BACKEND = "authhero_encrypt.envelope.backends.local.LocalKeyProvider"
AWS_KMS_BACKEND = "authhero_encrypt.envelope.backends.aws_kms.AwsKmsKeyProvider"
VAULT_BACKEND = "authhero_encrypt.envelope.backends.vault.VaultTransitKeyProvider"
# The deprecated settings and the aws-kms OPTIONS each one becomes.
LEGACY_KMS_SETTINGS = {
    "ENCRYPTION_KMS_KEY_ID": "key_id",
    "ENCRYPTION_KMS_REGION": "region",
    "ENCRYPTION_KMS_ENDPOINT_URL": "endpoint_url",
    "ENCRYPTION_KMS_TIMEOUT": "timeout",
    "ENCRYPTION_KMS_MAX_ATTEMPTS": "max_attempts",
}
_SETTING = "ENCRYPTION_ENVELOPE_PROVIDERS"


class BackendImportError(ImproperlyConfigured):
    """A ``BACKEND`` that cannot be imported or is not a ``KeyProvider`` (check E307)."""


class BackendOptionsError(ImproperlyConfigured):
    """A backend refused its ``OPTIONS`` (check E308)."""


def legacy_settings() -> dict[str, Any]:
    """The deprecated ``ENCRYPTION_KMS_*`` settings the project sets."""
    return conf.explicitly_set(tuple(LEGACY_KMS_SETTINGS))


def legacy_message(legacy: dict[str, Any]) -> str:
    names = ", ".join(legacy)
    if conf.ENCRYPTION_ENVELOPE_PROVIDERS is not None:
        return (
            f"{names} {'is' if len(legacy) == 1 else 'are'} ignored because "
            f"{_SETTING} is set; configure aws-kms in its OPTIONS and remove "
            f"{'it' if len(legacy) == 1 else 'them'}."
        )
    return (
        f"{names} {'is' if len(legacy) == 1 else 'are'} deprecated and will stop working in "
        f"authhero_encrypt 1.0: move {'it' if len(legacy) == 1 else 'them'} to the OPTIONS of "
        f'an "aws-kms" entry of {_SETTING} (see docs/envelope.md).'
    )


def _entry(name: object, entry: object) -> dict[str, Any]:
    if not isinstance(name, str) or not PROVIDER_NAME.fullmatch(name):
        shown = repr(name)[:40] if isinstance(name, str) else type(name).__name__
        raise ImproperlyConfigured(
            f"{_SETTING} has an entry named {shown}: a provider name is stored in every value, "
            "so it must be 1 to 32 of a-z, 0-9, '_' and '-', starting with a letter."
        )
    if not isinstance(entry, dict) or not isinstance(entry.get("BACKEND"), str):
        raise ImproperlyConfigured(
            f'{_SETTING}["{name}"] must be a dict with a "BACKEND" dotted path '
            '(and optionally "OPTIONS").'
        )
    unknown = sorted(str(key) for key in entry if key not in ("BACKEND", "OPTIONS"))
    if unknown:
        raise ImproperlyConfigured(
            f'{_SETTING}["{name}"] has unknown keys {", ".join(unknown)}; only "BACKEND" and '
            '"OPTIONS" are read.'
        )
    options = entry.get("OPTIONS", {})
    if not isinstance(options, dict) or not all(isinstance(key, str) for key in options):
        raise ImproperlyConfigured(f'{_SETTING}["{name}"]["OPTIONS"] must be a dict.')
    return {"BACKEND": entry["BACKEND"], "OPTIONS": dict(options)}


def provider_entries(*, warn: bool = True) -> dict[str, dict[str, Any]]:
    """Every configured provider: name -> ``{"BACKEND", "OPTIONS"}``.

    ``ImproperlyConfigured`` for a malformed setting (check E306). With ``warn``, a deprecated
    ``ENCRYPTION_KMS_*`` setting in use warns (the system check says it as W302 instead).
    """
    value = conf.ENCRYPTION_ENVELOPE_PROVIDERS
    legacy = legacy_settings()
    if legacy and warn:
        warnings.warn(legacy_message(legacy), RemovedInAuthheroEncrypt1Warning, stacklevel=3)
    local = {"BACKEND": LOCAL_BACKEND, "OPTIONS": {}}
    if value is None:
        options = {LEGACY_KMS_SETTINGS[name]: setting for name, setting in legacy.items()}
        return {LOCAL: local, AWS_KMS: {"BACKEND": AWS_KMS_BACKEND, "OPTIONS": options}}
    if not isinstance(value, dict):
        raise ImproperlyConfigured(
            f"{_SETTING} must be a dict of provider name to "
            '{"BACKEND": dotted path, "OPTIONS": {...}}, not ' + type(value).__name__ + "."
        )
    entries = {name: _entry(name, entry) for name, entry in value.items()}
    entries.setdefault(LOCAL, local)
    return entries


def load_backend(name: str, entry: dict[str, Any]) -> KeyProvider:
    """The provider of entry ``name``: its ``BACKEND`` class called with ``name`` and the
    ``OPTIONS`` as keyword arguments (no server is called)."""
    path = entry["BACKEND"]
    try:
        backend = import_string(path)
    except ImportError as exc:
        raise BackendImportError(
            f'{_SETTING}["{name}"]["BACKEND"] {path!r} cannot be imported: {exc}'
        ) from exc
    if not (isinstance(backend, type) and issubclass(backend, KeyProvider)):
        raise BackendImportError(
            f'{_SETTING}["{name}"]["BACKEND"] {path!r} is not a subclass of '
            "authhero_encrypt.envelope.backends.base.KeyProvider."
        )
    try:
        return backend(name, **entry["OPTIONS"])
    except (TypeError, ValueError, ImproperlyConfigured) as exc:
        raise BackendOptionsError(
            f'{_SETTING}["{name}"] ({backend.__name__}) refused its OPTIONS: {exc}'
        ) from exc
