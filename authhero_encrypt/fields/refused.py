"""The lookups and transforms an encrypted field refuses, as classes that raise when they are used.

Django's convention is that ``get_lookup()`` and ``get_transform()`` answer with a class (or
``None`` for an unknown name), and that a lookup which cannot apply raises ``FieldError`` once it
is built, when ``filter()`` makes the query. Raising from ``get_lookup()`` itself gave the same
error to ``filter()``, but broke every tool that asks for a lookup without using it:
django-stubs' mypy plugin crashed with an INTERNAL ERROR on ``filter(secret__icontains="x")``.
The classes here are what the fields hand back instead; building one raises the refusal the
field would have raised, with the same message, at the same point of ``filter()``.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from django.core.exceptions import FieldError
from django.db.models import Transform

from authhero_encrypt.fields.generic import Lookup

__all__ = ["RefusedLookup", "RefusedTransform", "refused_lookup", "refused_transform"]

_C = TypeVar("_C", bound=type)


class RefusedLookup(Lookup[Any]):
    """A lookup on encrypted data: building it (``filter()``) raises ``FieldError``."""

    refusal = "This lookup is refused on encrypted data."

    def __init__(self, lhs: Any, rhs: Any) -> None:
        raise FieldError(self.refusal)


class RefusedTransform(Transform):
    """A transform of encrypted data: building it (``filter()``, ``values()``) raises."""

    refusal = "This transform is refused on encrypted data."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise FieldError(self.refusal)


def refused_lookup(lookup_name: str, error: FieldError) -> type[RefusedLookup]:
    """A ``RefusedLookup`` named ``lookup_name`` that raises ``error``'s message."""
    return _named(RefusedLookup, lookup_name, error)


def refused_transform(lookup_name: str, error: FieldError) -> type[RefusedTransform]:
    """A ``RefusedTransform`` named ``lookup_name`` that raises ``error``'s message."""
    return _named(RefusedTransform, lookup_name, error)


def _named(base: _C, lookup_name: str, error: FieldError) -> _C:
    # A fresh FieldError per use (a stored one would collect tracebacks). The qualified name stays
    # the base's, so a type checker that looks the class up by name finds the base.
    namespace = {
        "lookup_name": lookup_name,
        "refusal": str(error),
        "__module__": __name__,
        "__qualname__": base.__qualname__,
    }
    return cast(_C, type(base.__name__, (base,), namespace))
