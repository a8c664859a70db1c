"""The one exception family raised by authhero_encrypt at run time.

Every message names what went wrong and what to do about it. None of them ever contains a key,
a plaintext secret or a ciphertext: they end up in logs and error pages.
"""

from __future__ import annotations

__all__ = [
    "DecryptionError",
    "EncryptionError",
    "InvalidKeyError",
    "KeyProviderError",
    "MissingKeyError",
]


class EncryptionError(Exception):
    """Root of every error this package raises while encrypting or decrypting."""


class InvalidKeyError(EncryptionError, ValueError):
    """A key setting is malformed (wrong length, not base64, bad key id, duplicate id)."""


class DecryptionError(EncryptionError):
    """A stored ``enc:v1:`` value could not be turned back into its plaintext.

    Raised for a payload that does not parse, one that fails GCM authentication under every
    candidate key, and one tagged with a key id that is not configured. ``key_id`` is the id the
    value asked for (``None`` for untagged values) so callers can tell a missing key from tampering.
    """

    def __init__(self, message: str, *, key_id: str | None = None) -> None:
        super().__init__(message)
        self.key_id = key_id


class MissingKeyError(DecryptionError):
    """A key is needed (to read ciphertext, or to vouch for a prefixed value) and none is set."""


class KeyProviderError(DecryptionError):
    """The key-encryption-key provider (AWS KMS) failed to wrap or unwrap a data key.

    Raised for an unreachable endpoint, a refused call (access denied, a disabled or deleted key,
    a wrong key id) and throttling, on reads and on writes alike (nothing is written then).
    ``provider`` names the provider, ``code`` the provider's error code (for example
    ``"AccessDeniedException"``) or ``None`` when the call never got an answer.
    """

    def __init__(
        self,
        message: str,
        *,
        key_id: str | None = None,
        provider: str = "",
        code: str | None = None,
    ) -> None:
        super().__init__(message, key_id=key_id)
        self.provider = provider
        self.code = code
