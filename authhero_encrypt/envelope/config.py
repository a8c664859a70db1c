"""The envelope settings turned into providers and a data-key cache, kept until a setting changes.

Every setting is read through :mod:`authhero_encrypt.conf`; the parsers here and in
:mod:`~authhero_encrypt.envelope.registry` are shared with the system checks, so a value the
checks accept is one the fields can use. Providers and the data-key cache are built on first
use and dropped by :func:`reset_envelope` (connected to ``setting_changed``) whenever a key or
envelope setting changes.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from authhero_encrypt.conf import ENVELOPE_SETTINGS, KEY_SETTINGS, conf
from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.envelope.cache import CachingProvider, DekCache
from authhero_encrypt.envelope.registry import load_backend, provider_entries
from authhero_encrypt.envelope.write_cache import WriteKeyCache
from authhero_encrypt.exceptions import KeyProviderError

__all__ = [
    "active_provider",
    "dek_cache",
    "parse_cache_size",
    "parse_cache_ttl",
    "parse_provider",
    "parse_write_cache",
    "provider_named",
    "reset_envelope",
    "write_cache",
]


def parse_provider(value: object, entries: dict[str, Any] | None = None) -> str:
    """``ENCRYPTION_ENVELOPE_PROVIDER``: the name of a configured provider."""
    names = tuple(provider_entries(warn=False) if entries is None else entries)
    if not isinstance(value, str) or value not in names:
        shown = repr(value) if isinstance(value, str) and len(value) <= 40 else type(value).__name__
        raise ImproperlyConfigured(
            "ENCRYPTION_ENVELOPE_PROVIDER must name an entry of "
            f"ENCRYPTION_ENVELOPE_PROVIDERS ({', '.join(map(repr, names))}), not {shown}."
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


_WRITE_CACHE_LIMITS = ("MAX_AGE", "MAX_VALUES", "MAX_BYTES")


def parse_write_cache(value: object) -> dict[str, float] | None:
    """``ENCRYPTION_ENVELOPE_WRITE_CACHE``: ``None`` (off), or the three limits of a reused
    data key, ``{"MAX_AGE": seconds, "MAX_VALUES": n, "MAX_BYTES": n}``."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(_WRITE_CACHE_LIMITS):
        raise ImproperlyConfigured(
            'ENCRYPTION_ENVELOPE_WRITE_CACHE must be None or {"MAX_AGE": seconds, '
            '"MAX_VALUES": values, "MAX_BYTES": bytes}.'
        )
    for name in _WRITE_CACHE_LIMITS:
        kinds = (int, float) if name == "MAX_AGE" else (int,)
        if _non_negative(value[name], f"ENCRYPTION_ENVELOPE_WRITE_CACHE[{name!r}]", kinds) == 0:
            raise ImproperlyConfigured(
                f"ENCRYPTION_ENVELOPE_WRITE_CACHE[{name!r}] must be more than 0."
            )
    return {name: value[name] for name in _WRITE_CACHE_LIMITS}


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


def write_cache() -> WriteKeyCache | None:
    """The process's cache of wrapped data keys for writes; ``None`` unless turned on."""
    limits = parse_write_cache(conf.ENCRYPTION_ENVELOPE_WRITE_CACHE)
    if limits is None:
        return None
    with _lock:
        cache = _state.get("write_cache")
        if cache is None:
            cache = WriteKeyCache(
                float(limits["MAX_AGE"]), int(limits["MAX_VALUES"]), int(limits["MAX_BYTES"])
            )
            _state["write_cache"] = cache
        return cache


def _entries() -> dict[str, dict[str, Any]]:
    with _lock:
        entries = _state.get("entries")
    if entries is None:
        entries = provider_entries()  # warns once per settings change for deprecated ones
        with _lock:
            entries = _state.setdefault("entries", entries)
    return entries  # type: ignore[no-any-return]


def provider_named(name: str) -> KeyProvider:
    """The provider of the values stored under ``name``, with the data-key cache.

    Values are read with the provider they name, whatever the active provider is. A name no
    entry configures raises :class:`KeyProviderError` (a ``DecryptionError``, so a read names
    its field and row); a malformed entry raises ``ImproperlyConfigured``.
    """
    entries = _entries()
    if name not in entries:
        raise KeyProviderError(
            f"The value was wrapped by envelope provider {name!r}, which "
            "ENCRYPTION_ENVELOPE_PROVIDERS does not configure: add that entry (with the "
            "backend and OPTIONS that wrote it) to read it.",
            provider=name,
            code="UnknownProvider",
        )
    with _lock:
        providers: dict[str, KeyProvider] = _state.setdefault("providers", {})
        provider = providers.get(name)
    if provider is None:
        provider = load_backend(name, entries[name])
        with _lock:
            provider = providers.setdefault(name, provider)
    return CachingProvider(provider, dek_cache())


def active_provider() -> KeyProvider:
    """The provider new values are wrapped with (``ENCRYPTION_ENVELOPE_PROVIDER``)."""
    return provider_named(parse_provider(conf.ENCRYPTION_ENVELOPE_PROVIDER, _entries()))


def reset_envelope(*, setting: str | None = None, **kwargs: Any) -> None:
    """Forget providers, clients and cached data keys; connected to ``setting_changed``.

    Key settings count too: a DEK a removed ring key unwrapped must not outlive it.
    """
    if setting is None or setting in ENVELOPE_SETTINGS or setting in KEY_SETTINGS:
        with _lock:
            caches = [_state.pop(name, None) for name in ("cache", "write_cache")]
            _state.clear()
        for cache in caches:
            if cache is not None:
                cache.clear()
