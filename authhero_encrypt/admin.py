"""Admin support: secrets are never written into the admin's HTML, neither plaintext nor ciphertext.

Put :class:`EncryptedFieldsAdminMixin` in front of ``admin.ModelAdmin`` and every encrypted field of
the model is handled:

* list columns and read-only views show a status badge (``encrypted``, ``encrypted, key <id>``,
  ``legacy plaintext``, ``empty``, ``malformed``) worked out from the *stored* text, which the
  queryset reads raw beside the row, in the same query;
* change forms edit encrypted strings write-only: a password input that starts empty, "leave blank
  to keep the current value", and a checkbox to clear it; an untouched secret is left out of the
  ``UPDATE``, so its stored bytes do not change, unless it is legacy plaintext, which the save
  encrypts;
* a ``JSONPathEncryptedField`` is edited as its JSON document with every encrypted path replaced
  by :data:`MASK`; a mask sent back unchanged keeps the current secret, a new value replaces it;
* a form field the admin's ``form`` declares for an encrypted field is swapped for the write-only
  (or masked) one, since a plain input would render the plaintext;
* ``list_filter`` items that reach encrypted data are left out (a filter lists the values it
  finds), and ``list_display`` lookups such as ``client__client_secret`` show a status badge;
* the POST parameters that carry secrets (the model's and its inlines', prefixed or not) are
  marked sensitive, so error reports (``AdminEmailHandler``, the 500 page) cleanse them.

:class:`JSONKeyColumn` lists a plaintext key of a JSON document (``options.client_id``) as a
sortable column. ``authhero_encrypt.admin_checks`` reports ``search_fields``, ``list_filter``,
``ordering`` and ``list_display`` lookups that reach encrypted data.
"""

from __future__ import annotations

import copy
import enum
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin
from django.contrib.admin import widgets as admin_widgets
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from authhero_encrypt.admin_checks import (
    display_lookups,
    display_secret,
    filter_lookup,
    json_path_secret,
    model_secret_fields,
    secret_target,
)
from authhero_encrypt.crypto import IV_BYTES, TAG_BYTES, is_encrypted, parse_stored
from authhero_encrypt.exceptions import DecryptionError
from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.expressions import StoredText
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.inventory import load_json
from authhero_encrypt.json_paths import Path, PathTrie, path_text

if TYPE_CHECKING:
    from django.contrib.admin.views.main import ChangeList
    from django.http import HttpRequest

    _AdminBase = admin.ModelAdmin[Any]
    _FormBase = forms.ModelForm[Any]
else:
    _AdminBase = object
    _FormBase = object

__all__ = [
    "MASK",
    "RETYPE",
    "EncryptedFieldsAdminMixin",
    "EncryptedFieldsFormMixin",
    "JSONKeyColumn",
    "MaskedJSONField",
    "SecretAction",
    "WriteOnlySecretField",
    "WriteOnlySecretWidget",
    "document_status",
    "secret_status",
]

MASK = "********"
"""Stands in for every encrypted string of a JSON document in the change form."""

RETYPE = "<type it again: not shown after an error>"
"""Replaces a newly typed secret when a form is shown again after a validation error."""

MALFORMED = "malformed"
"""The badge of a prefixed value that does not parse; what follows ``enc:v1:`` is never shown."""

_STORED_ALIAS = "_authhero_stored_{}"


# Status ------------------------------------------------------------------------------------------


def secret_status(stored: str | None) -> tuple[str, str]:
    """``(state, label)`` for one stored value.

    ``state`` is ``encrypted``, ``legacy``, ``empty`` or ``malformed``. Works on the stored text
    alone (nothing is decrypted), so it is cheap and it also describes values that no configured
    key can open.
    """
    if stored is None or stored == "":
        return "empty", "empty"
    if not is_encrypted(stored):
        return "legacy", "legacy plaintext"
    try:
        # A key id is echoed into a page only from a value that parses as a whole: whatever
        # else follows the prefix may be a secret.
        key_id, raw = parse_stored(stored)
    except DecryptionError:
        return MALFORMED, MALFORMED
    if len(raw) == IV_BYTES + TAG_BYTES:
        # GCM does not pad: an IV and a tag alone hold the empty string.
        return "empty", "empty"
    if key_id is None:
        return "encrypted", "encrypted"
    return "encrypted", f"encrypted, key {key_id}"


