"""The base class of key-encryption-key (KEK) providers: what a backend must and may implement.

A provider is configured as one entry of ``ENCRYPTION_ENVELOPE_PROVIDERS`` (a ``BACKEND``
dotted path and its ``OPTIONS``), as Django's ``CACHES`` and ``STORAGES`` are. The entry's name
is stored in every value the provider wraps (``env:v1:<name>:<key id>:...``), so it must never
change once values are written under it. The built-in ``local``, ``aws-kms`` and Vault Transit
backends are ordinary subclasses of :class:`KeyProvider`, with no special path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from authhero_encrypt.envelope.format import DEK_BYTES, GENERIC_KEY_ID, PROVIDER_NAME
from authhero_encrypt.exceptions import KeyProviderError

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

__all__ = ["GENERIC_KEY_ID", "PROVIDER_NAME", "KeyProvider"]


class KeyProvider:
    """A KEK provider: wraps and unwraps 32-byte data keys (DEKs), each bound to a context.

    Subclasses **must** implement :meth:`active_key_id`, :meth:`wrap` and :meth:`unwrap`, and
    **may** override :meth:`is_active`, :meth:`rewrap` (with ``supports_rewrap = True``),
    :meth:`unwrap_many`, :meth:`checks`, :meth:`configured_key_id`, :meth:`enabled` and
    :attr:`key_id_pattern`.

    The constructor receives the entry's name and its ``OPTIONS`` as keyword arguments; it must
    not call a server (the first wrap or unwrap does) and should raise ``TypeError`` for an
    unknown option and ``ImproperlyConfigured`` for a malformed one: the system check
    ``authhero_encrypt.E308`` reports either.

    Contract for every method that talks to a KEK service: a failure raises
    :class:`~authhero_encrypt.exceptions.KeyProviderError` (a ``DecryptionError``) whose message
    says what went wrong and what to do, and never holds a data key, plaintext or ciphertext.
    A wrapped key that does not open under the given context raises ``DecryptionError`` too,
    never returns ``None`` or other bytes.
    """

    key_id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9:/_.@+=-]{1,256}")
    """The key ids this provider writes; stored values with any other key id are refused
    before the provider is called. Must be a subset of :data:`GENERIC_KEY_ID`."""

    supports_rewrap: ClassVar[bool] = False
    """True when :meth:`rewrap` moves a wrapped key to the active KEK on the server, so
    rotation never brings the data key into this process."""

    def __init__(self, name: str, **options: Any) -> None:
        if options:
            raise TypeError(
                f"{type(self).__name__} takes no OPTIONS, not {', '.join(sorted(options))}."
            )
        self.name = name

    def active_key_id(self) -> str:
        """The key id new values are wrapped under; ``MissingKeyError`` if there is none."""
        raise NotImplementedError

    def wrap(self, dek: bytes, context: str) -> tuple[str, bytes]:
        """``(key id, wrapped DEK)`` for ``dek``, bound to ``context``."""
        raise NotImplementedError

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        """The DEK in ``wrapped``, which opens only under the ``context`` it was wrapped for."""
        raise NotImplementedError

    def is_active(self, key_id: str, wrapped: bytes, context: str) -> bool:
        """True when the active KEK wrapped ``wrapped``, so rotation leaves the value alone."""
        return key_id == self.active_key_id()

    def rewrap(self, key_id: str, wrapped: bytes, context: str) -> tuple[str, bytes]:
        """``(key id, wrapped DEK)`` of the same DEK under the active KEK, done server-side.

        Only called when :attr:`supports_rewrap` is true; rotation otherwise unwraps the DEK
        and wraps it again.
        """
        raise NotImplementedError

    def unwrap_many(self, items: Sequence[tuple[str, bytes, str]]) -> list[bytes]:
        """The DEKs of several ``(key id, wrapped, context)`` items, in order (a batch call
        where the service has one); raises on the first that does not open."""
        return [self.unwrap(key_id, wrapped, context) for key_id, wrapped, context in items]

    def checks(self, *, active: bool = True) -> list[CheckMessage]:
        """System check messages about this provider's configuration (no server call).

        ``active`` tells whether new values are wrapped with it: a provider kept only to read
        older values may lack what writing needs (a key to wrap with).
        """
        return []

    def configured_key_id(self) -> str | None:
        """The KEK new values are wrapped under as the settings name it (no server call), for
        ``encryption_status``; ``None`` when the settings do not say."""
        return None

    def enabled(self) -> bool:
        """False when this provider is configured off (``local`` without ``ENCRYPTION_KEY``):
        values are then stored as plaintext, as the other encrypted fields do."""
        return True

    def checked_dek(self, dek: bytes, operation: str, key_id: str) -> bytes:
        """``dek`` once it is shown to be a data key's length (a helper for backends)."""
        if len(dek) != DEK_BYTES:
            raise KeyProviderError(
                f"{operation} with key {key_id!r} returned {len(dek)} bytes, not a "
                f"{DEK_BYTES}-byte data key; the wrapped key was not written by this codec.",
                key_id=key_id,
                provider=self.name,
                code="WrongDataKeyLength",
            )
        return dek

    def key_id_valid(self, key_id: str) -> bool:
        return self.key_id_pattern.fullmatch(key_id) is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
