"""Typed access to this package's settings.

Each property reads ``django.conf.settings`` on every access, so ``override_settings`` and the
``setting_changed`` signal always see the current value. Nothing here parses or validates: that is
the job of :mod:`authhero_encrypt.keys` and the system checks.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

# The settings the key ring is built from: a change to any of them drops the cached ring.
KEY_SETTINGS = (
    "ENCRYPTION_KEY",
    "ENCRYPTION_KEY_ID",
    "ENCRYPTION_KEY_FALLBACKS",
    "ENCRYPTION_PAD_PAYLOAD",
)
ENVELOPE_SETTINGS = (
    "ENCRYPTION_ENVELOPE_PROVIDERS",
    "ENCRYPTION_ENVELOPE_PROVIDER",
    "ENCRYPTION_ENVELOPE_CACHE_SIZE",
    "ENCRYPTION_ENVELOPE_CACHE_TTL",
    "ENCRYPTION_ENVELOPE_WRITE_CACHE",
    "ENCRYPTION_KMS_KEY_ID",
    "ENCRYPTION_KMS_REGION",
    "ENCRYPTION_KMS_ENDPOINT_URL",
    "ENCRYPTION_KMS_TIMEOUT",
    "ENCRYPTION_KMS_MAX_ATTEMPTS",
)


class Settings:
    @property
    def ENCRYPTION_KEY(self) -> Any:
        return getattr(settings, "ENCRYPTION_KEY", None)

    @property
    def ENCRYPTION_KEY_ID(self) -> Any:
        return getattr(settings, "ENCRYPTION_KEY_ID", None)

    @property
    def ENCRYPTION_KEY_FALLBACKS(self) -> Any:
        return getattr(settings, "ENCRYPTION_KEY_FALLBACKS", None)

    @property
    def ENCRYPTION_PAD_PAYLOAD(self) -> Any:
        return getattr(settings, "ENCRYPTION_PAD_PAYLOAD", False)

    # Blind indexes (authhero_encrypt.blind_index); validated by its system checks E401-E404.

    @property
    def ENCRYPTION_INDEX_KEY(self) -> Any:
        return getattr(settings, "ENCRYPTION_INDEX_KEY", None)

    @property
    def ENCRYPTION_INDEX_KEY_ID(self) -> Any:
        return getattr(settings, "ENCRYPTION_INDEX_KEY_ID", None)

    @property
    def ENCRYPTION_INDEX_KEY_FALLBACKS(self) -> Any:
        return getattr(settings, "ENCRYPTION_INDEX_KEY_FALLBACKS", None)

    @property
    def ENCRYPTION_REJECT_PLAINTEXT(self) -> Any:
        # Strict mode (authhero_encrypt.fields.strict); validated by check E006.
        return getattr(settings, "ENCRYPTION_REJECT_PLAINTEXT", False)

    # Envelope encryption (authhero_encrypt.envelope); validated by its system checks E301-E309.

    @property
    def ENCRYPTION_ENVELOPE_PROVIDERS(self) -> Any:
        return getattr(settings, "ENCRYPTION_ENVELOPE_PROVIDERS", None)

    def explicitly_set(self, names: tuple[str, ...]) -> dict[str, Any]:
        """Those of the settings ``names`` the project sets, with their values (deprecated
        settings warn only when they are set, not because they have a default)."""
        return {name: getattr(settings, name) for name in names if hasattr(settings, name)}

    @property
    def ENCRYPTION_ENVELOPE_PROVIDER(self) -> Any:
        return getattr(settings, "ENCRYPTION_ENVELOPE_PROVIDER", "local")

    @property
    def ENCRYPTION_ENVELOPE_CACHE_SIZE(self) -> Any:
        return getattr(settings, "ENCRYPTION_ENVELOPE_CACHE_SIZE", 1024)

    @property
    def ENCRYPTION_ENVELOPE_CACHE_TTL(self) -> Any:
        return getattr(settings, "ENCRYPTION_ENVELOPE_CACHE_TTL", 300)

    @property
    def ENCRYPTION_ENVELOPE_WRITE_CACHE(self) -> Any:
        return getattr(settings, "ENCRYPTION_ENVELOPE_WRITE_CACHE", None)

    @property
    def ENCRYPTION_KMS_KEY_ID(self) -> Any:
        return getattr(settings, "ENCRYPTION_KMS_KEY_ID", None)

    @property
    def ENCRYPTION_KMS_REGION(self) -> Any:
        return getattr(settings, "ENCRYPTION_KMS_REGION", None)

    @property
    def ENCRYPTION_KMS_ENDPOINT_URL(self) -> Any:
        return getattr(settings, "ENCRYPTION_KMS_ENDPOINT_URL", None)

    @property
    def ENCRYPTION_KMS_TIMEOUT(self) -> Any:
        return getattr(settings, "ENCRYPTION_KMS_TIMEOUT", 5)

    @property
    def ENCRYPTION_KMS_MAX_ATTEMPTS(self) -> Any:
        return getattr(settings, "ENCRYPTION_KMS_MAX_ATTEMPTS", 3)

    @property
    def ENCRYPTION_AUTHHERO_TABLES(self) -> Any:
        # Tables of this project that AuthHero also reads (W301), beyond AuthHero's own names.
        return getattr(settings, "ENCRYPTION_AUTHHERO_TABLES", ())


conf = Settings()
