"""System checks W501-E506 for Django REST framework views over models with encrypted fields.

As W201-E205 do for the admin: a query parameter that orders, searches or filters on encrypted
data makes the database compute on ciphertext, which the fields refuse with ``FieldError``, so
anyone can turn ``?ordering=client_secret`` into an HTTP 500; and a serializer that reads an
encrypted field puts the decrypted secret into every response.

* ``authhero_encrypt.W501``: a view's ``ordering_fields`` (listed, ``"__all__"``, or DRF's
  default: every readable serializer field) or ``ordering`` reaches encrypted data;
* ``authhero_encrypt.W502``: ``search_fields`` does;
* ``authhero_encrypt.W503``: django-filter's ``filterset_fields`` does;
* ``authhero_encrypt.W504``: the view's ``filterset_class`` (``Meta.fields`` as a list, a dict
  or ``"__all__"``, or a declared filter) does;
* ``authhero_encrypt.W505``: the view's serializer returns an encrypted field's decrypted value
  without ``EncryptedFieldsSerializerMixin`` (whose ``Meta.readable_secrets`` opts in);
* ``authhero_encrypt.E506``: the ``REST_FRAMEWORK`` setting names a class of this integration
  that cannot be imported (Django REST framework or django-filter missing).

The views are those the root URLconf routes (as Django's URL checks, a view nobody can request is
no risk), or the ``views`` given. The ``EncryptedFields*`` backends leave encrypted data out of
the defaults (``ordering_fields`` unset or ``"__all__"``, ``Meta.fields = "__all__"``), so with
them only names a view lists itself are reported.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

__all__ = ["check_drf_settings", "check_drf_views"]

_INTEGRATION = "authhero_encrypt.integrations."
_HINTS = {
    "W501": "Order by plaintext fields or JSON keys: list them in ordering_fields, or use "
    "authhero_encrypt.integrations.drf.EncryptedFieldsOrderingFilter.",
    "W502": "Search plaintext fields or JSON keys (for example options__client_id).",
    "W503": "Filter on plaintext fields, or use "
    "authhero_encrypt.integrations.drf.filtersets.EncryptedFieldsFilterBackend.",
    "W504": "Filter on plaintext fields, or base the FilterSet on "
    "authhero_encrypt.integrations.drf.filtersets.EncryptedFieldsFilterSet.",
}


def check_drf_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E506: a ``REST_FRAMEWORK`` entry names a class of this integration that cannot load."""
    config = getattr(settings, "REST_FRAMEWORK", None) or {}
    errors: list[CheckMessage] = []
    for key, value in config.items() if isinstance(config, dict) else ():
        for path in [value] if isinstance(value, str) else value or ():
            if not (isinstance(path, str) and path.startswith(_INTEGRATION)):
                continue
            try:
                import_string(path)
            except ImportError as exc:
                errors.append(
                    Error(
                        f"REST_FRAMEWORK[{key!r}] names {path}, which cannot be imported: {exc}",
                        hint="pip install djangorestframework django-filter (what the package's "
                        "drf extra installs).",
                        id="authhero_encrypt.E506",
                    )
                )
    return errors


