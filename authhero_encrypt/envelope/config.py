"""The envelope settings: validated, turned into providers, cached until a setting changes.

Every ``ENCRYPTION_ENVELOPE_*`` and ``ENCRYPTION_KMS_*`` setting is read through
:mod:`authhero_encrypt.conf`; the parsers here are shared with the system checks, so a value
the checks accept is one the fields can use. The providers, the boto3 client and the data-key
cache are built on first use and dropped by :func:`reset_envelope` (connected to
``setting_changed``) whenever a key or envelope setting changes.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from authhero_encrypt.conf import ENVELOPE_SETTINGS, KEY_SETTINGS, conf
from authhero_encrypt.envelope.cache import CachingProvider, DekCache
from authhero_encrypt.envelope.format import AWS_KMS, LOCAL, PROVIDERS
from authhero_encrypt.envelope.providers import (
    AwsKmsProvider,
    KeyProvider,
    LocalProvider,
    make_kms_client,
)
from authhero_encrypt.exceptions import KeyProviderError
from authhero_encrypt.keys import get_keyring

__all__ = [
    "active_provider",
    "dek_cache",
    "parse_cache_size",
    "parse_cache_ttl",
    "parse_kms_key_id",
    "parse_kms_options",
    "parse_provider",
    "provider_named",
    "reset_envelope",
]

_KMS_KEY_ID_HINT = (
    'For example: ENCRYPTION_KMS_KEY_ID = "arn:aws:kms:eu-west-1:111122223333:key/'
    '1234abcd-12ab-34cd-56ef-1234567890ab" (an alias such as "alias/authhero" works too).'
)


def parse_provider(value: object) -> str:
    """``ENCRYPTION_ENVELOPE_PROVIDER``: ``"local"`` or ``"aws-kms"``."""
    if not isinstance(value, str) or value not in PROVIDERS:
        shown = repr(value) if isinstance(value, str) and len(value) <= 40 else type(value).__name__
        raise ImproperlyConfigured(
            f"ENCRYPTION_ENVELOPE_PROVIDER must be one of {', '.join(map(repr, PROVIDERS))}, "
            f"not {shown}."
        )
    return value


def _non_negative(value: object, setting: str, kinds: tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:  # type: ignore[operator]
        raise ImproperlyConfigured(
            f"{setting} must be a number of at least 0, not {value!r}"[:200] + "."
        )
    return value


def parse_cache_size(value: object) -> int:
    """``ENCRYPTION_ENVELOPE_CACHE_SIZE``: how many data keys to keep; 0 turns the cache off."""
    return int(_non_negative(value, "ENCRYPTION_ENVELOPE_CACHE_SIZE", (int,)))


def parse_cache_ttl(value: object) -> float:
    """``ENCRYPTION_ENVELOPE_CACHE_TTL``: seconds a data key is kept; 0 turns the cache off."""
    return float(_non_negative(value, "ENCRYPTION_ENVELOPE_CACHE_TTL", (int, float)))


def parse_kms_key_id(value: object) -> str | None:
    """``ENCRYPTION_KMS_KEY_ID``: a key id, key ARN, alias name or alias ARN; ``None`` if unset."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ImproperlyConfigured(
            "ENCRYPTION_KMS_KEY_ID must be a non-empty string without surrounding spaces. "
            + _KMS_KEY_ID_HINT
        )
    return value


def parse_kms_options() -> dict[str, Any]:
    """The keyword arguments of :func:`make_kms_client` from the ``ENCRYPTION_KMS_*`` settings."""
    region, endpoint = conf.ENCRYPTION_KMS_REGION, conf.ENCRYPTION_KMS_ENDPOINT_URL
    for setting, value in (
        ("ENCRYPTION_KMS_REGION", region),
        ("ENCRYPTION_KMS_ENDPOINT_URL", endpoint),
    ):
        if value is not None and (not isinstance(value, str) or not value):
            raise ImproperlyConfigured(f"{setting} must be a non-empty string or None.")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            "ENCRYPTION_KMS_ENDPOINT_URL must be an http:// or https:// URL."
        )
    timeout = float(
        _non_negative(conf.ENCRYPTION_KMS_TIMEOUT, "ENCRYPTION_KMS_TIMEOUT", (int, float))
    )
    attempts = conf.ENCRYPTION_KMS_MAX_ATTEMPTS
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ImproperlyConfigured("ENCRYPTION_KMS_MAX_ATTEMPTS must be an integer of at least 1.")
    if timeout == 0:
        raise ImproperlyConfigured("ENCRYPTION_KMS_TIMEOUT must be more than 0 seconds.")
    return {
        "region": region,
        "endpoint_url": endpoint,
        "timeout": timeout,
        "max_attempts": attempts,
    }


_lock = threading.Lock()
_state: dict[str, Any] = {}


def dek_cache() -> DekCache:
    """The process's data-key cache, sized from the current settings."""
    with _lock:
        cache = _state.get("cache")
        if cache is None:
            cache = DekCache(
                parse_cache_size(conf.ENCRYPTION_ENVELOPE_CACHE_SIZE),
                parse_cache_ttl(conf.ENCRYPTION_ENVELOPE_CACHE_TTL),
            )
            _state["cache"] = cache
        return cache


def _kms_client() -> Any:
    try:
        return make_kms_client(**parse_kms_options())
    except ImportError as exc:
        # A DecryptionError, so that a read names the field and row that needed KMS.
        raise KeyProviderError(
            "This needs AWS KMS (ENCRYPTION_ENVELOPE_PROVIDER is 'aws-kms', or the stored value "
            "was wrapped by KMS), but boto3 is not installed. Install it with: "
            "pip install boto3 (what the package's aws extra installs)",
            provider=AWS_KMS,
            code="Boto3Missing",
        ) from exc


def provider_named(name: str) -> KeyProvider:
    """The provider for values stored under provider ``name``, with the data-key cache.

    ``aws-kms`` values can be read whatever the active provider is, as long as boto3 and the
    region are configured: their key ARN is in the stored text.
    """
    if name == LOCAL:
        provider: KeyProvider = LocalProvider(get_keyring())
    elif name == AWS_KMS:
        with _lock:
            cached = _state.get("aws")
        if cached is None:
            cached = AwsKmsProvider(_kms_client, parse_kms_key_id(conf.ENCRYPTION_KMS_KEY_ID))
            with _lock:
                cached = _state.setdefault("aws", cached)
        provider = cached
    else:
        raise ImproperlyConfigured(f"Unknown envelope provider {name!r}.")
    return CachingProvider(provider, dek_cache())


def active_provider() -> KeyProvider:
    """The provider new values are wrapped with (``ENCRYPTION_ENVELOPE_PROVIDER``)."""
    return provider_named(parse_provider(conf.ENCRYPTION_ENVELOPE_PROVIDER))


def reset_envelope(*, setting: str | None = None, **kwargs: Any) -> None:
    """Forget providers, client and cached data keys; connected to ``setting_changed``.

    Key settings count too: a DEK a removed ring key unwrapped must not outlive it.
    """
    if setting is None or setting in ENVELOPE_SETTINGS or setting in KEY_SETTINGS:
        with _lock:
            cache = _state.pop("cache", None)
            _state.clear()
        if cache is not None:
            cache.clear()
