"""System checks for the envelope settings (E301-E305).

A project whose envelope settings cannot work must fail ``manage.py check`` at start-up, not on
the first read of a private key.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from authhero_encrypt.conf import conf
from authhero_encrypt.envelope.config import (
    parse_cache_size,
    parse_cache_ttl,
    parse_kms_key_id,
    parse_kms_options,
    parse_provider,
)
from authhero_encrypt.envelope.format import AWS_KMS

__all__ = ["check_envelope_settings"]


def _boto3_installed() -> bool:
    return importlib.util.find_spec("boto3") is not None


def check_envelope_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E301 provider, E302 boto3, E303 KMS key id, E304 other KMS settings, E305 cache."""
    errors: list[CheckMessage] = []
    provider = None
    try:
        provider = parse_provider(conf.ENCRYPTION_ENVELOPE_PROVIDER)
    except ImproperlyConfigured as exc:
        errors.append(
            Error(
                str(exc),
                hint='Remove the setting (default "local") or set it to "aws-kms".',
                id="authhero_encrypt.E301",
            )
        )
    for parse, value in (
        (parse_cache_size, conf.ENCRYPTION_ENVELOPE_CACHE_SIZE),
        (parse_cache_ttl, conf.ENCRYPTION_ENVELOPE_CACHE_TTL),
    ):
        try:
            parse(value)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="authhero_encrypt.E305"))
    if provider != AWS_KMS:
        return errors
    if not _boto3_installed():
        errors.append(
            Error(
                "ENCRYPTION_ENVELOPE_PROVIDER is 'aws-kms' but boto3 is not installed.",
                hint="pip install boto3 (what the package's aws extra installs; from a clone: "
                "pip install './authhero-encrypt[aws]').",
                id="authhero_encrypt.E302",
            )
        )
    try:
        key_id = parse_kms_key_id(conf.ENCRYPTION_KMS_KEY_ID)
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="authhero_encrypt.E303"))
    else:
        if key_id is None:
            errors.append(
                Error(
                    "ENCRYPTION_ENVELOPE_PROVIDER is 'aws-kms' but ENCRYPTION_KMS_KEY_ID is not "
                    "set, so no value can be written.",
                    hint="Set ENCRYPTION_KMS_KEY_ID to the ARN of a symmetric KMS key.",
                    id="authhero_encrypt.E303",
                )
            )
    try:
        parse_kms_options()
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="authhero_encrypt.E304"))
    return errors
