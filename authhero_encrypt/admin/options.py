"""The ModelAdmin mixin that keeps secrets out of the admin's pages: ``EncryptedFieldsAdminMixin``.

It puts the other modules of this package together: the changelist reads stored text
(:mod:`~authhero_encrypt.admin.stored`) and shows badges (:mod:`~authhero_encrypt.admin.columns`),
change forms edit secrets write-only (:mod:`~authhero_encrypt.admin.forms`), filters that reach
secrets are left out (:mod:`~authhero_encrypt.admin.lookups`), and posted secrets are marked
sensitive for error reports (:mod:`~authhero_encrypt.admin.sensitive`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from authhero_encrypt.admin.columns import SecretColumn
from authhero_encrypt.admin.formfields import secret_formfield
from authhero_encrypt.admin.forms import untouched_secrets, with_secret_handling
from authhero_encrypt.admin.lookups import (
    display_lookups,
    display_secret,
    filter_lookup,
    model_secret_fields,
    secret_target,
)
from authhero_encrypt.admin.sensitive import mark_secrets_sensitive
from authhero_encrypt.admin.stored import (
    holds_legacy_plaintext,
    stored_text,
    with_stored_lookups,
    with_stored_values,
)
from authhero_encrypt.admin.unreadable import load_leniently, shielded
from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.strict import plaintext_tolerated

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.contrib import admin
    from django.contrib.admin.views.main import ChangeList
    from django.http import HttpRequest

    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object

__all__ = ["EncryptedFieldsAdminMixin"]


class EncryptedFieldsAdminMixin(_AdminBase):
    """Keeps secrets out of the admin's pages; put it before ``admin.ModelAdmin``.

    Encrypted fields named in ``list_display`` and ``readonly_fields`` (and every field of a
    view-only page) become status badges; editable ones become write-only inputs. The changelist
    reads the stored text of each encrypted field in its one query and does not load (decrypt)
    the fields themselves, so the list stays fast and works even for rows no configured key opens.
    ``list_display`` lookups through relations that end at an encrypted field
    (``client__client_secret``) become badges read the same way, and ``list_filter`` items that
    reach encrypted data are left out: a filter lists the values it finds in the sidebar
    (``authhero_encrypt.E202`` reports them).

    Saving a row encrypts the legacy plaintext it holds (a scalar, or any leaf of a document),
    even where the form left the secret untouched; values already encrypted are left out of the
    ``UPDATE`` and keep their stored bytes.

    The POST parameters of its change, add and changelist views that carry secrets (those of the
    model and of its inlines' models, formset prefixes included) are marked sensitive, so
    ``SafeExceptionReporterFilter`` cleanses them from error reports.

    Not covered: inline admins' pages (their forms are Django's), and "Save as new"
    (``save_as``), which starts the copy's secrets empty since the form never holds them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields = model_secret_fields(self.model)
        self._secret_by_name: dict[str, Any] = {field.name: field for field in fields}
        self._list_columns = {f.name: SecretColumn(f, detail=False) for f in fields}
        self._detail_columns = {f.name: SecretColumn(f, detail=True) for f in fields}

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(css={"all": ["authhero_encrypt/admin.css"]})

    # Reading -----------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        queryset = super().get_queryset(request)
        return cast(
            "models.QuerySet[Any]",
            with_stored_values(queryset, self._secret_by_name.values()),
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        base = super().get_changelist(request, **kwargs)
        secrets = tuple(self._secret_by_name)

        def get_queryset(
            changelist: Any, request: HttpRequest, exclude_parameters: Any = None
        ) -> Any:
            queryset = base.get_queryset(changelist, request, exclude_parameters)
            related = [
                column.lookup
                for column in changelist.list_display
                if isinstance(column, SecretColumn) and column.lookup is not None
            ]
            if related:
                queryset = with_stored_lookups(queryset, related)
            return queryset.defer(*secrets) if secrets else queryset

        return type(base.__name__, (base,), {"get_queryset": get_queryset})

    def get_list_display(self, request: HttpRequest) -> Any:
        return [
            self._related_column(item) or self._column(item, self._list_columns)
            for item in super().get_list_display(request)
        ]

    def _column(self, item: Any, columns: dict[str, SecretColumn]) -> Any:
        return columns.get(item, item) if isinstance(item, str) else item

    def _related_column(self, item: Any) -> SecretColumn | None:
        # Django (>= 5.1) follows client__client_secret attribute by attribute to the plaintext.
        if not any(display_lookups(self, [item])):
            return None
        shown = display_secret(self.model, item)
        if shown is None:
            return None
        return SecretColumn(shown, detail=False, lookup=item)

    def get_list_filter(self, request: HttpRequest) -> Any:
        # A filter lists the distinct values it finds in the sidebar: decrypted secrets here.
        return [
            spec
            for spec in super().get_list_filter(request)
            if (lookup := filter_lookup(spec)) is None or secret_target(self.model, lookup) is None
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_readonly_fields(request, obj)
        return [self._column(item, self._detail_columns) for item in fields]

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        excluded = super().get_exclude(request, obj)
        # A read-only encrypted field is shown by its badge; the form must not get it as well.
        readonly = super().get_readonly_fields(request, obj)
        hidden = [name for name in readonly if name in self._secret_by_name]
        if not hidden:
            return excluded
        return [*(excluded or ()), *hidden]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            names: Iterable[str] = self._secret_by_name
        else:
            readonly = super().get_readonly_fields(request, obj)
            names = [name for name in readonly if name in self._secret_by_name]
        swap = {name: self._detail_columns[name] for name in names}
        if not swap:
            return fieldsets
        return [
            (title, {**options, "fields": _swap_names(options.get("fields", ()), swap)})
            for title, options in fieldsets
        ]

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        try:
            return super().get_object(request, object_id, from_field)
        except EncryptionError:
            pass
        # A secret no configured key opens (a lost key): load the row without its secrets, then
        # each secret on its own, so the page can still replace or clear it (see .unreadable).
        # As ModelAdmin.get_object, with the secrets deferred.
        secrets = list(self._secret_by_name.values())
        queryset = self.get_queryset(request).defer(*(f.name for f in secrets))
        model = queryset.model
        field = model._meta.pk if from_field is None else model._meta.get_field(from_field)
        try:
            obj = queryset.get(**{field.name: field.to_python(object_id)})
        except (model.DoesNotExist, ValidationError, ValueError):
            return None
        return load_leniently(obj, secrets, lambda secret: stored_text(obj, secret))

    # Editing -----------------------------------------------------------------------------------

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        if request.method == "POST":
            mark_secrets_sensitive(request, self._posted_secret_names(request))
        return _tolerant(super().changeform_view, request, object_id, form_url, extra_context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        if request.method == "POST":
            mark_secrets_sensitive(request, self._posted_secret_names(request))
        return _tolerant(super().changelist_view, request, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> Any:
        return _tolerant(super().delete_view, request, object_id, extra_context)

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> Any:
        return _tolerant(super().history_view, request, object_id, extra_context)

    def _posted_secret_names(self, request: HttpRequest) -> set[str]:
        names = set(self._secret_by_name)
        # Every inline class that may be shown, whatever the object: no POST secret is missed.
        for inline in {*self.inlines, *self.get_inlines(request, None)}:
            names.update(field.name for field in model_secret_fields(inline.model))
        return names

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if isinstance(db_field, EncryptedFieldMixin):
            return secret_formfield(db_field, **kwargs)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        return with_secret_handling(super().get_form(request, obj, change, **kwargs))

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        return with_secret_handling(super().get_changelist_form(request, **kwargs))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: Any) -> None:
        untouched = untouched_secrets(obj, form) if change else set()
        deferred = obj.get_deferred_fields()
        legacy: set[str] = set()
        if change:
            # A secret left as it is stays out of the UPDATE, unless it is legacy plaintext,
            # which this save must encrypt (that is what encryption_status promises). So is a
            # deferred one (the changelist does not load secrets): saving it loads it first.
            deferred_secrets = {
                name for name, field in self._secret_by_name.items() if field.attname in deferred
            }
            legacy = {
                name
                for name in untouched | deferred_secrets
                if holds_legacy_plaintext(obj, self._secret_by_name[name])
            }
            untouched -= legacy
        if not untouched and not legacy:
            super().save_model(request, obj, form, change)
            return
        # Leaving untouched secrets out of the UPDATE is what keeps them byte for byte: writing
        # them back would re-encrypt under a fresh IV. Deferred fields are left out as well, as
        # Model.save() itself does.
        names = [
            f.name
            for f in obj._meta.concrete_fields
            if not f.primary_key
            and (f.attname not in deferred or f.name in legacy)
            and f.name not in untouched
        ]
        obj.save(update_fields=names)


def _tolerant(view: Callable[..., Any], *args: Any) -> Any:
    """``view(*args)`` rendered with stored plaintext readable and encryption errors shielded."""
    # Strict mode (ENCRYPTION_REJECT_PLAINTEXT) refuses to read stored plaintext; these pages
    # only show badges and write-only inputs, so they read it, to show "legacy plaintext" and
    # let it be overwritten, which encrypts it.
    with plaintext_tolerated():
        return shielded(lambda: _rendered(view(*args)))


def _rendered(response: Any) -> Any:
    """``response`` rendered now: a template response is otherwise rendered after the view."""
    if callable(getattr(response, "render", None)) and not response.is_rendered:
        response.render()
    return response


def _swap_names(fields: Any, swap: dict[str, Any]) -> Any:
    """``fields`` of a fieldset (names, or tuples of names on one line) with names swapped."""
    swapped: list[Any] = []
    for item in fields:
        if isinstance(item, (list, tuple)):
            swapped.append(
                tuple(swap.get(name, name) if isinstance(name, str) else name for name in item)
            )
        else:
            swapped.append(swap.get(item, item) if isinstance(item, str) else item)
    return swapped
