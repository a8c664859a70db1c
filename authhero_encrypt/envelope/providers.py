"""The KEK provider API, re-exported: the base class and the built-in backends.

Backends live in :mod:`authhero_encrypt.envelope.backends` and are configured through
``ENCRYPTION_ENVELOPE_PROVIDERS`` (see ``docs/envelope.md``). Every provider binds the wrapped
data key to the field's context (AES-GCM associated data for ``local``, the KMS encryption
context for ``aws-kms``, the derived-key context for Vault Transit), so a wrapped key copied to
another column fails to open.
"""

from __future__ import annotations

from authhero_encrypt.envelope.backends.aws_kms import (
    AwsKmsKeyProvider,
    kms_context,
    kms_error,
    make_kms_client,
)
from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.envelope.backends.local import LocalKeyProvider

__all__ = [
    "AwsKmsKeyProvider",
    "KeyProvider",
    "LocalKeyProvider",
    "kms_context",
    "kms_error",
    "make_kms_client",
]
