"""Django's field and lookup classes, generic in their types as django-stubs declares them.

django-stubs types a model attribute from its field class's two type parameters (the type
``__set__`` takes, the type ``__get__`` returns) and the class's ``_pyi_private_set_type`` /
``_pyi_private_get_type``: a subclass of the bare ``CharField`` is ``CharField[Any, Any]``, so
its attribute would be ``Any``. The encrypted fields subclass these names with their own type
parameters instead, so they type as ``CharField``, ``TextField`` and ``JSONField`` do (``str``,
``str | None`` with ``null=True``, the document type for JSON).

Django's classes are not subscriptable at run time (django-stubs-ext's ``monkeypatch()`` makes
them so), so at run time a subscript of these names is the Django class itself: the encrypted
fields' method resolution order is exactly Django's, and nothing here runs per query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

__all__ = ["_GT", "_ST", "CharField", "JSONField", "Lookup", "TextField"]

if TYPE_CHECKING:
    from django.db.models import CharField, JSONField, Lookup, TextField
    from typing_extensions import TypeVar as DefaultTypeVar

    # As django-stubs' JSONField: a bare annotation (``EncryptedCharField``) means [Any, Any].
    _ST = DefaultTypeVar("_ST", contravariant=True, default=Any)
    _GT = DefaultTypeVar("_GT", covariant=True, default=Any)
else:
    _ST = TypeVar("_ST", contravariant=True)
    _GT = TypeVar("_GT", covariant=True)

    class _Subscriptable:
        """A stand-in whose subscript is the class it wraps, whatever the parameters."""

        def __init__(self, cls: type) -> None:
            self.cls = cls

        def __getitem__(self, parameters: Any) -> type:
            return self.cls

    CharField = _Subscriptable(models.CharField)
    TextField = _Subscriptable(models.TextField)
    JSONField = _Subscriptable(models.JSONField)
    Lookup = _Subscriptable(models.Lookup)
