"""Serializer fields for encrypted model fields: ciphertext refused, secrets kept out of responses.

Django REST framework never calls a model field's ``validate()``, so the refusal of typed-in
ciphertext there does not reach an API: :class:`SecretCharField` and :class:`SecretJSONField`
refuse it themselves, before any other validator runs, with the code ``ciphertext``. Storing a
pasted ``enc:v1:`` value verbatim and reading it back would hand out another row's plaintext.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from authhero_encrypt.crypto import PREFIX as ENC_PREFIX
from authhero_encrypt.envelope.format import PREFIX as ENV_PREFIX
from authhero_encrypt.json_paths import PathTrie, path_text

__all__ = [
    "CIPHERTEXT_PREFIXES",
    "SecretCharField",
    "SecretJSONField",
    "ciphertext_validator",
    "keep_stored_secrets",
    "refuse_ciphertext",
    "without_secrets",
]

CIPHERTEXT_PREFIXES = (ENC_PREFIX, ENV_PREFIX)


def refuse_ciphertext(value: Any, path_trie: PathTrie | None = None) -> None:
    """Raise ``ValidationError`` (code ``ciphertext``) for stored ciphertext typed in as a value.

    ``value`` is a string, or with ``path_trie`` a JSON document whose secret leaves are looked
    at. The message names the prefix and the path, never the value.
    """
    leaves: list[tuple[tuple[str, ...], Any]]
    leaves = [((), value)] if path_trie is None else list(path_trie.secrets(value))
    for path, leaf in leaves:
        if isinstance(leaf, str) and leaf.startswith(CIPHERTEXT_PREFIXES):
            where = f" at '{path_text(path)}'" if path else ""
            raise serializers.ValidationError(
                f"This value{where} starts with '{leaf[:7]}', the prefix of stored ciphertext. "
                "Enter the secret itself: a value typed in is never taken as ciphertext.",
                code="ciphertext",
            )


def ciphertext_validator(path_trie: PathTrie | None = None) -> Callable[[Any], None]:
    """:func:`refuse_ciphertext` as a validator, for a serializer field declared by hand."""

    def validate(value: Any) -> None:
        refuse_ciphertext(value, path_trie)

    return validate


def without_secrets(node: PathTrie, document: Any) -> Any:
    """``document`` without the strings at encrypted paths (the keys are left out)."""
    if not isinstance(document, dict):
        return document
    shown: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, str) and node.is_secret(key):
            continue
        child = node.child(key)
        shown[key] = value if child is None else without_secrets(child, value)
    return shown


def keep_stored_secrets(node: PathTrie, submitted: Any, stored: Any) -> Any:
    """``submitted`` with the secret strings of ``stored`` it leaves out put back.

    Responses never show secrets, so a client that sends back the document it read, with a
    plaintext key changed, must not erase them. A key present in ``submitted`` wins (``null``
    included), and a secret is only put back into an object ``submitted`` still has.
    """
    if not isinstance(submitted, dict) or not isinstance(stored, dict):
        return submitted
    merged = dict(submitted)
    for key, value in stored.items():
        if key in merged:
            child = node.child(key)
            if child is not None:
                merged[key] = keep_stored_secrets(child, merged[key], value)
        elif isinstance(value, str) and node.is_secret(key):
            merged[key] = value
    return merged


class SecretCharField(serializers.CharField):  # type: ignore[misc]
    """A ``CharField`` for an encrypted string: ciphertext refused, input as typed, password style.

    Whitespace is kept (a secret is what was typed), and the browsable API shows a password input.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("style", {"input_type": "password"})
        super().__init__(**kwargs)

    def run_validators(self, value: Any) -> None:
        # First and alone: a ciphertext is refused for what it is, whatever else is wrong.
        refuse_ciphertext(value)
        super().run_validators(value)


class SecretJSONField(serializers.JSONField):  # type: ignore[misc]
    """A ``JSONField`` for a ``JSONPathEncryptedField``: the document without its secrets.

    Responses leave the strings at encrypted paths out (``hide_secrets``, on unless the field is
    opted in with ``Meta.readable_secrets``); the plaintext keys are shown. Writes take secrets,
    refuse ciphertext at any secret leaf, and (on an update, through the serializer mixin) keep
    the stored secrets a document leaves out.
    """

    def __init__(self, *, path_trie: PathTrie, hide_secrets: bool = True, **kwargs: Any) -> None:
        self.path_trie = path_trie
        self.hide_secrets = hide_secrets
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> Any:
        if self.hide_secrets:
            value = without_secrets(self.path_trie, value)
        return super().to_representation(value)

    def run_validators(self, value: Any) -> None:
        refuse_ciphertext(value, self.path_trie)
        super().run_validators(value)
