"""Tags: the keyed hashes a blind index stores, one function of the key, the index and the value.

A tag is HMAC-SHA256 under the index's subkey of the normalized value's UTF-8 bytes (or, for
``slow=`` indexes on low-entropy values, PBKDF2-HMAC-SHA256 with the subkey as salt), cut to the
index's ``bits`` and written as lowercase hex after the key id: ``k1:3f9a…``. Hex is the same in
every collation, so no database's case-insensitive comparison can make two tags equal; the key
id lets status reports and ``encryption_migrate`` tell which key made a stored tag.
"""

from __future__ import annotations

import hashlib
import hmac

from authhero_encrypt.keys import KEY_ID_MAX_LENGTH

__all__ = ["FULL_BITS", "TAG_MAX_LENGTH", "compute_tag"]

FULL_BITS = 256
TAG_MAX_LENGTH = KEY_ID_MAX_LENGTH + 1 + FULL_BITS // 4


def compute_tag(key_id: str, subkey: bytes, normalized: str, *, bits: int, iterations: int) -> str:
    """The stored text of the tag of ``normalized`` under ``subkey``."""
    data = normalized.encode("utf-8", "surrogatepass")
    if iterations:
        digest = hashlib.pbkdf2_hmac("sha256", data, subkey, iterations)
    else:
        digest = hmac.new(subkey, data, hashlib.sha256).digest()
    return f"{key_id}:{digest[: bits // 8].hex()}"
