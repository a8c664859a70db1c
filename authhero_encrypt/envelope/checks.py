"""System checks for the envelope settings (E301-E309, W302).

A project whose envelope settings cannot work must fail ``manage.py check`` at start-up, not on
the first read of a private key. Each configured provider is loaded (no server is called) and
asked for its own checks; the active one is checked as a writer, the others as readers.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured

from authhero_encrypt.conf import conf
from authhero_encrypt.envelope.config import (
    parse_cache_size,
    parse_cache_ttl,
    parse_provider,
    parse_write_cache,
)
from authhero_encrypt.envelope.registry import (
    BackendImportError,
    legacy_message,
    legacy_settings,
    load_backend,
    provider_entries,
)

__all__ = ["check_envelope_settings"]


def _cache_errors() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for parse, value in (
        (parse_cache_size, conf.ENCRYPTION_ENVELOPE_CACHE_SIZE),
        (parse_cache_ttl, conf.ENCRYPTION_ENVELOPE_CACHE_TTL),
        (parse_write_cache, conf.ENCRYPTION_ENVELOPE_WRITE_CACHE),
    ):
        try:
            parse(value)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="authhero_encrypt.E305"))
    return errors


def check_envelope_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E301 active provider, E302-E304 aws-kms, E305 cache, E306 the providers setting, E307 a
    backend that does not load, E308 OPTIONS a backend refuses, E309 a Vault backend without
    hvac, W302 deprecated ENCRYPTION_KMS_* settings."""
    errors = _cache_errors()
    legacy = legacy_settings()
    if legacy:
        errors.append(
            Warning(
                legacy_message(legacy),
                hint='ENCRYPTION_ENVELOPE_PROVIDERS = {"aws-kms": {"BACKEND": '
                '"authhero_encrypt.envelope.backends.aws_kms.AwsKmsKeyProvider", "OPTIONS": '
                '{"key_id": ..., "region": ...}}}',
                id="authhero_encrypt.W302",
            )
        )
    try:
        entries = provider_entries(warn=False)
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="authhero_encrypt.E306"))
        return errors
    active = None
    try:
        active = parse_provider(conf.ENCRYPTION_ENVELOPE_PROVIDER, entries)
    except ImproperlyConfigured as exc:
        errors.append(
            Error(
                str(exc),
                hint='Remove the setting (default "local") or add the entry it names.',
                id="authhero_encrypt.E301",
            )
        )
    explicit = conf.ENCRYPTION_ENVELOPE_PROVIDERS is not None
    for name, entry in entries.items():
        if not explicit and name != active:
            continue  # the implied entries of earlier releases: checked only once chosen
        try:
            provider = load_backend(name, entry)
        except BackendImportError as exc:
            errors.append(Error(str(exc), id="authhero_encrypt.E307"))
            continue
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="authhero_encrypt.E308"))
            continue
        errors.extend(provider.checks(active=name == active))
    return errors
