"""Seal a plaintext into an ``env:v1`` value and open one, given KEK providers; no Django."""

from __future__ import annotations

import os
from collections.abc import Callable

from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.envelope.format import (
    DEK_BYTES,
    IV_BYTES,
    SALT_BYTES,
    Envelope,
    check_context,
    compose,
    open_payload,
    parse,
    seal_payload,
)
from authhero_encrypt.envelope.write_cache import WriteKeyCache
from authhero_encrypt.exceptions import DecryptionError

__all__ = ["Resolver", "open_value", "resolve_for", "seal"]

Resolver = Callable[[str], KeyProvider]
"""Returns the provider for a stored provider name (values may predate the active provider)."""


def seal(
    provider: KeyProvider,
    plaintext: str,
    context: str,
    *,
    dek: bytes | None = None,
    iv: bytes | None = None,
    write_cache: WriteKeyCache | None = None,
) -> str:
    """Seal ``plaintext`` for the field ``context`` under a fresh DEK wrapped by ``provider``.

    ``dek`` and ``iv`` are test seams for the known-answer vectors; by default both come from
    ``os.urandom`` for every value. The DEK is wrapped first: when the provider fails, nothing
    has been produced to store.

    With ``write_cache`` (the opt-in bounded reuse of a wrapped data key), a cached data key of
    ``provider`` and ``context`` is used while within its limits, and the value is sealed under
    a key derived from it with a fresh salt (the ``d.`` payload form).
    """
    check_context(context)
    if iv is None:
        iv = os.urandom(IV_BYTES)
    if write_cache is None:
        if dek is None:
            dek = os.urandom(DEK_BYTES)
        key_id, wrapped = _wrap(provider, dek, context)
        payload = seal_payload(dek, plaintext, context, iv)
        return compose(Envelope(provider.name, key_id, wrapped, payload))
    size = len(plaintext.encode("utf-8", "surrogatepass"))
    cached = write_cache.take(provider.name, context, size)
    if cached is not None:
        dek, key_id, wrapped = cached.dek, cached.key_id, cached.wrapped
    else:
        dek = os.urandom(DEK_BYTES) if dek is None else dek
        key_id, wrapped = _wrap(provider, dek, context)
        write_cache.put(provider.name, context, dek, key_id, wrapped, size)
    salt = os.urandom(SALT_BYTES)
    payload = seal_payload(dek, plaintext, context, iv, salt)
    return compose(Envelope(provider.name, key_id, wrapped, payload, salt))


def _wrap(provider: KeyProvider, dek: bytes, context: str) -> tuple[str, bytes]:
    key_id, wrapped = provider.wrap(dek, context)
    if not provider.key_id_valid(key_id):
        raise ValueError(f"Provider {provider.name!r} returned a key id outside its pattern.")
    return key_id, wrapped


def resolve_for(resolve: Resolver, envelope: Envelope) -> KeyProvider:
    """The provider of ``envelope``, once it is shown to be the one the value names and the key
    id one it writes (a resolver handing out one provider for every name must not open a value
    whose provider field was altered)."""
    provider = resolve(envelope.provider)
    if provider.name != envelope.provider or not provider.key_id_valid(envelope.key_id):
        raise DecryptionError(
            f"The stored value names envelope provider {envelope.provider!r} with a key id that "
            "provider does not write; it was corrupted or was never written by this codec.",
            key_id=envelope.key_id or None,
        )
    return provider


def open_envelope(resolve: Resolver, envelope: Envelope, context: str) -> str:
    """The plaintext of a parsed envelope: unwrap its DEK, then open its payload."""
    provider = resolve_for(resolve, envelope)
    dek = provider.unwrap(envelope.key_id, envelope.wrapped, context)
    return open_payload(
        dek, envelope.payload, context, key_id=envelope.key_id or None, salt=envelope.salt
    )


def open_value(resolve: Resolver, stored: str, context: str) -> str:
    """The plaintext of the stored ``env:v1`` text ``stored`` for the field ``context``.

    Raises :class:`~authhero_encrypt.exceptions.DecryptionError` (or its subclasses
    ``MissingKeyError`` and ``KeyProviderError``) when the text is malformed, the DEK does not
    unwrap, or the payload does not authenticate.
    """
    return open_envelope(resolve, parse(stored), context)
