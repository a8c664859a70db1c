"""The model form side of write-only editing: the form mixin, and which secrets a save keeps.

The admin mixin adds :class:`EncryptedFieldsFormMixin` to every form it builds
(:func:`with_secret_handling`); :func:`untouched_secrets` tells its ``save_model`` which
encrypted fields to leave out of the ``UPDATE``, so they keep their stored bytes.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from django.db import models

from authhero_encrypt.admin.badges import (
    UNREADABLE,
    details,
    field_status,
    leaf_statuses,
    unreadable_status,
    with_failures,
)
from authhero_encrypt.admin.formfields import (
    MaskedJSONField,
    SecretAction,
    WriteOnlySecretField,
    secret_formfield,
)
from authhero_encrypt.admin.lookups import model_secret_fields
from authhero_encrypt.admin.masking import MASK, same_json
from authhero_encrypt.admin.stored import stored_value
from authhero_encrypt.admin.unreadable import unreadable_of

if TYPE_CHECKING:
    from django import forms

    _FormBase = forms.ModelForm[Any]
else:
    _FormBase = object

__all__ = ["EncryptedFieldsFormMixin", "untouched_secrets", "with_secret_handling"]


class EncryptedFieldsFormMixin(_FormBase):
    """Model form side of the write-only editing; the admin mixin adds it to every form it builds.

    After validation ``kept_secrets`` names the encrypted fields the form leaves as stored: they
    are not in ``cleaned_data``, so the instance keeps the value it was loaded with, and the
    admin leaves them out of the ``UPDATE``.

    A form field declared on the form class for an encrypted model field (``client_secret =
    forms.CharField()``) takes precedence over ``formfield_for_dbfield`` in Django, and would
    render the plaintext; it is replaced by the write-only (or masked) field, keeping its label
    and help text.
    """

    kept_secrets: set[str]
    loaded_secrets: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept_secrets = set()
        instance = self.instance
        adding = instance._state.adding
        secret_fields = model_secret_fields(type(instance))
        for model_field in secret_fields:
            declared = self.fields.get(model_field.name)
            if declared is not None and not isinstance(
                declared, (WriteOnlySecretField, MaskedJSONField)
            ):
                kept = {"label": declared.label, "help_text": declared.help_text}
                self.fields[model_field.name] = secret_formfield(
                    model_field, **{key: value for key, value in kept.items() if value}
                )
        # What the instance was loaded with, so a save can tell untouched secrets that are not
        # in the form (read-only, excluded) from ones code has changed since.
        self.loaded_secrets = {}
        if not adding:
            deferred = instance.get_deferred_fields()
            for model_field in secret_fields:
                if model_field.attname not in deferred:
                    value = model_field.value_from_object(instance)
                    self.loaded_secrets[model_field.name] = copy.deepcopy(value)
        unreadable = unreadable_of(instance)
        for name, field in self.fields.items():
            if isinstance(field, WriteOnlySecretField):
                model_field = instance._meta.get_field(name)
                if adding:
                    field.configure(keep_current=False, help_text=field.help_text)
                    continue
                state, label = field_status(model_field, stored_value(instance, model_field))
                if name in unreadable and state != UNREADABLE:
                    state, label = unreadable_status()
                field.configure(
                    keep_current=True,
                    help_text=_join(
                        f"Currently: {label}.",
                        "Leave blank to keep the current value; tick “clear the stored value” "
                        "to remove it.",
                        field.help_text,
                    ),
                )
            elif isinstance(field, MaskedJSONField):
                model_field = instance._meta.get_field(name)
                intro = f"Encrypted values show as {MASK}: leave one as it is to keep it, or "
                intro += "type a new value to replace it."
                if not adding:
                    field.has_current = True
                    field.current_document = copy.deepcopy(model_field.value_from_object(instance))
                    field.unreadable_paths = frozenset(unreadable.get(name, ()))
                    stored = stored_value(instance, model_field)
                    leaves = with_failures(
                        leaf_statuses(field.path_trie, stored), field.unreadable_paths
                    )
                    if leaves:
                        intro = f"Currently: {details(leaves)}. {intro}"
                field.help_text = _join(intro, field.help_text)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned: dict[str, Any] = self.cleaned_data
        for name, field in self.fields.items():
            if name not in cleaned:
                continue
            value = cleaned[name]
            if isinstance(field, WriteOnlySecretField):
                if value is SecretAction.KEEP:
                    del cleaned[name]
                    self.kept_secrets.add(name)
                elif value is SecretAction.CLEAR:
                    cleaned[name] = field.empty_value
            elif (
                isinstance(field, MaskedJSONField)
                and field.has_current
                and same_json(value, field.current_document)
            ):
                del cleaned[name]
                self.kept_secrets.add(name)
        return cleaned


def untouched_secrets(obj: models.Model, form: Any) -> set[str]:
    """Encrypted fields a save of ``obj`` edited through ``form`` must not write.

    Those the form kept, and those outside the form whose value is still the loaded one.
    """
    untouched = set(getattr(form, "kept_secrets", ()))
    fields = getattr(form, "fields", {})
    for name, loaded in getattr(form, "loaded_secrets", {}).items():
        field: Any = obj._meta.get_field(name)
        if name not in fields and field.value_from_object(obj) == loaded:
            untouched.add(name)
    return untouched


def with_secret_handling(form_class: type[Any]) -> type[Any]:
    """``form_class`` with :class:`EncryptedFieldsFormMixin` in front, unless it has it already."""
    if issubclass(form_class, EncryptedFieldsFormMixin):
        return form_class
    return type(form_class.__name__, (EncryptedFieldsFormMixin, form_class), {})


def _join(*parts: Any) -> str:
    return " ".join(str(part) for part in parts if part)