def check_drf_views(
    app_configs: Any = None, *, views: Iterable[type] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W501-W505 for every DRF generic view the URLconf routes (or ``views``)."""
    if not _installed("rest_framework"):
        return []
    from rest_framework.generics import GenericAPIView

    chosen = list(_routed_views()) if views is None else list(views)
    errors: list[CheckMessage] = []
    for view in chosen:
        if isinstance(view, type) and issubclass(view, GenericAPIView):
            errors.extend(_check_view(view))
    return errors


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _routed_views() -> Iterator[type]:
    from django.urls import URLPattern, URLResolver, get_resolver

    seen: set[type] = set()

    def walk(patterns: Iterable[Any]) -> Iterator[type]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "cls", None)
                if isinstance(view, type) and view not in seen:
                    seen.add(view)
                    yield view

    try:
        yield from walk(get_resolver().url_patterns)
    except Exception:  # a broken URLconf is reported by Django's own URL checks
        return


def _model_of(view: Any) -> Any:
    queryset = getattr(view, "queryset", None)
    if queryset is not None:
        return queryset.model
    meta = getattr(getattr(view, "serializer_class", None), "Meta", None)
    return getattr(meta, "model", None)


def _serializer(view: Any) -> Any:
    serializer_class = getattr(view, "serializer_class", None)
    if serializer_class is None:
        return None
    try:
        return serializer_class(context={})
    except Exception:  # a serializer that needs a request: its fields are not known here
        return None


def _check_view(view: type) -> list[CheckMessage]:
    model = _model_of(view)
    if model is None:
        return []
    from authhero_encrypt.admin.lookups import model_secret_fields

    if not model_secret_fields(model):
        return []
    from authhero_encrypt.integrations.drf.reach import secret_reached

    errors: list[CheckMessage] = []
    for code, option, names in _options(view, model):
        for name in names:
            target = secret_reached(model, name)
            if target is not None:
                errors.append(
                    Warning(
                        f"{option} of {view.__qualname__} has {name!r}, which reaches {target}: "
                        "the database only holds its ciphertext, so a request using it raises "
                        "FieldError (an HTTP 500).",
                        hint=_HINTS[code],
                        obj=view,
                        id=f"authhero_encrypt.{code}",
                    )
                )
    errors.extend(_check_serializer(view, model))
    return errors


def _options(view: Any, model: Any) -> Iterator[tuple[str, str, list[str]]]:
    from rest_framework.filters import OrderingFilter, SearchFilter

    from authhero_encrypt.integrations.drf.filters import (
        EncryptedFieldsOrderingFilter,
        search_lookup,
    )

    for backend in getattr(view, "filter_backends", None) or ():
        if not isinstance(backend, type):
            continue
        if issubclass(backend, OrderingFilter):
            safe = issubclass(backend, EncryptedFieldsOrderingFilter)
            fields = getattr(view, "ordering_fields", getattr(backend, "ordering_fields", None))
            if fields is None and not safe:
                names = _default_ordering(view)
                yield "W501", "The default ordering_fields (every readable field)", names
            elif fields == "__all__" and not safe:
                names = [field.name for field in model._meta.fields]
                yield "W501", 'ordering_fields = "__all__"', names
            elif isinstance(fields, (list, tuple)):
                names = [item if isinstance(item, str) else item[0] for item in fields]
                yield "W501", "ordering_fields", names
            ordering = getattr(view, "ordering", None)
            ordering = [ordering] if isinstance(ordering, str) else list(ordering or ())
            names = [str(item).lstrip("-") for item in ordering if isinstance(item, str)]
            yield "W501", "ordering", names
        elif issubclass(backend, SearchFilter):
            names = [search_lookup(str(name)) for name in getattr(view, "search_fields", ()) or ()]
            yield "W502", "search_fields", names
        elif _is_django_filter_backend(backend):
            yield from _filter_options(view, backend, model)


def _default_ordering(view: Any) -> list[str]:
    """DRF's default ``ordering_fields``: the serializer's readable fields, as its
    ``OrderingFilter.get_default_valid_fields`` works them out."""
    serializer = _serializer(view)
    if serializer is None:
        return []
    model = serializer.Meta.model if hasattr(serializer, "Meta") else None
    properties = {name for name in dir(model) if isinstance(getattr(model, name, None), property)}
    return [
        field.source.replace(".", "__") or name
        for name, field in serializer.fields.items()
        if not field.write_only and field.source != "*" and field.source not in properties
    ]


def _is_django_filter_backend(backend: type) -> bool:
    if not _installed("django_filters"):
        return False
    from django_filters.rest_framework import DjangoFilterBackend

    return issubclass(backend, DjangoFilterBackend)


def _filter_options(view: Any, backend: type, model: Any) -> Iterator[tuple[str, str, list[str]]]:
    from authhero_encrypt.integrations.drf.filtersets import (
        EncryptedFieldsFilterBackend,
        EncryptedFieldsFilterSet,
        filter_lookup,
    )

    filterset_class = getattr(view, "filterset_class", None)
    if filterset_class is not None:
        safe = issubclass(filterset_class, EncryptedFieldsFilterSet)
        label = f"The FilterSet {filterset_class.__qualname__}"
        meta = filterset_class._meta
        yield "W504", f"{label} Meta.fields", _declared(meta.fields, meta.exclude, model, safe)
        declared = [filter_lookup(f) for f in filterset_class.declared_filters.values()]
        yield "W504", f"{label} (declared filters)", declared
        return
    fields = getattr(view, "filterset_fields", None)
    safe = issubclass(backend, EncryptedFieldsFilterBackend)
    yield "W503", "filterset_fields", _declared(fields, None, model, safe)


def _declared(fields: Any, exclude: Any, model: Any, safe: bool) -> list[str]:
    """The lookups a django-filter ``fields`` declaration asks for (``"__all__"``: every field,
    unless the ``FilterSet`` leaves encrypted data out by itself)."""
    if fields is None and exclude is not None:
        fields = "__all__"
    if fields == "__all__":
        if safe:
            return []
        return [f"{f.name}__exact" for f in model._meta.fields if f.name not in (exclude or ())]
    if isinstance(fields, dict):
        return [f"{name}__{lookup}" for name, lookups in fields.items() for lookup in lookups]
    # A list asks for exact filters, which a blind index over an encrypted field answers.
    return [f"{name}__exact" for name in fields or ()]


def _check_serializer(view: Any, model: Any) -> list[CheckMessage]:
    from authhero_encrypt.integrations.drf.fields import SecretJSONField
    from authhero_encrypt.integrations.drf.serializers import (
        EncryptedFieldsSerializerMixin,
        encrypted_source,
    )

    serializer = _serializer(view)
    if serializer is None or isinstance(serializer, EncryptedFieldsSerializerMixin):
        return []  # with the mixin, a readable secret is one Meta.readable_secrets opted in
    meta_model = getattr(getattr(serializer, "Meta", None), "model", model)
    errors: list[CheckMessage] = []
    for name, field in serializer.fields.items():
        model_field = encrypted_source(meta_model, field, name)
        if model_field is None or field.write_only:
            continue
        if isinstance(field, SecretJSONField) and field.hide_secrets:
            continue
        errors.append(
            Warning(
                f"The serializer {type(serializer).__qualname__} of {view.__qualname__} returns "
                f"{name!r}, the decrypted value of the encrypted field {model_field.label()}, "
                "in every response.",
                hint="Add authhero_encrypt.integrations.drf.EncryptedFieldsSerializerMixin "
                "before ModelSerializer (secrets become write-only; Meta.readable_secrets opts "
                "a field in), or make the field write_only.",
                obj=view,
                id="authhero_encrypt.W505",
            )
        )
    return errors
