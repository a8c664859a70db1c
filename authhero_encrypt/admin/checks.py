"""System checks W201-E205 for the admins of models with encrypted fields.

The database only holds ciphertext at an encrypted field or JSON path, so searching or ordering
on it cannot work: a search fails or matches nothing, an ordering sorts by random bytes. Those are
warnings, since the page still loads until someone uses the option. A list filter or a list
column that reaches encrypted data is worse: it would put the *decrypted* values into the page.
``EncryptedFieldsAdminMixin`` leaves such filters out and shows such columns as status badges, so
these are errors: without the mixin the page leaks, and with it the option does not do what it
says.

* ``authhero_encrypt.W201``: ``search_fields`` names encrypted data (an exact search a blind
  index answers, ``=email`` or ``email__exact``, excepted);
* ``authhero_encrypt.E202``: ``list_filter`` names encrypted data;
* ``authhero_encrypt.E203``: ``ordering``, a ``list_display`` column's ``admin_order_field``, or
  (without the mixin, which makes such columns unsortable) a sortable ``list_display`` field names
  encrypted data; the message names which of the three, and the hint its own fix;
* ``authhero_encrypt.W204``: the model has encrypted fields but its admin does not use
  ``EncryptedFieldsAdminMixin``, so its pages show the plaintext;
* ``authhero_encrypt.E205``: ``list_display`` has a lookup such as ``client__client_secret``
  that reaches encrypted data, and the admin does not use ``EncryptedFieldsAdminMixin``.

What reaches encrypted data is worked out by :mod:`authhero_encrypt.admin.lookups`, which the mixin
uses as well. The checks sit above the mixin (they ask whether an admin uses it) and the mixin
never imports them, so the imports run one way. ``AuthHeroEncryptConfig.ready()`` registers
:func:`check_admin_secrets`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.core.checks import CheckMessage, Error, Warning
from django.db.models import F
from django.db.models.expressions import OrderBy

from authhero_encrypt.admin.lookups import (
    display_lookups,
    display_secret,
    filter_lookup,
    indexed_search,
    model_secret_fields,
    secret_target,
)
from authhero_encrypt.admin.options import EncryptedFieldsAdminMixin

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin
    from django.db.models import Model

__all__ = ["check_admin_secrets"]

# option: (check class, id, why it is a problem, how to fix it)
_OPTIONS: dict[str, tuple[type[Error] | type[Warning], str, str, str]] = {
    "search_fields": (
        Warning,
        "W201",
        "the database only holds its ciphertext, so the search fails",
        "Search a plaintext field or JSON key instead (for example options__client_id). An "
        "encrypted field with a blind index is searched exactly: '=email' when the index folds "
        "case, else 'email__exact' (docs/blind_index.md).",
    ),
    "list_filter": (
        Error,
        "E202",
        "a filter lists the values it finds in the sidebar, here decrypted secrets; "
        "EncryptedFieldsAdminMixin leaves the filter out of the page",
        "Remove it from list_filter and filter on a plaintext field or JSON key instead "
        "(for example strategy or options__client_id).",
    ),
    "ordering": (
        Error,
        "E203",
        "the database only holds its ciphertext, so the changelist would refuse to sort by it "
        "(FieldError)",
        "Remove it from ordering and order by a plaintext field or JSON key instead.",
    ),
    "admin_order_field": (
        Error,
        "E203",
        "the database only holds its ciphertext, so the changelist would refuse to sort the "
        "column by it (FieldError)",
        "Remove admin_order_field from that list_display column, or point it at a plaintext "
        "field or JSON key.",
    ),
    "sortable list_display": (
        Error,
        "E203",
        "a sortable column; the database only holds its ciphertext, so the changelist would "
        "refuse to sort by it (FieldError)",
        "Add authhero_encrypt.admin.EncryptedFieldsAdminMixin before ModelAdmin (it shows the "
        "column as a status badge that does not sort), or set sortable_by to leave the column "
        "out.",
    ),
}


def check_admin_secrets(
    app_configs: Any = None, *, sites: Iterable[AdminSite] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W201-E205 for every admin registered on ``sites`` (every ``AdminSite`` by default)."""
    if not apps.is_installed("django.contrib.admin"):
        return []
    if sites is None:
        from django.contrib.admin.sites import all_sites

        sites = list(all_sites)
    errors: list[CheckMessage] = []
    for site in sites:
        for model, model_admin in site._registry.items():
            if app_configs is None or model._meta.app_config in app_configs:
                errors.extend(_check_model_admin(model, model_admin))
    return errors


