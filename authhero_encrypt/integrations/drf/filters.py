"""DRF filter backends that leave encrypted data out: ``?ordering=client_secret`` is ignored.

DRF's ``OrderingFilter`` orders by any readable serializer field by default, and a readable
``JSONPathEncryptedField`` is one: ``?ordering=options`` would make the database sort
ciphertext, which the field refuses (``FieldError``, an HTTP 500 anyone can trigger). These
subclasses drop every name that reaches encrypted data (see :mod:`.reach`): an ordering term is
then ignored, as DRF ignores any term it does not allow, and a search skips that field. Checks
W501 and W502 report the names a view lists anyway.
"""

from __future__ import annotations

from typing import Any

from rest_framework.filters import OrderingFilter, SearchFilter

from authhero_encrypt.integrations.drf.reach import secret_reached

__all__ = ["EncryptedFieldsOrderingFilter", "EncryptedFieldsSearchFilter", "search_lookup"]


def search_lookup(name: str) -> str:
    """The lookup a ``search_fields`` entry searches, without its prefix (``^``, ``=``, ...).

    ``=email`` keeps its lookup, ``iexact``, which a blind index that folds case answers.
    """
    if name[:1] == "=":
        return f"{name[1:]}__iexact"
    return name[1:] if name[:1] in SearchFilter.lookup_prefixes else name


class EncryptedFieldsOrderingFilter(OrderingFilter):  # type: ignore[misc]
    """``OrderingFilter`` whose valid fields (the default, ``"__all__"`` or listed) leave out
    every name that reaches encrypted data; so does the view's ``ordering`` (W501 reports it)."""

    def get_ordering(self, request: Any, queryset: Any, view: Any) -> Any:
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering
        model = queryset.model
        return [
            term
            for term in ordering
            if not isinstance(term, str) or secret_reached(model, term.lstrip("-")) is None
        ]

    def get_valid_fields(self, queryset: Any, view: Any, context: Any = None) -> Any:
        fields = super().get_valid_fields(queryset, view, context)
        model = queryset.model
        return [item for item in fields if secret_reached(model, str(item[0])) is None]


class EncryptedFieldsSearchFilter(SearchFilter):  # type: ignore[misc]
    """``SearchFilter`` that skips the ``search_fields`` that reach encrypted data."""

    _model: Any = None

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        self._model = queryset.model  # backends are made per request: no state is shared
        return super().filter_queryset(request, queryset, view)

    def get_search_fields(self, view: Any, request: Any) -> Any:
        fields = super().get_search_fields(view, request)
        if fields is None or self._model is None:
            return fields
        return [
            name for name in fields if secret_reached(self._model, search_lookup(str(name))) is None
        ]
