"""Status badges: what a stored value is (encrypted, legacy plaintext, empty, malformed), as HTML.

An envelope field's values (``env:v1``) get their own label, ``envelope, <provider> <key id>``:
:func:`field_status` picks the rules by field.

The classification reads the stored text alone: nothing is decrypted, so it is cheap and it also
describes values that no configured key can open. Only :func:`badge` builds HTML; the rest is pure
logic over strings and parsed documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

from authhero_encrypt.crypto import IV_BYTES, TAG_BYTES, is_encrypted, parse_stored
from authhero_encrypt.envelope.format import LOCAL
from authhero_encrypt.envelope.format import PREFIX as ENVELOPE_PREFIX
from authhero_encrypt.envelope.format import parse as parse_envelope
from authhero_encrypt.exceptions import DecryptionError, EncryptionError
from authhero_encrypt.fields import EnvelopeEncryptedTextField
from authhero_encrypt.inventory import NO_KEY_ID
from authhero_encrypt.json_paths import Path, PathTrie, path_text
from authhero_encrypt.keys import get_keyring

__all__ = [
    "MALFORMED",
    "UNREADABLE",
    "badge",
    "combined_status",
    "details",
    "document_status",
    "envelope_status",
    "field_status",
    "leaf_statuses",
    "secret_status",
    "unreadable_status",
    "with_failures",
]

MALFORMED = "malformed"
"""The badge of a prefixed value that does not parse; what follows ``enc:v1:`` is never shown."""
UNREADABLE = "unreadable"
"""The badge of a value no configured key opens: its key id is not configured, or the page
tried to decrypt it and failed."""


def secret_status(stored: str | None) -> tuple[str, str]:
    """``(state, label)`` for one stored value.

    ``state`` is ``encrypted``, ``legacy``, ``empty``, ``malformed`` or ``unreadable`` (its key id
    is not configured). Works on the stored text and the key settings alone (nothing is
    decrypted), so it is cheap and it also describes values that no configured key can open.
    """
    if stored is None or stored == "":
        return "empty", "empty"
    if not is_encrypted(stored):
        return "legacy", "legacy plaintext"
    try:
        # A key id is echoed into a page only from a value that parses as a whole: whatever
        # else follows the prefix may be a secret.
        key_id, raw = parse_stored(stored)
    except DecryptionError:
        return MALFORMED, MALFORMED
    if not _ring_opens(key_id):
        return UNREADABLE, _unreadable_label(key_id)
    if len(raw) == IV_BYTES + TAG_BYTES:
        # GCM does not pad: an IV and a tag alone hold the empty string.
        return "empty", "empty"
    return "encrypted", f"encrypted, key {key_id}" if key_id else f"encrypted, {NO_KEY_ID}"


def _ring_opens(key_id: str | None) -> bool:
    """Whether the configured keys may open a value under ``key_id`` (``None``: no id), as far
    as the id tells; only decrypting tells the rest (a tampered value, a wrong key)."""
    try:
        ring = get_keyring()
    except EncryptionError:
        return False  # invalid key settings: nothing can be read
    return key_id in ring.by_id if key_id is not None else bool(ring.untagged)


def _unreadable_label(key_id: str | None) -> str:
    if key_id is None:
        return "unreadable, no key configured"
    return f"unreadable, key {key_id} not configured"


def unreadable_status() -> tuple[str, str]:
    """The badge of a value the page tried to decrypt and could not."""
    return UNREADABLE, "unreadable, no configured key opens it"


def envelope_status(stored: str | None) -> tuple[str, str]:
    """``(state, label)`` for one stored value of an envelope field.

    An ``env:v1`` value is ``envelope, <provider> <key id>`` (the key id a ring key id or a KMS
    key ARN, shown only from a value that parses as a whole); one that does not parse is
    ``malformed``. Anything else is judged as in any encrypted column: an ``enc:v1`` value (the
    column was an ``EncryptedTextField``) or legacy plaintext, both sealed on the next save.
    """
    if stored is None or not stored.startswith(ENVELOPE_PREFIX):
        return secret_status(stored)
    try:
        envelope = parse_envelope(stored)
    except DecryptionError:
        return MALFORMED, MALFORMED
    if envelope.provider == LOCAL and not _ring_opens(envelope.key_id or None):
        return UNREADABLE, _unreadable_label(envelope.key_id or None)
    return "encrypted", f"envelope, {envelope.provider} {envelope.key_id or NO_KEY_ID}"


def field_status(field: Any, stored: str | None) -> tuple[str, str]:
    """``(state, label)`` for one stored value of the scalar encrypted ``field``."""
    if isinstance(field, EnvelopeEncryptedTextField):
        return envelope_status(stored)
    return secret_status(stored)


def leaf_statuses(trie: PathTrie, document: Any) -> list[tuple[Path, str, str]]:
    """``(path, state, label)`` for every encrypted-path string of a stored document."""
    return [(path, *secret_status(value)) for path, value in trie.secrets(document)]


def document_status(trie: PathTrie, document: Any) -> tuple[str, str]:
    """One ``(state, label)`` for a stored document: legacy plaintext anywhere wins."""
    return combined_status(leaf_statuses(trie, document))


def combined_status(leaves: Sequence[tuple[Path, str, str]]) -> tuple[str, str]:
    """One ``(state, label)`` for the leaves :func:`leaf_statuses` found in a document."""
    # A malformed leaf blocks writing the document; legacy plaintext is encrypted by the next one.
    if any(state == MALFORMED for _, state, _ in leaves):
        return MALFORMED, MALFORMED
    if any(state == UNREADABLE for _, state, _ in leaves):
        return UNREADABLE, "unreadable"
    if any(state == "legacy" for _, state, _ in leaves):
        return "legacy", "legacy plaintext"
    labels = {label for _, state, label in leaves if state == "encrypted"}
    if not labels:
        return "empty", "empty"
    if len(labels) == 1:
        return "encrypted", labels.pop()
    return "encrypted", "encrypted, several keys"


def with_failures(
    leaves: Sequence[tuple[Path, str, str]], failed: Iterable[Path]
) -> list[tuple[Path, str, str]]:
    """``leaves`` with those the page failed to decrypt (``failed``) marked unreadable."""
    failed = set(failed)
    return [
        (path, *unreadable_status())
        if path in failed and state != UNREADABLE
        else (path, state, label)
        for path, state, label in leaves
    ]


def details(leaves: Iterable[tuple[Path, str, str]]) -> str:
    """The label of every leaf, by path (``options.client_secret: encrypted; ...``)."""
    return "; ".join(f"{path_text(path)}: {label}" for path, _, label in leaves)


def badge(state: str, label: str, title: str = "") -> SafeString:
    """The status as HTML; ``title`` (per-path details of a document) becomes its tooltip."""
    if title:
        return format_html(
            '<span class="authhero-status authhero-status-{}" title="{}">{}</span>',
            state,
            title,
            label,
        )
    return format_html('<span class="authhero-status authhero-status-{}">{}</span>', state, label)
