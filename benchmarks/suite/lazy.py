"""A prototype, measured but not adopted: decrypt an instance's secret on first attribute access.

``from_db_value`` cannot tell an instance load from ``values()``: Django hands it the same
``Col`` object (``field.cached_col``) on both paths, and on an ``annotate(x=F("secret"))`` of an
instance load too. The one place that knows is the compiler, when it asks each selected column
for its converters: ``klass_info["select_fields"]`` lists the positions that become model
fields. This prototype reads that from the calling frame (``SQLCompiler.get_converters``), once
per column per query, and for those positions of a query selecting the model's default
columns (``values()`` sets ``klass_info`` too) only converts to a ``Sealed`` marker that a data
descriptor decrypts on first access. Any other caller, or a Django whose frames differ, gets
the eager converter.

Why it is not in the package: see "Reads that do not touch the secret" in docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from typing import Any

from django.db.models import Field
from django.db.models.query_utils import DeferredAttribute
from django.db.models.sql.compiler import SQLCompiler

from authhero_encrypt import keys
from authhero_encrypt.crypto import PREFIX, decrypt_with
from authhero_encrypt.exceptions import DecryptionError
from authhero_encrypt.fields import EncryptedCharField
from authhero_encrypt.fields.base import EncryptedStringMixin, rewrap

_GET_CONVERTERS = SQLCompiler.get_converters.__code__


class Sealed:
    """The stored text of a secret that has not been read yet; never leaves the instance."""

    __slots__ = ("stored",)

    def __init__(self, stored: str) -> None:
        self.stored = stored

    def __repr__(self) -> str:
        return "<Sealed enc:v1 value>"


class SealedAttribute(DeferredAttribute):
    """Decrypts a ``Sealed`` value on first read and keeps the plaintext on the instance."""

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if value.__class__ is Sealed:
            value = self.field.unseal(instance, value.stored)  # type: ignore[attr-defined]
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        # A data descriptor, so that __get__ runs even though the value is in __dict__.
        instance.__dict__[self.field.attname] = value


def _loads_an_instance_field(field: Any) -> bool:
    """Whether the compiler asking for converters will put this column on a model instance."""
    frame = sys._getframe(2)
    for _ in range(3):
        if frame is None:
            return False
        if frame.f_code is _GET_CONVERTERS:
            break
        frame = frame.f_back  # type: ignore[assignment]
    else:
        return False
    found = frame.f_locals
    compiler, position, expression = found.get("self"), found.get("i"), found.get("expression")
    klass_info = getattr(compiler, "klass_info", None)
    # klass_info is set for values() too (Django 5.2); only default columns become fields.
    if not klass_info or not compiler.query.default_cols:  # type: ignore[union-attr]
        return False
    if position not in klass_info["select_fields"]:
        return False
    select = compiler.select  # type: ignore[union-attr]
    return (
        position < len(select)
        and select[position][0] is expression
        and getattr(expression, "target", None) is field
    )


class LazyDecryptMixin:
    """The prototype's behaviour for an encrypted string field."""

    descriptor_class = SealedAttribute

    def get_db_converters(self, connection: Any) -> list[Any]:
        if _loads_an_instance_field(self):
            return [self.seal]
        # Not super(): install_on_package_fields() copies this method onto another class.
        return Field.get_db_converters(self, connection)  # type: ignore[arg-type]

    def seal(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or not value.startswith(PREFIX):
            return value
        return Sealed(value)

    def unseal(self, instance: Any, stored: str) -> str:
        try:
            return decrypt_with(keys.current_keyring or keys.get_keyring(), stored)
        except DecryptionError as exc:
            label = f"{instance._meta.label}.{self.name}"  # type: ignore[attr-defined]
            raise rewrap(exc, f"Cannot read {label} (primary key {instance.pk!r})") from exc


class LazyEncryptedCharField(LazyDecryptMixin, EncryptedCharField):  # type: ignore[misc]
    pass


def install_on_package_fields() -> None:
    """Give EncryptedCharField and EncryptedTextField the prototype's behaviour.

    Called by ``pytest -p benchmarks.suite.lazy_plugin`` before the test models are defined, to
    run the existing tests against the prototype.
    """
    for name in ("descriptor_class", "get_db_converters", "seal", "unseal"):
        setattr(EncryptedStringMixin, name, LazyDecryptMixin.__dict__[name])
