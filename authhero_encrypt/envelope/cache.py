"""A per-process cache of unwrapped data keys: bounded (LRU), with a time to live, thread-safe.

Reading an envelope value costs one KEK call (a KMS ``Decrypt``) to unwrap its data key; the
cache keeps that key for ``ttl`` seconds, so a value read a thousand times calls KMS once. It is
keyed by everything the unwrap depended on (provider, key id, wrapped bytes, field context), so
a hit can only return the key the provider would have returned. Pure Python, no Django; the
settings module empties it on ``setting_changed``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from authhero_encrypt.envelope.backends.base import KeyProvider

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

__all__ = ["CachingProvider", "DekCache"]

CacheKey = tuple[str, str, bytes, str]


class DekCache:
    """At most ``max_size`` data keys, each kept ``ttl`` seconds after it was stored.

    ``max_size=0`` or ``ttl=0`` turns caching off. ``clock`` is a test seam.
    """

    def __init__(
        self, max_size: int, ttl: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_size < 0 or ttl < 0:
            raise ValueError("max_size and ttl must not be negative")
        self.max_size = max_size
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[CacheKey, tuple[float, bytes]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_size > 0 and self.ttl > 0

    def get(self, key: CacheKey) -> bytes | None:
        if not self.enabled:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, dek = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return dek

    def put(self, key: CacheKey, dek: bytes) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, dek)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class CachingProvider(KeyProvider):
    """``provider`` with its unwrapped (and freshly wrapped) data keys kept in ``cache``.

    A key wrapped here is cached too, so reading a value right after writing it costs no call.
    Everything else is the provider's own.
    """

    def __init__(self, provider: KeyProvider, cache: DekCache) -> None:
        super().__init__(provider.name)
        self.provider = provider
        self.cache = cache
        self.key_id_pattern = provider.key_id_pattern  # type: ignore[misc]
        self.supports_rewrap = provider.supports_rewrap  # type: ignore[misc]

    def active_key_id(self) -> str:
        return self.provider.active_key_id()

    def is_active(self, key_id: str, wrapped: bytes, context: str) -> bool:
        return self.provider.is_active(key_id, wrapped, context)

    def rewrap(self, key_id: str, wrapped: bytes, context: str) -> tuple[str, bytes]:
        return self.provider.rewrap(key_id, wrapped, context)

    def checks(self, *, active: bool = True) -> list[CheckMessage]:
        return self.provider.checks(active=active)

    def configured_key_id(self) -> str | None:
        return self.provider.configured_key_id()

    def enabled(self) -> bool:
        return self.provider.enabled()

    def wrap(self, dek: bytes, context: str) -> tuple[str, bytes]:
        key_id, wrapped = self.provider.wrap(dek, context)
        self.cache.put((self.name, key_id, wrapped, context), dek)
        return key_id, wrapped

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        cache_key = (self.name, key_id, wrapped, context)
        dek = self.cache.get(cache_key)
        if dek is None:
            dek = self.provider.unwrap(key_id, wrapped, context)
            self.cache.put(cache_key, dek)
        return dek
