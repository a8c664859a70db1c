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


conf = Settings()
