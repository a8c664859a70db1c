"""``EncryptedFieldsSerializerMixin``: a ``ModelSerializer`` whose secrets are write-only.

Every serializer field whose source is an encrypted model field is handled, whether the
``ModelSerializer`` built it or the serializer declares it:

* encrypted strings are write-only (never in a response) unless the model field is listed in
  ``Meta.readable_secrets``;
* a ``JSONPathEncryptedField`` is shown without the strings at its encrypted paths (plaintext
  keys stay), unless listed there; a field declared by hand that is not a ``SecretJSONField`` is
  made write-only instead, since it cannot leave the secrets out;
* typed-in ciphertext (``enc:v1:``, ``env:v1:``, also at a JSON secret leaf) is refused with the
  code ``ciphertext``;
* on an update a secret is not required: leaving it out keeps the stored value, and a JSON
  document that leaves out a secret leaf keeps the stored leaf (see ``keep_stored_secrets``);
* a form the browsable API shows again after an error does not echo the secrets sent;
* nested serializers built for ``depth`` get the mixin too;
* ``fields = "__all__"`` leaves blind index columns out (equal values have equal tags);
* a source made unique by a blind index gets DRF's ``UniqueValidator`` (``unique=True``) or
  the serializer a ``UniqueTogetherValidator`` (``unique_with``): see :mod:`.unique`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from authhero_encrypt.admin.lookups import model_secret_fields
from authhero_encrypt.blind_index.field import BlindIndexField
from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.integrations.drf.fields import (
    SecretCharField,
    SecretJSONField,
    ciphertext_validator,
    keep_stored_secrets,
)
from authhero_encrypt.integrations.drf.unique import unique_validators, unique_with_validators

if TYPE_CHECKING:
    from rest_framework.fields import Field

__all__ = ["EncryptedFieldsSerializerMixin", "encrypted_source"]


def encrypted_source(model: type[models.Model] | None, field: Field, name: str) -> Any:
    """The encrypted model field ``field`` (named ``name``) reads and writes, or ``None``.

    Only a plain source (``client_secret``, not ``client.client_secret``) is matched: a dotted
    source goes through a related object, whose own serializer decides. A field not bound yet
    has no source unless one was given: then it is its name.
    """
    source = getattr(field, "source", None) or name
    if model is None or not isinstance(source, str) or source == "*" or "." in source:
        return None
    try:
        model_field = model._meta.get_field(source)
    except Exception:  # FieldDoesNotExist, or a source that is a method or property
        return None
    return model_field if isinstance(model_field, EncryptedFieldMixin) else None


def _model_field(model: type[models.Model], name: str) -> Any:
    try:
        return model._meta.get_field(name)
    except Exception:  # FieldDoesNotExist: a declared field or a property
        return None


class EncryptedFieldsSerializerMixin:
    """Put it before ``serializers.ModelSerializer``; see the module docstring for what it does.

    ``Meta.readable_secrets``: names of encrypted model fields whose decrypted value responses
    include (an admin-only endpoint that must show a client secret once, for instance).
    """

    if TYPE_CHECKING:
        Meta: Any
        instance: Any

    def readable_secrets(self) -> frozenset[str]:
        model = self.Meta.model
        names = frozenset(getattr(self.Meta, "readable_secrets", ()) or ())
        secret = {field.name for field in model_secret_fields(model)}
        unknown = sorted(names - secret)
        if unknown:
            raise ImproperlyConfigured(
                f"Meta.readable_secrets of {type(self).__name__} names {', '.join(unknown)}, "
                f"which {'is' if len(unknown) == 1 else 'are'} not encrypted fields of "
                f"{model._meta.label}; list only encrypted model fields."
            )
        return names

    def build_standard_field(
        self, field_name: str, model_field: Any
    ) -> tuple[type, dict[str, Any]]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)  # type: ignore[misc]
        if isinstance(model_field, JSONPathEncryptedField):
            return SecretJSONField, {**kwargs, "path_trie": model_field.path_trie}
        if isinstance(model_field, EncryptedFieldMixin):
            kwargs.pop("choices", None)  # a ChoiceField's errors would repeat the value sent
            validators = unique_validators(model_field)
            if validators:
                kwargs["validators"] = [*kwargs.get("validators", ()), *validators]
            return SecretCharField, kwargs
        return field_class, kwargs

    def build_nested_field(
        self, field_name: str, relation_info: Any, nested_depth: int
    ) -> tuple[type, dict[str, Any]]:
        field_class, kwargs = super().build_nested_field(  # type: ignore[misc]
            field_name, relation_info, nested_depth
        )
        nested = type(field_class.__name__, (EncryptedFieldsSerializerMixin, field_class), {})
        return nested, kwargs

    def get_default_field_names(self, declared_fields: Any, model_info: Any) -> list[str]:
        # fields = "__all__" (or exclude) leaves blind index tags out: equal values have equal
        # tags, so a response listing them tells a client which rows share a secret.
        names: list[str] = super().get_default_field_names(declared_fields, model_info)  # type: ignore[misc]
        model = self.Meta.model
        return [
            name
            for name in names
            if name in declared_fields or not isinstance(_model_field(model, name), BlindIndexField)
        ]

    def get_validators(self) -> list[Any]:
        validators: list[Any] = super().get_validators()  # type: ignore[misc]
        if getattr(self.Meta, "validators", None) is not None:
            return validators  # declared explicitly: DRF adds nothing either
        fields = self.fields.items()  # type: ignore[attr-defined]
        return [*validators, *unique_with_validators(self.Meta.model, fields)]

    def get_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = super().get_fields()  # type: ignore[misc]
        model = self.Meta.model
        readable = self.readable_secrets()
        for name, field in fields.items():
            model_field = encrypted_source(model, field, name)
            if model_field is None:
                continue
            shown = model_field.name in readable
            if isinstance(field, SecretJSONField):
                field.hide_secrets = not shown
            else:
                if not isinstance(field, SecretCharField):
                    trie = getattr(model_field, "path_trie", None)
                    field.validators = [*field.validators, ciphertext_validator(trie)]
                if not shown:
                    # Also when read-only: then the field is neither read nor written.
                    field.write_only = True
            if self.instance is not None:
                # Responses never show the secret, so an update must be able to leave it out.
                field.required = False
        return fields

    def to_internal_value(self, data: Any) -> Any:
        validated = super().to_internal_value(data)  # type: ignore[misc]
        instance = self.instance
        if not isinstance(instance, models.Model):
            return validated
        for field in self.fields.values():  # type: ignore[attr-defined]
            if isinstance(field, SecretJSONField) and field.source in validated:
                stored = getattr(instance, field.source, None)
                validated[field.source] = keep_stored_secrets(
                    field.path_trie, validated[field.source], stored
                )
        return validated

    def get_initial(self) -> Any:
        # Shown in the browsable API's form after an error: never echo a secret that was sent.
        initial = super().get_initial()  # type: ignore[misc]
        model = self.Meta.model
        for name, field in self.fields.items():  # type: ignore[attr-defined]
            if name in initial and encrypted_source(model, field, name) is not None:
                del initial[name]
        return initial