def _check_model_admin(model: type[Model], model_admin: ModelAdmin[Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    admin_class = type(model_admin)
    with_mixin = isinstance(model_admin, EncryptedFieldsAdminMixin)
    for option, lookups in _lookups(model_admin):
        check, code, why, hint = _OPTIONS[option]
        for lookup in lookups:
            target = secret_target(model, lookup)
            if target is not None:
                errors.append(
                    check(
                        f"{_where(option, lookup)} of {admin_class.__qualname__} has {lookup!r}, "
                        f"which reaches {target}: {why}.",
                        hint=hint,
                        obj=admin_class,
                        id=f"authhero_encrypt.{code}",
                    )
                )
    fields = model_secret_fields(model)
    if fields and not with_mixin:
        names = ", ".join(field.name for field in fields)
        errors.append(
            Warning(
                f"{admin_class.__qualname__} shows {model._meta.label} ({names} encrypted) "
                "without EncryptedFieldsAdminMixin, so its pages render the decrypted secrets.",
                hint="Add authhero_encrypt.admin.EncryptedFieldsAdminMixin before ModelAdmin.",
                obj=admin_class,
                id="authhero_encrypt.W204",
            )
        )
    if not with_mixin:
        for lookup in display_lookups(model_admin, model_admin.list_display):
            shown = display_secret(model, lookup)
            if shown is not None:
                errors.append(
                    Error(
                        f"list_display of {admin_class.__qualname__} has {lookup!r}, which "
                        f"ends at the encrypted field {shown.label()}: the column would show "
                        "the decrypted value.",
                        hint="Add authhero_encrypt.admin.EncryptedFieldsAdminMixin before "
                        "ModelAdmin (it shows a status badge instead), or list a plaintext "
                        "field.",
                        obj=admin_class,
                        id="authhero_encrypt.E205",
                    )
                )
    return errors


def _lookups(model_admin: ModelAdmin[Any]) -> Iterator[tuple[str, list[str]]]:
    searched = [
        name.lstrip("^=@")
        for name in _strings(model_admin.search_fields)
        if not indexed_search(model_admin.model, name)
    ]
    yield "search_fields", searched
    yield "list_filter", _names(filter_lookup(spec) for spec in model_admin.list_filter or ())
    yield "ordering", _names(_order_name(item) for item in model_admin.ordering or ())
    order_fields: list[str | None] = []
    sortable_fields: list[str | None] = []
    sortable_by = model_admin.sortable_by
    for display in model_admin.list_display or ():
        column = getattr(model_admin, display, None) if isinstance(display, str) else display
        order_fields.append(_order_name(getattr(column, "admin_order_field", None)))
        # A field named in list_display is a sortable column unless the mixin swaps it for a
        # badge or sortable_by leaves it out.
        sortable = sortable_by is None or display in sortable_by
        if column is None and sortable and not isinstance(model_admin, EncryptedFieldsAdminMixin):
            sortable_fields.append(_order_name(display))
    yield "admin_order_field", _names(order_fields)
    yield "sortable list_display", _names(sortable_fields)


def _names(items: Iterable[str | None]) -> list[str]:
    return [name for name in items if name]


def _where(option: str, lookup: str) -> str:
    """The option as the message names it: the list_display column for admin_order_field."""
    if option == "admin_order_field":
        return "the admin_order_field of a list_display column"
    return option


def _strings(items: Any) -> list[str]:
    return [item for item in items or () if isinstance(item, str)]


def _order_name(item: Any) -> str | None:
    if isinstance(item, OrderBy):
        item = item.expression
    if isinstance(item, F):
        return str(cast(Any, item).name)
    if isinstance(item, str) and item != "?":
        return item.lstrip("-")
    return None
