"""Rows no configured key opens: loaded for the change page without their unreadable secrets.

A lost key must not make a row impossible to repair. When loading a row for its change page
fails to decrypt, the row is loaded again with its secrets deferred, and each secret is read on
its own from the stored text the admin's queryset reads beside it: those that open are set on
the instance as usual, those that do not are set empty and named in :data:`UNREADABLE_ATTR`.
The form then shows them as ``unreadable`` and keeps them byte for byte unless a new value is
typed or they are cleared (:mod:`~authhero_encrypt.admin.forms`).

Errors that still escape a view are raised again without their frames
(:func:`raise_without_frames`): Django's technical 500 page (``DEBUG=True``) and
``AdminEmailHandler`` print the locals of every frame, and the ORM's frames hold the row as
stored, ciphertext included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from django.db import connections

from authhero_encrypt.crypto import PREFIX, decrypt_with
from authhero_encrypt.envelope.format import PREFIX as ENVELOPE_PREFIX
from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.fields import JSONPathEncryptedField
from authhero_encrypt.fields.read_errors import without_frames
from authhero_encrypt.inventory import load_json
from authhero_encrypt.json_paths import Path
from authhero_encrypt.keys import get_keyring

if TYPE_CHECKING:
    from django.db import models

__all__ = [
    "UNREADABLE_ATTR",
    "load_leniently",
    "raise_without_frames",
    "shielded",
    "unreadable_of",
]

UNREADABLE_ATTR = "_authhero_unreadable"
"""On an instance: ``{field name: paths}`` of the secrets that did not open (``()`` for a
scalar field, the unreadable paths for a document)."""


def unreadable_of(obj: Any) -> dict[str, tuple[Path, ...]]:
    return dict(getattr(obj, "__dict__", {}).get(UNREADABLE_ATTR, {}))


def load_leniently(obj: models.Model, fields: list[Any], raw_of: Any) -> models.Model:
    """Set every secret of ``obj`` (loaded with them deferred) from its stored text
    ``raw_of(field)``; the ones that do not open are set empty and recorded."""
    unreadable: dict[str, tuple[Path, ...]] = {}
    connection = connections[obj._state.db or "default"]
    for field in fields:
        raw = raw_of(field)
        if isinstance(field, JSONPathEncryptedField):
            value, paths = _document(field, raw)
            if paths:
                unreadable[field.name] = paths
        else:
            try:
                value = field.from_db_value(raw, None, connection)
            except EncryptionError:
                unreadable[field.name] = ()
                value = None if field.null else ""
        obj.__dict__[field.attname] = value
    obj.__dict__[UNREADABLE_ATTR] = unreadable
    return obj


def _document(field: Any, raw: Any) -> tuple[Any, tuple[Path, ...]]:
    """The document with every leaf that opens decrypted, and the paths of those that do not
    (set to ``""`` here: the form never writes them back, see ``MaskedJSONField``)."""
    document = load_json(raw) if raw is not None else None
    if not isinstance(document, dict):
        return document, ()
    try:
        ring = get_keyring()
    except EncryptionError:
        ring = None
    failed: list[Path] = []

    def decrypt(at: Path, key: str, stored: str) -> str:
        if not stored.startswith((PREFIX, ENVELOPE_PREFIX)):
            return stored  # legacy plaintext
        try:
            if ring is None:
                raise EncryptionError("The key settings are invalid.")
            return decrypt_with(ring, stored)
        except EncryptionError:
            failed.append((*at, key))
            return ""

    field.path_trie.replace_in_place(document, decrypt)
    return document, tuple(failed)


def raise_without_frames(exc: EncryptionError) -> NoReturn:
    """Raise ``exc`` again from here, with the frames below (and those of its causes) dropped."""
    raise without_frames(exc) from exc.__cause__


def shielded(view: Callable[..., Any], *args: Any) -> Any:
    """``view(*args)``, with an encryption error that escapes it raised without its frames."""
    try:
        return view(*args)
    except EncryptionError as exc:
        raise_without_frames(exc)
