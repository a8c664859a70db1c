"""Form fields that edit a secret without rendering it: write-only strings, masked JSON documents.

A :class:`WriteOnlySecretField` cleans to the new secret, :attr:`SecretAction.KEEP` or
:attr:`SecretAction.CLEAR`; a :class:`MaskedJSONField` shows a document with every encrypted
string replaced by :data:`~authhero_encrypt.admin.masking.MASK` and puts the current secrets
back where a mask comes back. :func:`secret_formfield` picks the one for a model field.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.contrib.admin import widgets as admin_widgets
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.text import capfirst

from authhero_encrypt.admin.masking import MASK, leaf_at, same_json
from authhero_encrypt.admin.widgets import WriteOnlySecretWidget
from authhero_encrypt.fields import JSONPathEncryptedField
from authhero_encrypt.json_paths import Path, PathTrie, path_text

__all__ = [
    "RETYPE",
    "MaskedJSONField",
    "SecretAction",
    "WriteOnlySecretField",
    "secret_formfield",
]

RETYPE = "<type it again: not shown after an error>"
"""Replaces a newly typed secret when a form is shown again after a validation error."""


class SecretAction(enum.Enum):
    """What a write-only secret input asks for when it carries no new value."""

    KEEP = "keep"
    CLEAR = "clear"


class WriteOnlySecretField(forms.MultiValueField):
    """Cleans to the new secret, :attr:`SecretAction.KEEP` or :attr:`SecretAction.CLEAR`.

    ``keep_current`` is on for an existing row (blank keeps the stored value) and off for a new
    one (blank is blank, and a required secret must be typed).
    """

    widget = WriteOnlySecretWidget
    default_error_messages = {
        "both": "Type a new value or tick “clear the stored value”, not both.",
        "required": "This field is required.",
        "required_clear": "This field is required, so it cannot be cleared; type a new value.",
    }

    def __init__(
        self,
        *,
        max_length: int | None = None,
        empty_value: str | None = "",
        required: bool = False,
        multiline: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("show_hidden_initial", None)
        kwargs.setdefault("widget", WriteOnlySecretWidget(multiline=multiline))
        self.multiline = multiline
        self.empty_value = empty_value
        self.secret_required = required
        self.keep_current = True
        super().__init__(
            (
                forms.CharField(max_length=max_length, required=False, strip=False),
                forms.BooleanField(required=False),
            ),
            require_all_fields=False,
            required=False,
            **kwargs,
        )

    def configure(self, *, keep_current: bool, help_text: Any) -> None:
        self.keep_current = keep_current
        cast(WriteOnlySecretWidget, self.widget).can_clear = keep_current
        self.help_text = help_text

    def compress(self, data_list: Sequence[Any]) -> Any:
        value, clear = (data_list[0] or "", bool(data_list[1])) if data_list else ("", False)
        if self.multiline:
            # Browsers submit every newline of a textarea as CRLF (the HTML form encoding),
            # whatever the pasted file held: back to LF, so a PEM reads back as the file.
            value = value.replace("\r\n", "\n")
        if value:
            if clear and self.keep_current:
                raise ValidationError(self.error_messages["both"], code="both")
            return value
        if not self.keep_current:
            if self.secret_required:
                raise ValidationError(self.error_messages["required"], code="required")
            return self.empty_value
        if not clear:
            return SecretAction.KEEP
        if self.secret_required:
            raise ValidationError(self.error_messages["required_clear"], code="required")
        return SecretAction.CLEAR

    def has_changed(self, initial: Any, data: Any) -> bool:
        if not isinstance(data, (list, tuple)) or len(data) < 2:
            return False
        return bool(data[0]) or (self.keep_current and bool(data[1]))


class MaskedJSONField(forms.JSONField):
    """A JSON document in which every encrypted-path string is shown as :data:`MASK`.

    ``current_document`` (set by the form for an existing row) is the document as the instance
    was loaded, decrypted; a mask that comes back is replaced by the current plaintext leaf, so
    the instance never holds ciphertext (``save_model`` and ``post_save`` receivers see what the
    application always sees). A document that comes back unchanged is not written at all, so it
    stays byte for byte as stored; a changed one is written whole, which encrypts its kept
    leaves afresh (and legacy plaintext leaves for the first time).
    """

    default_error_messages = {
        "invalid": (
            "Enter a valid JSON document. What you typed is not shown again, since it may hold "
            "secrets: the stored document is shown instead."
        ),
    }

    def __init__(self, *, path_trie: PathTrie, **kwargs: Any) -> None:
        kwargs["show_hidden_initial"] = False
        self.path_trie = path_trie
        self.current_document: Any = None
        self.has_current = False
        # Paths of the current document no configured key opened: their masks cannot be put
        # back, so the document is kept as stored or those paths get new values.
        self.unreadable_paths: frozenset[Path] = frozenset()
        super().__init__(**kwargs)

    def mask(self, document: Any) -> Any:
        return self.path_trie.transform(document, lambda _path, value: _masked(value))

    def bound_data(self, data: Any, initial: Any) -> Any:
        value = super().bound_data(data, initial)
        if isinstance(value, forms.fields.InvalidJSONInput):
            # Unparsable text cannot be masked: show the document as it was instead.
            return initial
        # A newly typed secret is not echoed; RETYPE makes sure it is not lost silently either.
        return self.path_trie.transform(value, lambda _path, leaf: leaf if leaf == MASK else RETYPE)

    def prepare_value(self, value: Any) -> Any:
        # Indented, so a nested secret such as configuration.client_secret is easy to find.
        return json.dumps(self.mask(value), ensure_ascii=False, indent=2, cls=self.encoder)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            submitted = self.to_python(data)
        except ValidationError:
            return True
        return not same_json(self.mask(initial), submitted)

    def clean(self, value: Any) -> Any:
        document = super().clean(value)
        if self.unreadable_paths and same_json(document, self.mask(self.current_document)):
            return self.current_document  # unchanged: the form keeps it as stored
        errors: list[ValidationError] = []

        def restore(path: Path, leaf: str) -> str:
            if leaf == RETYPE:
                errors.append(
                    ValidationError(
                        "Type the value of “%(path)s” again: it is not shown after an error.",
                        code="retype",
                        params={"path": path_text(path)},
                    )
                )
            elif leaf == MASK and path in self.unreadable_paths:
                errors.append(
                    ValidationError(
                        "“%(path)s” cannot be read with the configured keys, so it cannot be "
                        "kept while the document changes; type a new value or remove it.",
                        code="unreadable",
                        params={"path": path_text(path)},
                    )
                )
            elif leaf == MASK:
                kept = leaf_at(self.current_document, path) if self.has_current else None
                if isinstance(kept, str):
                    return kept
                errors.append(
                    ValidationError(
                        "“%(path)s” has no stored value to keep; type its value.",
                        code="no_stored_value",
                        params={"path": path_text(path)},
                    )
                )
            return leaf

        restored = self.path_trie.transform(document, restore)
        if errors:
            raise ValidationError(errors)
        return restored


def _masked(value: str) -> str:
    return value if value == RETYPE else MASK


def secret_formfield(db_field: Any, **kwargs: Any) -> WriteOnlySecretField | MaskedJSONField:
    """The form field that edits the encrypted ``db_field`` without rendering its value."""
    if isinstance(db_field, JSONPathEncryptedField):
        # Any widget is fine (it renders the masked document); another form class is not.
        kwargs["form_class"] = MaskedJSONField
        kwargs.setdefault("widget", admin_widgets.AdminTextareaWidget)
        return cast(MaskedJSONField, db_field.formfield(path_trie=db_field.path_trie, **kwargs))
    # Neither a custom widget nor form class: either could render the value.
    return WriteOnlySecretField(
        max_length=db_field.max_length,
        multiline=isinstance(db_field, models.TextField),
        empty_value=None if db_field.null else "",
        required=not db_field.blank,
        label=kwargs.get("label") or capfirst(db_field.verbose_name),
        help_text=kwargs.get("help_text") or db_field.help_text,
        error_messages=kwargs.get("error_messages"),
    )
