"""Bounded reuse of a wrapped data key for writes (opt-in), with the AWS Encryption SDK's limits.

Without it every write wraps a fresh data key: one KMS ``Encrypt`` (or Transit ``encrypt``) per
row. With it, a data key wrapped for one provider and context seals further values until it is
``max_age`` seconds old, has sealed ``max_values`` values or ``max_bytes`` bytes of plaintext,
whichever comes first. Each value is still sealed under a key of its own, derived from the data
key with a fresh salt (HKDF-SHA256, the ``d.`` payload form of ``docs/envelope.md``), so the
number of AES-GCM encryptions under one key stays one. Pure Python, thread-safe; emptied on
``setting_changed`` with the other envelope state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["WriteKey", "WriteKeyCache"]


@dataclass
class WriteKey:
    dek: bytes
    key_id: str
    wrapped: bytes
    born: float
    values: int = 0
    size: int = 0


class WriteKeyCache:
    """One reusable wrapped data key per ``(provider, context)``, within three limits."""

    def __init__(
        self,
        max_age: float,
        max_values: int,
        max_bytes: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age <= 0 or max_values < 1 or max_bytes < 1:
            raise ValueError("max_age must be above 0, max_values and max_bytes at least 1")
        self.max_age, self.max_values, self.max_bytes = max_age, max_values, max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], WriteKey] = {}

    def take(self, provider: str, context: str, size: int) -> WriteKey | None:
        """The cached key for one more value of ``size`` bytes, counted; ``None`` when there
        is none or using it would pass a limit (the caller wraps a new one and ``put``s it)."""
        with self._lock:
            entry = self._entries.get((provider, context))
            if entry is None:
                return None
            if (
                self._clock() - entry.born >= self.max_age
                or entry.values + 1 > self.max_values
                or entry.size + size > self.max_bytes
            ):
                del self._entries[(provider, context)]
                return None
            entry.values += 1
            entry.size += size
            return entry

    def put(
        self, provider: str, context: str, dek: bytes, key_id: str, wrapped: bytes, size: int
    ) -> None:
        """Keep a freshly wrapped key, which has just sealed one value of ``size`` bytes."""
        if size > self.max_bytes:
            return
        with self._lock:
            self._entries[(provider, context)] = WriteKey(
                dek, key_id, wrapped, self._clock(), 1, size
            )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