def leaf_statuses(trie: PathTrie, document: Any) -> list[tuple[Path, str, str]]:
    """``(path, state, label)`` for every encrypted-path string of a stored document."""
    return [(path, *secret_status(value)) for path, value in trie.secrets(document)]


def document_status(trie: PathTrie, document: Any) -> tuple[str, str]:
    """One ``(state, label)`` for a stored document: legacy plaintext anywhere wins."""
    return _summary(leaf_statuses(trie, document))


def _summary(leaves: Sequence[tuple[Path, str, str]]) -> tuple[str, str]:
    # A malformed leaf blocks writing the document; legacy plaintext is encrypted by the next one.
    if any(state == MALFORMED for _, state, _ in leaves):
        return MALFORMED, MALFORMED
    if any(state == "legacy" for _, state, _ in leaves):
        return "legacy", "legacy plaintext"
    labels = {label for _, state, label in leaves if state == "encrypted"}
    if not labels:
        return "empty", "empty"
    if len(labels) == 1:
        return "encrypted", labels.pop()
    return "encrypted", "encrypted, several keys"


def badge(state: str, label: str, title: str = "") -> SafeString:
    """The status as HTML; ``title`` (per-path details of a document) becomes its tooltip."""
    if title:
        return format_html(
            '<span class="authhero-status authhero-status-{}" title="{}">{}</span>',
            state,
            title,
            label,
        )
    return format_html('<span class="authhero-status authhero-status-{}">{}</span>', state, label)


def _details(leaves: Iterable[tuple[Path, str, str]]) -> str:
    return "; ".join(f"{path_text(path)}: {label}" for path, _, label in leaves)


# Stored values -----------------------------------------------------------------------------------


def _stored_expression(lookup: str) -> StoredText:
    # The column as text, without the field's converter: the stored form, not the plaintext.
    return StoredText(lookup)


def _stored_alias(lookup: str) -> str:
    # Field names cannot hold "__", so a related lookup's alias cannot be taken for a field's.
    return _STORED_ALIAS.format(lookup.replace(LOOKUP_SEP, "_0_"))


def with_stored_values(queryset: models.QuerySet[Any], fields: Iterable[Any]) -> Any:
    """``queryset`` with the stored text of ``fields`` read beside each row, in the same query."""
    return _with_stored_lookups(queryset, [field.name for field in fields])


def _with_stored_lookups(queryset: models.QuerySet[Any], lookups: Iterable[str]) -> Any:
    return queryset.annotate(
        **{_stored_alias(lookup): _stored_expression(lookup) for lookup in lookups}
    )


def stored_value(obj: models.Model, field: models.Field[Any, Any]) -> Any:
    """The stored text of ``field`` on ``obj``; a JSON document comes back parsed.

    Rows from the mixin's querysets carry it already; any other instance costs one query.
    """
    alias = _stored_alias(field.name)
    if alias not in obj.__dict__:
        if obj._state.adding or obj.pk is None:
            return None
        manager = type(obj)._base_manager
        rows = manager.using(obj._state.db).filter(pk=obj.pk)
        obj.__dict__[alias] = (
            with_stored_values(rows, [field]).values_list(alias, flat=True).first()
        )
    raw = obj.__dict__[alias]
    if isinstance(field, JSONPathEncryptedField) and raw is not None:
        return load_json(raw)
    return raw


def _related_stored_value(obj: models.Model, lookup: str, field: Any) -> Any:
    """The stored text of ``field`` on the row ``lookup`` (``client__client_secret``) leads to.

    The changelist reads it in its query; elsewhere the relations are followed and the row at
    the end costs one query.
    """
    alias = _stored_alias(lookup)
    if alias in obj.__dict__:
        raw = obj.__dict__[alias]
        if isinstance(field, JSONPathEncryptedField) and raw is not None:
            return load_json(raw)
        return raw
    target: Any = obj
    for name in lookup.split(LOOKUP_SEP)[:-1]:
        target = getattr(target, name, None)
        if target is None:
            return None
    return stored_value(target, field)


# Form fields -------------------------------------------------------------------------------------


class SecretAction(enum.Enum):
    """What a write-only secret input asks for when it carries no new value."""

    KEEP = "keep"
    CLEAR = "clear"


