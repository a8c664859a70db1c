"""Per-row envelope contexts: values bound to something of their row (a tenant id).

``EnvelopeEncryptedTextField(envelope_context=callable)`` binds each value to
``"<field context>@<callable(instance)>"``, in the payload's associated data and the wrap's
context. Neither ``get_prep_value`` nor ``from_db_value`` sees the instance, so the field
seals in ``pre_save`` (handing the sealed text on as :class:`Sealed`) and reads leave the
stored text as :class:`Sealed` until :class:`EnvelopeAttribute` opens it on first access, with
the instance in hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.fields.read_errors import EncryptedAttribute

if TYPE_CHECKING:
    from django.db.models import Model

__all__ = ["EnvelopeAttribute", "Sealed"]


class Sealed(str):
    """``env:v1`` text already sealed for its row (written by ``pre_save``, or read from the
    database and not opened yet); the field stores it as it is."""

    __slots__ = ()


class EnvelopeAttribute(EncryptedAttribute):
    """The model attribute of an envelope field: opens a row-bound value on first access.

    A data descriptor (it defines ``__set__``), so it is asked even once the value sits in the
    instance's ``__dict__``.
    """

    def __set__(self, instance: Model, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: Model | None, cls: type | None = None) -> Any:
        value = super().__get__(instance, cls)
        if instance is None or not isinstance(value, Sealed):
            return value
        field: Any = self.field
        try:
            plaintext = field.open_for(instance, str(value))
        except EncryptionError as exc:
            raise field.row_error(exc, instance) from None
        instance.__dict__[field.attname] = plaintext
        return plaintext
