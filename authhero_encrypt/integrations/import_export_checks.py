"""System check W511: an import-export admin whose resource hands out or takes in secrets.

django-import-export's admin (``ImportExportModelAdmin``, ``ImportMixin``, ``ExportMixin``) imports
and exports through resources, not through the admin's pages, so ``EncryptedFieldsAdminMixin``
cannot help there: a resource without
:class:`~authhero_encrypt.integrations.import_export.EncryptedFieldsResourceMixin` exports the
decrypted secrets and stores pasted ciphertext. The check runs whatever the admin's other mixins
are (without ``EncryptedFieldsAdminMixin``, W204 reports the pages as well). It imports nothing
from import-export: when no code has imported its admin, no admin can be using it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.checks import CheckMessage, Warning

if TYPE_CHECKING:
    from django.contrib.admin import AdminSite

__all__ = ["check_import_export_admins"]


def check_import_export_admins(
    app_configs: Any = None, *, sites: Iterable[AdminSite] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W511 for every admin registered on ``sites`` (every ``AdminSite`` by default)."""
    ie_admin = sys.modules.get("import_export.admin")
    if ie_admin is None:
        return []
    from authhero_encrypt.integrations.import_export import (
        EncryptedFieldsResourceMixin,
        secret_resource_fields,
    )

    if sites is None:
        from django.contrib.admin.sites import all_sites

        sites = list(all_sites)
    errors: list[CheckMessage] = []
    for site in sites:
        for model, model_admin in site._registry.items():
            if app_configs is not None and model._meta.app_config not in app_configs:
                continue
            if not isinstance(model_admin, (ie_admin.ImportMixin, ie_admin.ExportMixin)):
                continue
            # The default resource is built anew on each call: one warning per class name.
            unsafe: dict[str, set[str]] = {}
            for resource_class in _resource_classes(model_admin):
                if issubclass(resource_class, EncryptedFieldsResourceMixin):
                    continue
                resource_model = getattr(resource_class._meta, "model", None) or model
                covered = secret_resource_fields(resource_model, _fields(resource_class))
                labels = {field.label() for field, _lookup in covered.values()}
                if labels:
                    unsafe.setdefault(resource_class.__qualname__, set()).update(labels)
            if unsafe:
                errors.append(_warning(type(model_admin), model._meta.label, unsafe))
    return errors


def _warning(admin_class: type, label: str, unsafe: dict[str, set[str]]) -> Warning:
    resources = ", ".join(sorted(unsafe))
    names = ", ".join(sorted(set().union(*unsafe.values())))
    return Warning(
        f"{admin_class.__qualname__} imports or exports {label} through {resources}, which "
        f"covers encrypted data ({names}) without EncryptedFieldsResourceMixin: its export "
        "writes the decrypted secrets and its import stores pasted ciphertext.",
        hint="Put authhero_encrypt.integrations.import_export.EncryptedFieldsResourceMixin "
        "before ModelResource in a resource, and list it in resource_classes.",
        obj=admin_class,
        id="authhero_encrypt.W511",
    )


def _resource_classes(model_admin: Any) -> list[Any]:
    """Every resource class the admin imports or exports with (the default ModelResource too)."""
    found: list[Any] = []
    for name in ("get_import_resource_classes", "get_export_resource_classes"):
        method = getattr(model_admin, name, None)
        if method is None:
            continue
        try:
            classes = list(method(None))
        except Exception:  # a method that needs a real request: the option instead
            classes = list(getattr(model_admin, "resource_classes", None) or ())
        found.extend(c for c in classes if c not in found)
    return found


def _fields(resource_class: Any) -> list[Any]:
    # An instance applies Meta.fields / exclude as imports and exports do.
    try:
        resource = resource_class()
    except Exception:  # a resource that needs arguments: its declared fields
        return list(getattr(resource_class, "fields", {}).values())
    return [*resource.get_import_fields(), *resource.get_export_fields()]
