"""Key settings: parsing, validation and the key ring the codec works with.

The key ring (one ``AESGCM`` object per configured key) is built once and reused for every value;
it is dropped whenever a key setting changes (``setting_changed``, which ``override_settings``
sends), so nothing outlives the configuration it was built from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.views.decorators.debug import sensitive_variables

from authhero_encrypt.conf import KEY_SETTINGS, conf
from authhero_encrypt.exceptions import InvalidKeyError

__all__ = [
    "KEY_ID_MAX_LENGTH",
    "Key",
    "KeyRing",
    "build_keyring",
    "get_keyring",
    "load_encryption_key",
    "parse_fallback",
    "parse_key_id",
    "parse_pad_payload",
    "uses_urlsafe_alphabet",
]

KEY_BYTES = 32
KEY_ID_MAX_LENGTH = 64
_GENERATE_HINT = "Generate one with: openssl rand -base64 32"
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]+")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]*")
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}")
# Both alphabets are accepted: keys from ``openssl rand -base64 32`` use ``+/``, keys from
# ``Fernet.generate_key()`` or ``secrets.token_urlsafe(32)`` use ``-_``.
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_FINGERPRINT_LABEL = b"authhero_encrypt key fingerprint v1"


# Error reports list every frame's locals; these hold key text.
@sensitive_variables()
def load_encryption_key(text: object, *, setting: str = "ENCRYPTION_KEY") -> bytes:
    """Decode the base64 text of a 32-byte key.

    Accepts standard or url-safe base64, padded or not, with surrounding whitespace. Every
    refusal names ``setting`` and says how to make a valid key; none repeats the key.
    """
    if not isinstance(text, str):
        raise InvalidKeyError(
            f"{setting} must be a string holding base64 text, not {type(text).__name__}. "
            f"{_GENERATE_HINT}"
        )
    compact = text.strip().translate(_URLSAFE_TO_STANDARD).rstrip("=")
    if not compact:
        raise InvalidKeyError(f"{setting} is empty. {_GENERATE_HINT}")
    if not _BASE64_RE.fullmatch(compact) or len(compact) % 4 == 1:
        raise InvalidKeyError(f"{setting} is not valid base64 text. {_GENERATE_HINT}")
    key = base64.b64decode(compact + "=" * (-len(compact) % 4))
    if len(key) != KEY_BYTES:
        hint = ""
        if _HEX64_RE.fullmatch(text.strip()):
            hint = (
                " It looks like 64 hex digits, which is 32 bytes written as hex: convert it to "
                "base64 (base64.b64encode(bytes.fromhex(HEX))) or generate a new key."
            )
        raise InvalidKeyError(
            f"{setting} must decode to {KEY_BYTES} bytes (got {len(key)}).{hint} {_GENERATE_HINT}"
        )
    return key


@sensitive_variables()
def uses_urlsafe_alphabet(text: object) -> bool:
    """Whether key text is spelled with url-safe base64's ``-`` or ``_``.

    Accepted here, but AuthHero's ``loadEncryptionKey`` refuses such a key (check W003).
    """
    return isinstance(text, str) and ("-" in text or "_" in text)


def parse_key_id(
    value: object, *, setting: str = "ENCRYPTION_KEY_ID", max_length: int | None = KEY_ID_MAX_LENGTH
) -> str | None:
    """Validate a key id; ``None`` and ``""`` mean "no id" (values are written untagged).

    AuthHero writes ids of any length, so an id only read (a fallback's) may be as long as it
    likes (``max_length=None``). The id new values are written with is limited to
    ``KEY_ID_MAX_LENGTH``: the column of an ``EncryptedCharField`` is sized for it.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidKeyError(f"{setting} must be a string, not {type(value).__name__}.")
    if not _KEY_ID_RE.fullmatch(value):
        length = f"1 to {max_length}" if max_length is not None else "1 or more"
        raise InvalidKeyError(
            f"{setting} must be {length} characters of A-Z, a-z, 0-9, '_' or '-' "
            f"(got {len(value)} characters with others)."
        )
    if max_length is not None and len(value) > max_length:
        raise InvalidKeyError(
            f"{setting} must be 1 to {max_length} characters of A-Z, a-z, 0-9, '_' or '-' "
            f"(got {len(value)} characters): new values are written with this id, and the "
            f"columns of EncryptedCharField are sized for ids of up to {max_length} characters. "
            "A longer id that an older key wrote can still be read: list that key in "
            "ENCRYPTION_KEY_FALLBACKS."
        )
    return value


@sensitive_variables()
def parse_fallback(
    entry: object, index: int, *, setting_name: str = "ENCRYPTION_KEY_FALLBACKS"
) -> tuple[str | None, bytes]:
    """Parse one ``ENCRYPTION_KEY_FALLBACKS`` item: ``"BASE64KEY"`` or ``"KEYID:BASE64KEY"``.

    ``setting_name`` names the list in messages (the blind index ring has one of its own).
    """
    setting = f"{setting_name}[{index}]"
    if not isinstance(entry, str):
        raise InvalidKeyError(
            f'{setting} must be a string "BASE64KEY" or "KEYID:BASE64KEY", '
            f"not {type(entry).__name__}."
        )
    # Base64 never contains ':', so the first one (if any) ends the key id.
    key_id_text, sep, key_text = entry.partition(":")
    if not sep:
        return None, load_encryption_key(entry, setting=setting)
    # Only read with, so any id AuthHero can write is accepted, however long.
    key_id = parse_key_id(key_id_text.strip(), setting=f"the key id of {setting}", max_length=None)
    if key_id is None:
        raise InvalidKeyError(
            f"{setting} has an empty key id before ':'; drop the ':' or name the key id."
        )
    return key_id, load_encryption_key(key_text, setting=setting)


def fallback_entries(
    value: object, *, setting_name: str = "ENCRYPTION_KEY_FALLBACKS"
) -> list[object]:
    """The items of a fallbacks setting; refuses a bare string (a classic typo)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise InvalidKeyError(
            f"{setting_name} must be a list of strings, "
            f"not {type(value).__name__}. Wrap a single key in a list."
        )
    return list(value)


def fingerprint(secret: bytes) -> str:
    """A short, non-reversible name for a key: HMAC-SHA256 of a fixed label, 8 hex digits."""
    return hmac.new(secret, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:8]


@dataclass(frozen=True)
class Key:
    """One usable key. Its repr names the id and fingerprint, never the key bytes."""

    id: str | None
    fingerprint: str
    aead: AESGCM = field(repr=False, compare=False)

    @classmethod
    def from_secret(cls, key_id: str | None, secret: bytes) -> Key:
        return cls(id=key_id, fingerprint=fingerprint(secret), aead=AESGCM(secret))


@dataclass(frozen=True)
class KeyRing:
    """Every configured key, arranged for the codec's two questions.

    ``untagged`` is the order tried for values without a key id: the active key, then each
    fallback as listed. ``by_id`` answers tagged values, which only their own key may open.
    ``write_prefix`` is what every new value starts with. ``pad_payload`` writes the payload
    with its base64 ``=`` padding (``ENCRYPTION_PAD_PAYLOAD``): AuthHero 5.13 to 8.22.0 only
    read padded payloads, 8.22.1 and later write unpadded ones and read both, as this app does.
    ``open_first`` is the bound ``decrypt`` of the first untagged key (``None`` without one),
    the codec's hot path.
    """

    active: Key | None
    fallbacks: tuple[Key, ...]
    by_id: dict[str, Key]
    untagged: tuple[Key, ...]
    write_prefix: str
    pad_payload: bool = False
    open_first: Callable[[bytes, bytes, bytes | None], bytes] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.untagged:
            # Frozen: set once here, so every read skips three attribute lookups.
            object.__setattr__(self, "open_first", self.untagged[0].aead.decrypt)

    @classmethod
    def from_keys(
        cls, active: Key | None, fallbacks: Iterable[Key], *, pad_payload: bool = False
    ) -> KeyRing:
        fallbacks = tuple(fallbacks)
        everything = ((active,) if active else ()) + fallbacks
        by_id: dict[str, Key] = {}
        for key in everything:
            if key.id is None:
                continue
            if key.id in by_id:
                raise InvalidKeyError(
                    f"Key id {key.id!r} is used by more than one key in ENCRYPTION_KEY_ID and "
                    "ENCRYPTION_KEY_FALLBACKS; give each key its own id."
                )
            by_id[key.id] = key
        prefix = "enc:v1:"
        if active is not None and active.id is not None:
            prefix += active.id + ":"
        return cls(active, fallbacks, by_id, everything, prefix, pad_payload)

    @property
    def enabled(self) -> bool:
        """True when new values are encrypted (an active key is set)."""
        return self.active is not None


def parse_pad_payload(value: object) -> bool:
    """Validate ``ENCRYPTION_PAD_PAYLOAD``: ``True`` or ``False``, nothing that merely looks so."""
    if not isinstance(value, bool):
        raise InvalidKeyError(
            f"ENCRYPTION_PAD_PAYLOAD must be True or False, not {type(value).__name__}. Set it "
            "to True only while an AuthHero older than 8.22.1 reads the same database."
        )
    return value


@sensitive_variables()
def build_keyring(
    key: Any = None, key_id: Any = None, fallbacks: Any = None, pad_payload: Any = False
) -> KeyRing:
    """Build a key ring from raw setting values, raising ``InvalidKeyError`` on the first problem.

    ``None`` or ``""`` for ``key`` switches encryption off, as AuthHero's
    ``if (process.env.ENCRYPTION_KEY)`` does for an unset or empty environment variable.
    """
    active = None
    if key is not None and key != "":
        active = Key.from_secret(parse_key_id(key_id), load_encryption_key(key))
    older = [
        Key.from_secret(*parse_fallback(entry, index))
        for index, entry in enumerate(fallback_entries(fallbacks))
    ]
    return KeyRing.from_keys(active, older, pad_payload=parse_pad_payload(pad_payload))


# The ring get_keyring() built, or None until it builds one. Read hot paths may use
# ``keys.current_keyring or get_keyring()`` to skip a call per value; anything else calls
# get_keyring().
current_keyring: KeyRing | None = None


def get_keyring() -> KeyRing:
    """The key ring for the current settings, built on first use after any key setting changes."""
    global current_keyring
    ring = current_keyring
    if ring is None:
        ring = build_keyring(
            conf.ENCRYPTION_KEY,
            conf.ENCRYPTION_KEY_ID,
            conf.ENCRYPTION_KEY_FALLBACKS,
            conf.ENCRYPTION_PAD_PAYLOAD,
        )
        current_keyring = ring
    return ring


def reset_keyring(*, setting: str | None = None, **kwargs: Any) -> None:
    """Forget the cached key ring; connected to ``setting_changed`` in ``AppConfig.ready``."""
    global current_keyring
    if setting is None or setting in KEY_SETTINGS:
        current_keyring = None
