"""The warnings raised for settings and APIs that a future release removes."""

from __future__ import annotations

__all__ = ["RemovedInAuthheroEncrypt1Warning"]


class RemovedInAuthheroEncrypt1Warning(DeprecationWarning):
    """Something that keeps working until authhero_encrypt 1.0 and is removed then; the message
    says what replaces it."""
