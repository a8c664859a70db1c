"""System checks for admins of models with encrypted fields, and the lookup analysis they share
with :mod:`authhero_encrypt.admin`.

The database only holds ciphertext at an encrypted field or JSON path, so searching or ordering
on it cannot work: a search fails or matches nothing, an ordering sorts by random bytes. Those are
warnings, since the page still loads until someone uses the option. A list filter or a list
column that reaches encrypted data is worse: it would put the *decrypted* values into the page.
``EncryptedFieldsAdminMixin`` leaves such filters out and shows such columns as status badges, so
these are errors: without the mixin the page leaks, and with it the option does not do what it
says.

* ``authhero_encrypt.W201``: ``search_fields`` names encrypted data;
* ``authhero_encrypt.E202``: ``list_filter`` names encrypted data;
* ``authhero_encrypt.E203``: ``ordering``, a ``list_display`` column's ``admin_order_field``, or
  (without the mixin, which makes such columns unsortable) a sortable ``list_display`` field names
  encrypted data;
* ``authhero_encrypt.W204``: the model has encrypted fields but its admin does not use
  ``EncryptedFieldsAdminMixin``, so its pages show the plaintext;
* ``authhero_encrypt.E205``: ``list_display`` has a lookup such as ``client__client_secret``
  that reaches encrypted data, and the admin does not use ``EncryptedFieldsAdminMixin``.

A JSON path reaches encrypted data when it is an encrypted path (or below one) and also when
encrypted paths run below it: ``options__configuration`` holds ``configuration.client_secret``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from django.apps import apps
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import FieldDoesNotExist
from django.db.models import F
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import OrderBy

from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.inventory import encrypted_fields
from authhero_encrypt.json_paths import PathTrie, path_text

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite, ModelAdmin
    from django.db.models import Model

__all__ = [
    "check_admin_secrets",
    "display_lookups",
    "display_secret",
    "filter_lookup",
    "json_path_secret",
    "model_secret_fields",
    "reached_field",
    "secret_target",
]

# option: (check class, id, why it is a problem, how to fix it)
_OPTIONS: dict[str, tuple[type[Error] | type[Warning], str, str, str]] = {
    "search_fields": (
        Warning,
        "W201",
        "the database only holds its ciphertext, so the search fails",
        "Search a plaintext field or JSON key instead (for example options__client_id).",
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
        "Order by a plaintext field or JSON key instead, or leave the column out of sortable_by.",
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
    from authhero_encrypt.admin import EncryptedFieldsAdminMixin

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
                        f"{option} of {admin_class.__qualname__} has {lookup!r}, which reaches "
                        f"{target}: {why}.",
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


def model_secret_fields(model: type[Model]) -> list[Any]:
    """Every concrete encrypted field on the pages of ``model``.

    :func:`~authhero_encrypt.inventory.encrypted_fields` lists a model's own fields, which is
    what a table scan needs; a page also shows the fields a proxy takes from its concrete model
    and those a child inherits from its parents (multi-table inheritance).
    """
    concrete = model._meta.concrete_model or model
    owners = (concrete, *concrete._meta.get_parent_list())
    return [field for owner in owners for field in encrypted_fields(owner)]


def filter_lookup(spec: Any) -> str | None:
    """The lookup a ``list_filter`` item filters on; ``None`` for a ``SimpleListFilter`` class.

    An item is a field name, or ``(field name, FieldListFilter)``; a ``SimpleListFilter``
    decides on its own what it shows.
    """
    name = spec[0] if isinstance(spec, (list, tuple)) else spec
    return name if isinstance(name, str) else None


def display_lookups(model_admin: Any, items: Iterable[Any]) -> Iterator[str]:
    """The ``list_display`` items the admin resolves by following a lookup (Django >= 5.1).

    A name with ``__`` is a lookup unless the admin has a method of that name.
    """
    for item in items or ():
        if isinstance(item, str) and LOOKUP_SEP in item and not hasattr(model_admin, item):
            yield item


def display_secret(model: type[Model], lookup: str) -> Any:
    """The encrypted field a ``list_display`` lookup of ``model`` would show, or ``None``.

    Django follows ``client__client_secret`` attribute by attribute, so it shows the decrypted
    value when the lookup ends at an encrypted field after relations to one row each. Through a
    to-many relation it reaches a manager, and a JSON key is not an attribute of the document:
    neither shows a value.
    """
    reached = reached_field(model, lookup)
    if reached is None:
        return None
    field, relations, rest = reached
    if rest or not relations:
        return None
    if not all(relation.many_to_one or relation.one_to_one for relation in relations):
        return None
    return field


def _lookups(model_admin: ModelAdmin[Any]) -> Iterator[tuple[str, list[str]]]:
    yield "search_fields", [name.lstrip("^=@") for name in _strings(model_admin.search_fields)]
    filters = [filter_lookup(spec) for spec in model_admin.list_filter or ()]
    yield "list_filter", [name for name in filters if name]
    from authhero_encrypt.admin import EncryptedFieldsAdminMixin

    ordering = [_order_name(item) for item in model_admin.ordering or ()]
    sortable_by = model_admin.sortable_by
    for display in model_admin.list_display or ():
        column = getattr(model_admin, display, None) if isinstance(display, str) else display
        ordering.append(_order_name(getattr(column, "admin_order_field", None)))
        # A field named in list_display is a sortable column unless the mixin swaps it for a
        # badge or sortable_by leaves it out.
        sortable = sortable_by is None or display in sortable_by
        if column is None and sortable and not isinstance(model_admin, EncryptedFieldsAdminMixin):
            ordering.append(_order_name(display))
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


def reached_field(model: type[Model], lookup: str) -> tuple[Any, list[Any], list[str]] | None:
    """The encrypted field ``lookup`` runs into from ``model``, or ``None``.

    Returns ``(field, relations, rest)``: the relation fields followed to reach it, and what
    follows its name (JSON keys, lookups). A name that is not a field is taken for a lookup or
    transform and ends the walk (Django's own admin checks report unknown names).
    """
    opts = model._meta
    parts = lookup.split(LOOKUP_SEP)
    relations: list[Any] = []
    for index, part in enumerate(parts):
        try:
            field: Any = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            return None
        if isinstance(field, EncryptedFieldMixin):
            return field, relations, parts[index + 1 :]
        related = getattr(field, "related_model", None)
        if related is None or not field.is_relation:
            return None
        relations.append(field)
        opts = related._meta
    return None


def secret_target(model: type[Model], lookup: str) -> str | None:
    """What encrypted data ``lookup`` reaches from ``model`` (as text), or ``None``."""
    reached = reached_field(model, lookup)
    if reached is None:
        return None
    field, _, rest = reached
    if not isinstance(field, JSONPathEncryptedField):
        return f"the encrypted field {field.label()}"
    what = json_path_secret(field.path_trie, rest)
    return None if what is None else f"{what} of {field.label()}"


def json_path_secret(trie: PathTrie, keys: Sequence[str]) -> str | None:
    """What encrypted data the value at ``keys`` of a document is or holds (as text), or ``None``.

    The value is secret when the walk meets an encrypted path (a listed key or a ``*``; what
    follows is below a secret and no better), and it holds secrets when encrypted paths run
    below it (``PathTrie.node_at`` finds a node), as ``configuration`` holds
    ``configuration.client_secret``. Either way, whatever reads that value reads ciphertext, or
    the plaintext of a legacy row: the one rule every admin option and column follows.
    """
    node = trie
    for depth, key in enumerate(keys):
        if node.is_secret(key):
            return f"the encrypted path '{path_text(tuple(keys[: depth + 1]))}'"
        child = node.child(key)
        if child is None:
            return None
        node = child
    if not keys:
        return "the whole document, which holds encrypted paths"
    return f"'{path_text(tuple(keys))}', which holds encrypted paths"
