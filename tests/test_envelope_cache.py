"""The data-key cache: bounded, expiring, thread-safe, and in front of a provider."""

from __future__ import annotations

import threading

import pytest

from authhero_encrypt.envelope.backends.local import LocalKeyProvider
from authhero_encrypt.envelope.cache import CachingProvider, DekCache
from authhero_encrypt.keys import build_keyring
from tests.keys import KEY_A

CONTEXT = "testapp.privatekey.pem"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingProvider(LocalKeyProvider):
    """A real local provider that counts its unwraps."""

    def __init__(self) -> None:
        super().__init__(ring=build_keyring(KEY_A, "k1"))
        self.unwraps = 0

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        self.unwraps += 1
        return super().unwrap(key_id, wrapped, context)


def key(n: int) -> tuple[str, str, bytes, str]:
    return ("local", "k1", bytes([n]), CONTEXT)


def test_entries_expire_after_the_ttl():
    clock = Clock()
    cache = DekCache(10, 5, clock=clock)
    cache.put(key(1), b"d" * 32)
    clock.now = 4.9
    assert cache.get(key(1)) == b"d" * 32
    clock.now = 5.0
    assert cache.get(key(1)) is None
    assert len(cache) == 0


def test_the_least_recently_used_entry_goes_first():
    cache = DekCache(2, 60)
    cache.put(key(1), b"1")
    cache.put(key(2), b"2")
    assert cache.get(key(1)) == b"1"
    cache.put(key(3), b"3")
    assert cache.get(key(2)) is None
    assert cache.get(key(1)) == b"1"
    assert cache.get(key(3)) == b"3"
    assert len(cache) == 2


@pytest.mark.parametrize(("size", "ttl"), [(0, 60), (10, 0)])
def test_zero_turns_the_cache_off(size, ttl):
    cache = DekCache(size, ttl)
    cache.put(key(1), b"1")
    assert cache.get(key(1)) is None
    assert not cache.enabled


def test_negative_limits_are_value_errors():
    with pytest.raises(ValueError, match="must not be negative"):
        DekCache(-1, 1)


def test_a_cached_provider_unwraps_each_key_once():
    counting = CountingProvider()
    provider = CachingProvider(counting, DekCache(10, 60))
    key_id, wrapped = counting.wrap(b"k" * 32, CONTEXT)
    for _ in range(1000):
        assert provider.unwrap(key_id, wrapped, CONTEXT) == b"k" * 32
    assert counting.unwraps == 1
    # Another context is another cache entry: a hit never skips the provider's binding check.
    with pytest.raises(Exception, match="copied from another field"):
        provider.unwrap(key_id, wrapped, "testapp.other.pem")
    assert counting.unwraps == 2


def test_a_wrapped_key_is_cached_for_the_read_that_follows():
    counting = CountingProvider()
    provider = CachingProvider(counting, DekCache(10, 60))
    key_id, wrapped = provider.wrap(b"w" * 32, CONTEXT)
    assert provider.unwrap(key_id, wrapped, CONTEXT) == b"w" * 32
    assert counting.unwraps == 0


def test_threads_share_the_cache_safely():
    cache = DekCache(50, 60)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(500):
                cache.put(key((n + offset) % 256), bytes([n % 256]))
                cache.get(key((n * 7) % 256))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 50
