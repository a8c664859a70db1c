"""django-filter support: a ``FilterSet`` base and a backend that never filter on encrypted data.

django-filter turns ``Meta.fields`` (a list, a dict of lookups, or ``"__all__"``) and declared
filters into ORM lookups; one that reaches an encrypted field raises ``FieldError``, at class
definition for a lookup the field refuses to resolve, else on the request (an HTTP 500).
:class:`EncryptedFieldsFilterSet` leaves such filters out when the class is built, and
:class:`EncryptedFieldsFilterBackend` also drops them from any ``filterset_class`` a view names,
so ``?client_secret=x`` is ignored. Checks W503 and W504 report the declarations.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

try:
    from django_filters import rest_framework as django_filters
except ImportError as exc:  # pragma: no cover - the message is what matters
    raise ImportError(
        "authhero_encrypt.integrations.drf.filtersets needs django-filter: "
        "pip install django-filter (what the package's drf extra installs)"
    ) from exc

from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP
from django_filters.constants import ALL_FIELDS

from authhero_encrypt.blind_index.field import BlindIndexField
from authhero_encrypt.integrations.drf.reach import secret_reached

__all__ = ["EncryptedFieldsFilterBackend", "EncryptedFieldsFilterSet", "filter_lookup"]


def filter_lookup(filter_: Any) -> str:
    """The ORM lookup a django-filter ``Filter`` applies: its field name and lookup."""
    lookup = getattr(filter_, "lookup_expr", None) or "exact"
    return LOOKUP_SEP.join((str(filter_.field_name), str(lookup)))


def _safe_filters(model: Any, filters: Any) -> OrderedDict[str, Any]:
    return OrderedDict(
        (name, filter_)
        for name, filter_ in filters.items()
        if getattr(filter_, "field_name", None) is None
        or secret_reached(model, filter_lookup(filter_)) is None
    )


def _is_index(model: Any, name: str) -> bool:
    try:
        return isinstance(model._meta.get_field(name), BlindIndexField)
    except FieldDoesNotExist:
        return False


class EncryptedFieldsFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    """A ``FilterSet`` whose generated and declared filters leave out encrypted data.

    ``Meta.fields = "__all__"`` then means every field the database can filter on, blind index
    columns aside (an indexed source is filtered by its value instead: ``exact``, ``in``).
    """

    @classmethod
    def get_fields(cls) -> OrderedDict[str, list[str]]:
        fields = super().get_fields()
        model = cls._meta.model
        everything = cls._meta.fields == ALL_FIELDS or cls._meta.exclude is not None
        kept: OrderedDict[str, list[str]] = OrderedDict()
        for name, lookups in fields.items():
            if everything and _is_index(model, name):
                continue  # "__all__" offers no filter by tag: equal values have equal tags
            safe = [
                lookup
                for lookup in lookups
                if secret_reached(model, LOOKUP_SEP.join((name, lookup))) is None
            ]
            if safe:
                kept[name] = safe
        return kept

    @classmethod
    def get_filters(cls) -> OrderedDict[str, Any]:
        filters = super().get_filters()
        model = cls._meta.model
        return filters if model is None else _safe_filters(model, filters)


class EncryptedFieldsFilterBackend(django_filters.DjangoFilterBackend):  # type: ignore[misc]
    """``DjangoFilterBackend`` building ``filterset_fields`` on :class:`EncryptedFieldsFilterSet`
    and dropping the filters of a view's ``filterset_class`` that reach encrypted data."""

    filterset_base = EncryptedFieldsFilterSet

    def get_filterset(self, request: Any, queryset: Any, view: Any) -> Any:
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            filterset.filters = _safe_filters(queryset.model, filterset.filters)
        return filterset
