"""Equality search and uniqueness on encrypted values: blind indexes.

Declare a ``BlindIndexField`` beside an encrypted field::

    email = EncryptedCharField(max_length=254)
    email_index = BlindIndexField("email", normalize=["strip", "casefold"], unique=True)

and ``filter(email=...)``, ``email__in``, ``get_or_create`` and unique validation work through
the tag column. The design and the leakage it accepts are in ``docs/blind_index.md``.
"""

from __future__ import annotations

# The encrypted fields first: fields.base imports blind_index.lookups, which imports
# blind_index.field, which subclasses fields.generic. Importing this package before
# authhero_encrypt.fields (as a sorted models.py does) would otherwise meet a half-built module.
import authhero_encrypt.fields  # noqa: F401
from authhero_encrypt.blind_index.field import BlindIndexField, PreviousIndexField
from authhero_encrypt.blind_index.normalizers import NORMALIZERS

__all__ = ["NORMALIZERS", "BlindIndexField", "PreviousIndexField"]