class WriteOnlySecretWidget(forms.MultiWidget):
    """A password input that never renders a value, and a "clear" checkbox beside it."""

    template_name = "authhero_encrypt/widgets/write_only_secret.html"
    # One label, for the password input; the checkbox carries its own.
    use_fieldset = False

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            {
                "": forms.PasswordInput(
                    attrs={"autocomplete": "new-password", "class": "vTextField"},
                    render_value=False,
                ),
                "clear": forms.CheckboxInput(),
            },
            attrs,
        )
        self.can_clear = True

    def decompress(self, value: Any) -> list[Any]:
        return [None, False]

    def id_for_label(self, id_: str) -> str:
        return f"{id_}_0" if id_ else ""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        # Whatever comes in (the plaintext as initial, or what was typed before an error), the
        # password input is rendered empty; only the checkbox keeps its state.
        clear = bool(value[1]) if isinstance(value, (list, tuple)) and len(value) > 1 else False
        context = super().get_context(name, [None, clear], attrs)
        context["widget"]["can_clear"] = self.can_clear
        return context


class WriteOnlySecretField(forms.MultiValueField):
    """Cleans to the new secret, :attr:`SecretAction.KEEP` or :attr:`SecretAction.CLEAR`.

    ``keep_current`` is on for an existing row (blank keeps the stored value) and off for a new
    one (blank is blank, and a required secret must be typed).
    """

    widget = WriteOnlySecretWidget
    default_error_messages = {
        "both": "Type a new value or tick “clear the stored value”, not both.",
        "required": "This field is required.",
        "required_clear": "This field is required, so it cannot be cleared; type a new value.",
    }

    def __init__(
        self,
        *,
        max_length: int | None = None,
        empty_value: str | None = "",
        required: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("show_hidden_initial", None)
        self.empty_value = empty_value
        self.secret_required = required
        self.keep_current = True
        super().__init__(
            (
                forms.CharField(max_length=max_length, required=False, strip=False),
                forms.BooleanField(required=False),
            ),
            require_all_fields=False,
            required=False,
            **kwargs,
        )

    def configure(self, *, keep_current: bool, help_text: Any) -> None:
        self.keep_current = keep_current
        cast(WriteOnlySecretWidget, self.widget).can_clear = keep_current
        self.help_text = help_text

    def compress(self, data_list: Sequence[Any]) -> Any:
        value, clear = (data_list[0] or "", bool(data_list[1])) if data_list else ("", False)
        if value:
            if clear and self.keep_current:
                raise ValidationError(self.error_messages["both"], code="both")
            return value
        if not self.keep_current:
            if self.secret_required:
                raise ValidationError(self.error_messages["required"], code="required")
            return self.empty_value
        if not clear:
            return SecretAction.KEEP
        if self.secret_required:
            raise ValidationError(self.error_messages["required_clear"], code="required")
        return SecretAction.CLEAR

    def has_changed(self, initial: Any, data: Any) -> bool:
        if not isinstance(data, (list, tuple)) or len(data) < 2:
            return False
        return bool(data[0]) or (self.keep_current and bool(data[1]))


class MaskedJSONField(forms.JSONField):
    """A JSON document in which every encrypted-path string is shown as :data:`MASK`.

    ``current_document`` (set by the form for an existing row) is the document as the instance
    was loaded, decrypted; a mask that comes back is replaced by the current plaintext leaf, so
    the instance never holds ciphertext (``save_model`` and ``post_save`` receivers see what the
    application always sees). A document that comes back unchanged is not written at all, so it
    stays byte for byte as stored; a changed one is written whole, which encrypts its kept
    leaves afresh (and legacy plaintext leaves for the first time).
    """

    default_error_messages = {
        "invalid": (
            "Enter a valid JSON document. What you typed is not shown again, since it may hold "
            "secrets: the stored document is shown instead."
        ),
    }

    def __init__(self, *, path_trie: PathTrie, **kwargs: Any) -> None:
        kwargs["show_hidden_initial"] = False
        self.path_trie = path_trie
        self.current_document: Any = None
        self.has_current = False
        super().__init__(**kwargs)

    def mask(self, document: Any) -> Any:
        return self.path_trie.transform(document, lambda _path, value: _masked(value))

    def bound_data(self, data: Any, initial: Any) -> Any:
        value = super().bound_data(data, initial)
        if isinstance(value, forms.fields.InvalidJSONInput):
            # Unparsable text cannot be masked: show the document as it was instead.
            return initial
        # A newly typed secret is not echoed; RETYPE makes sure it is not lost silently either.
        return self.path_trie.transform(value, lambda _path, leaf: leaf if leaf == MASK else RETYPE)

    def prepare_value(self, value: Any) -> Any:
        # Indented, so a nested secret such as configuration.client_secret is easy to find.
        return json.dumps(self.mask(value), ensure_ascii=False, indent=2, cls=self.encoder)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            submitted = self.to_python(data)
        except ValidationError:
            return True
        return not _same_json(self.mask(initial), submitted)

    def clean(self, value: Any) -> Any:
        document = super().clean(value)
        errors: list[ValidationError] = []

        def restore(path: Path, leaf: str) -> str:
            if leaf == RETYPE:
                errors.append(
                    ValidationError(
                        "Type the value of “%(path)s” again: it is not shown after an error.",
                        code="retype",
                        params={"path": path_text(path)},
                    )
                )
            elif leaf == MASK:
                kept = _leaf_at(self.current_document, path) if self.has_current else None
                if isinstance(kept, str):
                    return kept
                errors.append(
                    ValidationError(
                        "“%(path)s” has no stored value to keep; type its value.",
                        code="no_stored_value",
                        params={"path": path_text(path)},
                    )
                )
            return leaf

        restored = self.path_trie.transform(document, restore)
        if errors:
            raise ValidationError(errors)
        return restored


def _masked(value: str) -> str:
    return value if value == RETYPE else MASK


def _leaf_at(document: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def _same_json(a: Any, b: Any) -> bool:
    # As Django's JSONField.has_changed: key order does not matter, and True is not 1.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class EncryptedFieldsFormMixin(_FormBase):
    """Model form side of the write-only editing; the admin mixin adds it to every form it builds.

    After validation ``kept_secrets`` names the encrypted fields the form leaves as stored: they
    are not in ``cleaned_data``, so the instance keeps the value it was loaded with, and the
    admin leaves them out of the ``UPDATE``.

    A form field declared on the form class for an encrypted model field (``client_secret =
    forms.CharField()``) takes precedence over ``formfield_for_dbfield`` in Django, and would
    render the plaintext; it is replaced by the write-only (or masked) field, keeping its label
    and help text.
    """

    kept_secrets: set[str]
    loaded_secrets: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept_secrets = set()
        instance = self.instance
        adding = instance._state.adding
        secret_fields = model_secret_fields(type(instance))
        for model_field in secret_fields:
            declared = self.fields.get(model_field.name)
            if declared is not None and not isinstance(
                declared, (WriteOnlySecretField, MaskedJSONField)
            ):
                kept = {"label": declared.label, "help_text": declared.help_text}
                self.fields[model_field.name] = secret_formfield(
                    model_field, **{key: value for key, value in kept.items() if value}
                )
        # What the instance was loaded with, so a save can tell untouched secrets that are not
        # in the form (read-only, excluded) from ones code has changed since.
        self.loaded_secrets = {}
        if not adding:
            deferred = instance.get_deferred_fields()
            for model_field in secret_fields:
                if model_field.attname not in deferred:
                    value = model_field.value_from_object(instance)
                    self.loaded_secrets[model_field.name] = copy.deepcopy(value)
        for name, field in self.fields.items():
            if isinstance(field, WriteOnlySecretField):
                model_field = instance._meta.get_field(name)
                if adding:
                    field.configure(keep_current=False, help_text=field.help_text)
                    continue
                _, label = secret_status(stored_value(instance, model_field))
                field.configure(
                    keep_current=True,
                    help_text=_join(
                        f"Currently: {label}.",
                        "Leave blank to keep the current value; tick “clear the stored value” "
                        "to remove it.",
                        field.help_text,
                    ),
                )
            elif isinstance(field, MaskedJSONField):
                model_field = instance._meta.get_field(name)
                intro = f"Encrypted values show as {MASK}: leave one as it is to keep it, or "
                intro += "type a new value to replace it."
                if not adding:
                    field.has_current = True
                    field.current_document = copy.deepcopy(model_field.value_from_object(instance))
                    stored = stored_value(instance, model_field)
                    leaves = leaf_statuses(field.path_trie, stored)
                    if leaves:
                        intro = f"Currently: {_details(leaves)}. {intro}"
                field.help_text = _join(intro, field.help_text)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned: dict[str, Any] = self.cleaned_data
        for name, field in self.fields.items():
            if name not in cleaned:
                continue
            value = cleaned[name]
            if isinstance(field, WriteOnlySecretField):
                if value is SecretAction.KEEP:
                    del cleaned[name]
                    self.kept_secrets.add(name)
                elif value is SecretAction.CLEAR:
                    cleaned[name] = field.empty_value
            elif (
                isinstance(field, MaskedJSONField)
                and field.has_current
                and _same_json(value, field.current_document)
            ):
                del cleaned[name]
                self.kept_secrets.add(name)
        return cleaned


def secret_formfield(db_field: Any, **kwargs: Any) -> WriteOnlySecretField | MaskedJSONField:
    """The form field that edits the encrypted ``db_field`` without rendering its value."""
    if isinstance(db_field, JSONPathEncryptedField):
        # Any widget is fine (it renders the masked document); another form class is not.
        kwargs["form_class"] = MaskedJSONField
        kwargs.setdefault("widget", admin_widgets.AdminTextareaWidget)
        return cast(MaskedJSONField, db_field.formfield(path_trie=db_field.path_trie, **kwargs))
    # Neither a custom widget nor form class: either could render the value.
    return WriteOnlySecretField(
        max_length=db_field.max_length,
        empty_value=None if db_field.null else "",
        required=not db_field.blank,
        label=kwargs.get("label") or capfirst(db_field.verbose_name),
        help_text=kwargs.get("help_text") or db_field.help_text,
        error_messages=kwargs.get("error_messages"),
    )


def untouched_secrets(obj: models.Model, form: Any) -> set[str]:
    """Encrypted fields a save of ``obj`` edited through ``form`` must not write.

    Those the form kept, and those outside the form whose value is still the loaded one.
    """
    untouched = set(getattr(form, "kept_secrets", ()))
    fields = getattr(form, "fields", {})
    for name, loaded in getattr(form, "loaded_secrets", {}).items():
        field: Any = obj._meta.get_field(name)
        if name not in fields and field.value_from_object(obj) == loaded:
            untouched.add(name)
    return untouched


def _join(*parts: Any) -> str:
    return " ".join(str(part) for part in parts if part)


def _with_secret_handling(form_class: type[Any]) -> type[Any]:
    if issubclass(form_class, EncryptedFieldsFormMixin):
        return form_class
    return type(form_class.__name__, (EncryptedFieldsFormMixin, form_class), {})


# Columns -----------------------------------------------------------------------------------------


class _SecretColumn:
    """Stands in for an encrypted field in ``list_display`` and read-only views: a status badge.

    Callables are what the admin accepts besides field names; this one is named after the field,
    or after the ``list_display`` lookup it replaces (``client__client_secret``), so CSS classes
    and help texts still match, and it is not sortable.
    """

    def __init__(self, field: Any, *, detail: bool, lookup: str | None = None) -> None:
        self.field = field
        self.detail = detail
        # The relations from the listed model to the field, then its name; None for its own.
        self.lookup = lookup
        self.__name__ = field.name if lookup is None else lookup
        self.short_description = capfirst(field.verbose_name)

    def __call__(self, obj: models.Model) -> SafeString:
        if self.lookup is None:
            stored = stored_value(obj, self.field)
        else:
            stored = _related_stored_value(obj, self.lookup, self.field)
        if not isinstance(self.field, JSONPathEncryptedField):
            return badge(*secret_status(stored))
        trie = self.field.path_trie
        leaves = leaf_statuses(trie, stored)
        summary = badge(*_summary(leaves), title=_details(leaves))
        if not self.detail:
            return summary
        masked = trie.transform(stored, lambda _path, _value: MASK)
        per_path = format_html_join(
            "",
            "<li><code>{}</code> {}</li>",
            ((path_text(path), badge(state, label)) for path, state, label in leaves),
        )
        return format_html(
            '<pre class="authhero-masked-document">{}</pre>{}',
            json.dumps(masked, indent=2, ensure_ascii=False, sort_keys=True),
            format_html('<ul class="authhero-path-status">{}</ul>', per_path)
            if leaves
            else summary,
        )


class JSONKeyColumn:
    """A ``list_display`` column for one key of a ``JSONPathEncryptedField`` document.

    ``JSONKeyColumn("options", "client_id")`` shows ``options.client_id`` and sorts on it in the
    database. It reads the stored document, in which plaintext keys are plain; an encrypted path
    shows its status badge instead, and an object that holds encrypted paths
    (``JSONKeyColumn("options", "configuration")``) shows them as :data:`MASK`, so a column can
    never leak a secret, neither its plaintext nor its ciphertext.
    """

    def __init__(self, field_name: str, path: str, *, description: str | None = None) -> None:
        keys = tuple(path.split("."))
        if not field_name or "" in keys:
            raise ValueError(
                f"JSONKeyColumn needs a field name and a dot-separated key path, got "
                f"{field_name!r} and {path!r}."
            )
        self.field_name = field_name
        self.path: Path = keys
        self.__name__ = "__".join((field_name, *keys))
        self.admin_order_field = self.__name__
        self.short_description = description or f"{field_name}.{path}"

    def __call__(self, obj: models.Model) -> Any:
        field = obj._meta.get_field(self.field_name)
        if not isinstance(field, JSONPathEncryptedField):
            raise TypeError(f"JSONKeyColumn: {field} is not a JSONPathEncryptedField.")
        value = _leaf_at(stored_value(obj, field), self.path)
        if json_path_secret(field.path_trie, self.path) is not None:
            if isinstance(value, str):
                return badge(*secret_status(value))
            node = field.path_trie.node_at(self.path)
            if node is not None:
                value = node.transform(value, lambda _path, _leaf: MASK)
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)


# The ModelAdmin mixin ----------------------------------------------------------------------------


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
        self._list_columns = {f.name: _SecretColumn(f, detail=False) for f in fields}
        self._detail_columns = {f.name: _SecretColumn(f, detail=True) for f in fields}

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
                if isinstance(column, _SecretColumn) and column.lookup is not None
            ]
            if related:
                queryset = _with_stored_lookups(queryset, related)
            return queryset.defer(*secrets) if secrets else queryset

        return type(base.__name__, (base,), {"get_queryset": get_queryset})

    def get_list_display(self, request: HttpRequest) -> Any:
        return [
            self._related_column(item) or self._column(item, self._list_columns)
            for item in super().get_list_display(request)
        ]

    def _column(self, item: Any, columns: dict[str, _SecretColumn]) -> Any:
        return columns.get(item, item) if isinstance(item, str) else item

    def _related_column(self, item: Any) -> _SecretColumn | None:
        # Django (>= 5.1) follows client__client_secret attribute by attribute to the plaintext.
        if not any(display_lookups(self, [item])):
            return None
        shown = display_secret(self.model, item)
        if shown is None:
            return None
        return _SecretColumn(shown, detail=False, lookup=item)

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
        return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        if request.method == "POST":
            mark_secrets_sensitive(request, self._posted_secret_names(request))
        return super().changelist_view(request, extra_context)

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
        return _with_secret_handling(super().get_form(request, obj, change, **kwargs))

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        return _with_secret_handling(super().get_changelist_form(request, **kwargs))

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


def holds_legacy_plaintext(obj: models.Model, field: Any) -> bool:
    """Whether ``field`` of ``obj`` is stored as legacy plaintext (anywhere, for a document)."""
    stored = stored_value(obj, field)
    if isinstance(field, JSONPathEncryptedField):
        return document_status(field.path_trie, stored)[0] == "legacy"
    return secret_status(stored)[0] == "legacy"


def mark_secrets_sensitive(request: HttpRequest, names: Iterable[str]) -> None:
    """Mark the POST parameters of ``request`` named ``names`` (or ``<prefix>-<name>``) sensitive.

    What ``sensitive_post_parameters`` does, for names that depend on the form: a formset's
    fields are posted as ``form-0-client_secret``, an inline's as ``<prefix>-0-client_secret``.
    Field names cannot hold ``-``, so the part after the last one is the field's name.
    """
    if request.method != "POST":
        return
    current: Any = getattr(request, "sensitive_post_parameters", None)
    if current == "__ALL__":
        return
    wanted = set(names)
    found = [key for key in request.POST if key.rpartition("-")[2] in wanted]
    if found:
        request.sensitive_post_parameters = [*(current or ()), *found]  # type: ignore[attr-defined]


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
