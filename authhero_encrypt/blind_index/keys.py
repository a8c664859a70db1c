"""The blind index key ring: the keys index tags are computed under, and the subkeys per index.

Blind index keys are kept apart from the encryption keys (``ENCRYPTION_INDEX_KEY``,
``ENCRYPTION_INDEX_KEY_ID``, ``ENCRYPTION_INDEX_KEY_FALLBACKS``, spelled like their encryption
counterparts): a tag is a deterministic function of the plaintext, so a key that made tags must
never also encrypt. Each index derives a subkey of its own with HKDF over its app, model, source
and index name, so two columns holding the same plaintext never hold the same tags.

The ring is built once and dropped whenever one of its settings changes (``setting_changed``),
so nothing outlives the configuration it was built from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.views.decorators.debug import sensitive_variables

from authhero_encrypt.conf import conf
from authhero_encrypt.exceptions import InvalidKeyError
from authhero_encrypt.keys import (
    KEY_ID_MAX_LENGTH,
    fallback_entries,
    fingerprint,
    load_encryption_key,
    parse_fallback,
    parse_key_id,
)

__all__ = [
    "INDEX_KEY_SETTINGS",
    "IndexKey",
    "IndexKeyRing",
    "build_index_keyring",
    "get_index_keyring",
    "reset_index_keyring",
]

INDEX_KEY_SETTINGS = (
    "ENCRYPTION_INDEX_KEY",
    "ENCRYPTION_INDEX_KEY_ID",
    "ENCRYPTION_INDEX_KEY_FALLBACKS",
)
_HKDF_SALT = b"authhero_encrypt blind index v1"


@dataclass(frozen=True)
class IndexKey:
    """One index key. Its repr names the id and fingerprint, never the key bytes.

    Every key has an id, which starts each tag it makes: the one configured, or ``fp-`` and the
    key's fingerprint for a key given without one, so tags always say which key made them.
    """

    id: str
    fingerprint: str
    secret: bytes = field(repr=False, compare=False)

    @classmethod
    def from_secret(cls, key_id: str | None, secret: bytes) -> IndexKey:
        print_ = fingerprint(secret)
        return cls(id=key_id or f"fp-{print_}", fingerprint=print_, secret=secret)


@dataclass(frozen=True)
class IndexKeyRing:
    """The active index key and the older ones still matched by queries.

    ``keys`` is every key a query matches under, the active one first; ``oldest`` is the last of
    them, the key a unique index's previous-generation column is written under (see
    :mod:`authhero_encrypt.blind_index.field`).
    """

    active: IndexKey | None
    fallbacks: tuple[IndexKey, ...]
    _subkeys: dict[tuple[str, str], bytes] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def keys(self) -> tuple[IndexKey, ...]:
        return ((self.active,) if self.active else ()) + self.fallbacks

    @property
    def oldest(self) -> IndexKey | None:
        everything = self.keys
        return everything[-1] if everything else None

    def subkey(self, key: IndexKey, label: str) -> bytes:
        """The HKDF-SHA256 subkey of ``key`` for the index named ``label``; memoised."""
        found = self._subkeys.get((key.id, label))
        if found is None:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=label.encode())
            found = self._subkeys[(key.id, label)] = hkdf.derive(key.secret)
        return found


@sensitive_variables()
def build_index_keyring(key: Any = None, key_id: Any = None, fallbacks: Any = None) -> IndexKeyRing:
    """Build the index ring from raw setting values, raising ``InvalidKeyError`` on a problem."""
    active = None
    if key is not None and key != "":
        secret = load_encryption_key(key, setting="ENCRYPTION_INDEX_KEY")
        active = IndexKey.from_secret(
            parse_key_id(key_id, setting="ENCRYPTION_INDEX_KEY_ID"), secret
        )
    older: list[IndexKey] = []
    name = "ENCRYPTION_INDEX_KEY_FALLBACKS"
    for index, entry in enumerate(fallback_entries(fallbacks, setting_name=name)):
        fallback_id, secret = parse_fallback(entry, index, setting_name=name)
        if fallback_id is not None and len(fallback_id) > KEY_ID_MAX_LENGTH:
            raise InvalidKeyError(
                f"The key id of {name}[{index}] is {len(fallback_id)} characters long; index key "
                f"ids are at most {KEY_ID_MAX_LENGTH} (the index column is sized for them)."
            )
        older.append(IndexKey.from_secret(fallback_id, secret))
    seen: set[str] = set()
    for each in ((active,) if active else ()) + tuple(older):
        if each.id in seen:
            raise InvalidKeyError(
                f"Index key id {each.id!r} is used by more than one key in "
                "ENCRYPTION_INDEX_KEY_ID and ENCRYPTION_INDEX_KEY_FALLBACKS (or the same key is "
                "listed twice); give each key its own id."
            )
        seen.add(each.id)
    return IndexKeyRing(active, tuple(older))


_current: IndexKeyRing | None = None


def get_index_keyring() -> IndexKeyRing:
    """The index ring for the current settings, built on first use after any of them changes."""
    global _current
    ring = _current
    if ring is None:
        ring = _current = build_index_keyring(
            conf.ENCRYPTION_INDEX_KEY,
            conf.ENCRYPTION_INDEX_KEY_ID,
            conf.ENCRYPTION_INDEX_KEY_FALLBACKS,
        )
    return ring


def reset_index_keyring(*, setting: str | None = None, **kwargs: Any) -> None:
    """Forget the cached ring; connected to ``setting_changed`` in ``AppConfig.ready``."""
    global _current
    if setting is None or setting in INDEX_KEY_SETTINGS:
        _current = None
