"""KEK provider backends for ``ENCRYPTION_ENVELOPE_PROVIDERS``.

``base.KeyProvider`` is the documented base class; ``local``, ``aws_kms`` and ``vault`` hold the
built-in backends. boto3 and hvac are imported only by the backend that needs them.
"""

from __future__ import annotations

from authhero_encrypt.envelope.backends.base import KeyProvider

__all__ = ["KeyProvider"]
