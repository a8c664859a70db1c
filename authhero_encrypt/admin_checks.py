"""System checks for admins of models with encrypted fields.

The database only holds ciphertext at an encrypted field or JSON path, so searching, filtering or
ordering on it cannot work: a search or an ordering fails or sorts by random bytes, and a list
filter would list the *decrypted* values in the sidebar. These are warnings rather than errors
because the page still loads until someone uses the option.

* ``authhero_encrypt.W201``: ``search_fields`` names encrypted data;
* ``authhero_encrypt.W202``: ``list_filter`` names encrypted data;
* ``authhero_encrypt.W203``: ``ordering`` (or a ``list_display`` column's ``admin_order_field``)
  names encrypted data;
* ``authhero_encrypt.W204``: the model has encrypted fields but its admin does not use
  ``EncryptedFieldsAdminMixin``, so its pages show the plaintext.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.core.checks import CheckMessage, Warning
from django.core.exceptions import FieldDoesNotExist
from django.db.models import F
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import OrderBy

from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.json import JSONPathEncryptedField

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin
    from django.db.models import Model

__all__ = ["check_admin_secrets"]

_OPTIONS = {
    "search_fields": (
        "W201",
        "the database only holds its ciphertext, so the search fails",
        "Search a plaintext field or JSON key instead (for example options__client_id).",
    ),
    "list_filter": (
        "W202",
        "the filter would list the decrypted values in the sidebar, or fail",
        "Filter on a plaintext field or JSON key instead.",
    ),
    "ordering": (
        "W203",
        "the database only holds its ciphertext, so rows would be sorted by random bytes",
        "Order by a plaintext field or JSON key instead.",
    ),
}


def check_admin_secrets(
    app_configs: Any = None, *, sites: Iterable[AdminSite] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W201-W204 for every admin registered on ``sites`` (every ``AdminSite`` by default)."""
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
    from authhero_encrypt.admin import EncryptedFieldsAdminMixin

    errors: list[CheckMessage] = []
    admin_class = type(model_admin)
    for option, lookups in _lookups(model_admin):
        code, why, hint = _OPTIONS[option]
        for lookup in lookups:
            target = secret_target(model, lookup)
            if target is not None:
                errors.append(
                    Warning(
                        f"{option} of {admin_class.__qualname__} has {lookup!r}, which reaches "
                        f"{target}: {why}.",
                        hint=hint,
                        obj=admin_class,
                        id=f"authhero_encrypt.{code}",
                    )
                )
    # Every concrete field, inherited ones and a proxy's included: they are all on the page.
    concrete: list[Any] = list(model._meta.concrete_fields)
    fields = [f for f in concrete if isinstance(f, EncryptedFieldMixin)]
    if fields and not isinstance(model_admin, EncryptedFieldsAdminMixin):
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
    return errors


def _lookups(model_admin: ModelAdmin[Any]) -> Iterator[tuple[str, list[str]]]:
    yield "search_fields", [name.lstrip("^=@") for name in _strings(model_admin.search_fields)]
    filters = []
    for spec in model_admin.list_filter or ():
        # A field name, or (field name, FieldListFilter); SimpleListFilter classes decide alone.
        name = spec[0] if isinstance(spec, (list, tuple)) else spec
        if isinstance(name, str):
            filters.append(name)
    yield "list_filter", filters
    ordering = [_order_name(item) for item in model_admin.ordering or ()]
    for display in model_admin.list_display or ():
        column = getattr(model_admin, display, None) if isinstance(display, str) else display
        ordering.append(_order_name(getattr(column, "admin_order_field", None)))
    yield "ordering", [name for name in ordering if name]


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


def secret_target(model: type[Model], lookup: str) -> str | None:
    """What encrypted data ``lookup`` reaches from ``model`` (as text), or ``None``.

    Follows relations, then JSON keys through the field's encrypted paths; a name that is not a
    field is taken for a lookup or transform and ends the walk (Django's own admin checks report
    unknown names).
    """
    opts = model._meta
    parts = lookup.split(LOOKUP_SEP)
    for index, part in enumerate(parts):
        try:
            field: Any = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            return None
        if isinstance(field, JSONPathEncryptedField):
            return _json_target(field, parts[index + 1 :])
        if isinstance(field, EncryptedFieldMixin):
            return f"the encrypted field {field.label()}"
        related = getattr(field, "related_model", None)
        if related is None or not field.is_relation:
            return None
        opts = related._meta
    return None


def _json_target(field: JSONPathEncryptedField, keys: list[str]) -> str | None:
    if not keys:
        return f"the whole document of {field.label()}, which holds encrypted paths"
    node: Any = field.path_trie
    for depth, key in enumerate(keys):
        if node is None:
            return None
        if node.is_secret(key):
            return f"the encrypted path '{'.'.join(keys[: depth + 1])}' of {field.label()}"
        node = node.child(key)
    return None
