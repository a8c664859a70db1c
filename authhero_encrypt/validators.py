"""The validator every encrypted field carries: a value typed in is never taken as ciphertext.

The storage rule (:func:`authhero_encrypt.fields.base.store`) writes a value that already starts
with ``enc:v1:`` verbatim, once it decrypts, so that ``loaddata`` of a dump and ``bulk_create()``
of copied rows keep their bytes; the envelope field also opens ``enc:v1:`` and ``env:v1:``
values it is handed. Through a form or an API that is a decryption oracle: paste another row's
stored value, save, read the plaintext back. So the refusal lives in the fields' *validators*
(``Field.default_validators``), which every door that validates runs: ``full_clean()``, every
``ModelForm`` (the admin's too), Django REST framework's ``ModelSerializer`` (it copies a model
field's validators into the serializer field it builds) and django-import-export (which calls
``full_clean()``). ``save()``, ``bulk_create()`` and ``loaddata`` do not validate, and keep
storing verified ciphertext as they did.

What is refused is exactly what the code treats as ciphertext: a string starting with the
case-sensitive ``enc:v1:`` or ``env:v1:`` (AuthHero's prefix rule is exact). ``ENC:v1:...`` or
``" enc:v1:..."`` is not ciphertext to anybody: it is encrypted as the text it is and reads back
as typed, so it opens no other row and is accepted. (Django forms and DRF strip surrounding
whitespace before validating, so a pasted value with a leading space is refused there anyway.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from authhero_encrypt.crypto import PREFIX as ENC_V1_PREFIX
from authhero_encrypt.json_paths import PathTrie, parse_paths, path_text

__all__ = ["CIPHERTEXT_PREFIXES", "RefuseCiphertextValidator", "ciphertext_prefix"]

# Literal rather than imported from envelope.format, which pulls in the envelope codec.
ENV_V1_PREFIX = "env:v1:"
CIPHERTEXT_PREFIXES = (ENC_V1_PREFIX, ENV_V1_PREFIX)

_MESSAGE = (
    "This value%(where)s starts with '%(prefix)s', the prefix of stored ciphertext. "
    "Enter the secret itself: a value typed in is never taken as ciphertext."
)


def ciphertext_prefix(value: object) -> str | None:
    """The ciphertext prefix ``value`` starts with, or ``None`` (also for a non-string)."""
    if isinstance(value, str):
        for prefix in CIPHERTEXT_PREFIXES:
            if value.startswith(prefix):
                return prefix
    return None


@deconstructible(path="authhero_encrypt.validators.RefuseCiphertextValidator")
class RefuseCiphertextValidator:
    """Refuse a value that starts with ``enc:v1:`` or ``env:v1:``, with the code ``ciphertext``.

    Without ``encrypted_paths`` the value itself is checked (the string fields); with them, every
    string leaf of a JSON document at those paths, by the rules of ``JSONPathEncryptedField``
    (a ``*`` does not recurse, lists are not entered: what is not encrypted is never decrypted
    either, so a prefix there opens nothing). The message names the prefix and the path, never
    the value.
    """

    code = "ciphertext"

    def __init__(self, *, encrypted_paths: Sequence[str] | None = None) -> None:
        self.encrypted_paths = None if encrypted_paths is None else list(encrypted_paths)
        self._trie = (
            None if encrypted_paths is None else PathTrie.build(parse_paths(encrypted_paths))
        )

    def __call__(self, value: Any) -> None:
        if self._trie is None:
            self._refuse(ciphertext_prefix(value), "")
            return
        for path, leaf in self._trie.secrets(value):
            self._refuse(ciphertext_prefix(leaf), f" at '{path_text(path)}'")

    def _refuse(self, prefix: str | None, where: str) -> None:
        if prefix is not None:
            raise ValidationError(
                _MESSAGE, code=self.code, params={"where": where, "prefix": prefix}
            )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RefuseCiphertextValidator)
            and self.encrypted_paths == other.encrypted_paths
        )

    def __hash__(self) -> int:
        return hash(tuple(self.encrypted_paths or ()))
