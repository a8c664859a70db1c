"""django-import-export resources that never write a secret's plaintext, nor take pasted ciphertext.

A plain ``ModelResource`` reads model attributes, which hold the decrypted values, so its export
(and the admin's Export button, even beside ``EncryptedFieldsAdminMixin``) writes every secret in
plaintext; its import sets attributes from the file, and a value that carries the ``enc:v1:`` or
``env:v1:`` prefix is stored verbatim, so pasting another row's ciphertext and exporting (or
viewing) the row reads the victim's plaintext. Put :class:`EncryptedFieldsResourceMixin` in front
of ``ModelResource``:

* **export** follows ``Meta.encrypted_export``: ``"omit"`` (the default) leaves every encrypted
  column out and writes JSON documents without their secret leaves; ``"ciphertext"`` writes the
  stored text, read raw beside each row (:class:`~authhero_encrypt.fields.StoredText`), never
  decrypted, with a legacy plaintext value encrypted on the way out (and left empty when
  encryption is off, so the file never holds plaintext);
* **import** refuses a value with either prefix (at any secret leaf of a document) as an invalid
  row with the code ``ciphertext``, whatever the model validators do, and nothing of that row is
  stored; plaintext is taken and encrypted when the row is saved. The one prefixed value taken
  is the row's own: the text stored in that very row (same primary key) right now, which
  changes nothing (the row keeps its secret) and lets a ``"ciphertext"`` export be imported
  back. A secret leaf missing from an imported document keeps the row's current value, so an
  ``"omit"`` export imports back without losing secrets; ``null`` clears it.

The import preview (the admin's confirm page) shows :data:`~authhero_encrypt.admin.MASK` for
secrets, with ``(changed)`` when the import changes one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

try:
    from import_export.resources import Diff
except ImportError as exc:
    raise ImportError(
        "authhero_encrypt.integrations.import_export needs django-import-export: "
        "pip install django-import-export (what the package's import-export extra installs)"
    ) from exc

from django.core.exceptions import ValidationError
from django.db import models

from authhero_encrypt.admin.lookups import reached_field
from authhero_encrypt.admin.masking import MASK, leaf_at
from authhero_encrypt.admin.stored import related_stored_value, with_stored_lookups
from authhero_encrypt.crypto import PREFIX as ENC_PREFIX
from authhero_encrypt.envelope.format import PREFIX as ENV_PREFIX
from authhero_encrypt.fields import JSONPathEncryptedField
from authhero_encrypt.json_paths import Path, PathTrie, path_text

__all__ = ["EXPORT_MODES", "EncryptedFieldsResourceMixin", "secret_resource_fields"]

EXPORT_MODES = ("omit", "ciphertext")
_PREFIXES = (ENC_PREFIX, ENV_PREFIX)
CHANGED = f"{MASK} (changed)"


def is_ciphertext(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_PREFIXES)


def secret_resource_fields(
    model: type[models.Model], fields: Iterable[Any]
) -> dict[Any, tuple[Any, str]]:
    """The resource fields whose attribute is an encrypted model field (or leads to one).

    Maps each to ``(model field, lookup)``. ``client__client_secret`` counts: import-export
    follows the relation and reads the decrypted attribute at its end.
    """
    found: dict[Any, tuple[Any, str]] = {}
    for field in fields:
        attribute = getattr(field, "attribute", None)
        if not isinstance(attribute, str):
            continue
        reached = reached_field(model, attribute)
        if reached is not None and not reached[2]:
            found[field] = (reached[0], attribute)
    return found


def without_leaves(trie: PathTrie, document: Any, keep: Any = None) -> Any:
    """A copy of ``document`` without its secret string leaves (those ``keep`` refuses)."""
    if not isinstance(document, dict):
        return document
    result: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, str) and (trie.wildcard or key in trie.leaves):
            if keep is not None and keep(value):
                result[key] = value
        elif isinstance(value, dict) and key in trie.children:
            result[key] = without_leaves(trie.children[key], value, keep)
        else:
            result[key] = value
    return result


def _set_leaf(document: Any, path: Path, value: Any) -> None:
    parent = leaf_at(document, path[:-1]) if len(path) > 1 else document
    if isinstance(parent, dict):
        parent[path[-1]] = value


class _SecretSafeDiff(Diff):  # type: ignore[misc]
    """The import preview's diff, with :data:`MASK` where a plain ``Diff`` shows secrets."""

    def __init__(self, resource: Any, instance: Any, new: bool) -> None:
        self.new = new
        fields = resource.get_import_fields()
        self._secret = [field in resource.secret_fields() for field in fields]
        # The plaintext is kept in memory only, to tell a changed secret from an unchanged one.
        self._before = self._read(resource, instance)
        self.left = self._shown(self._before)
        self.right: list[Any] = []

    def compare_with(self, resource: Any, instance: Any) -> None:
        self.right = self._shown(self._read(resource, instance), self._before)

    def _read(self, resource: Any, instance: Any) -> list[Any]:
        fields = resource.get_import_fields()
        return [
            (field.get_value(instance) if instance is not None else None)
            if secret
            else field.export(instance)
            for field, secret in zip(fields, self._secret, strict=True)
        ]

    def _shown(self, values: list[Any], before: list[Any] | None = None) -> list[Any]:
        shown: list[Any] = []
        for index, value in enumerate(values):
            if not self._secret[index]:
                shown.append(value)
            elif value in (None, "", {}):
                shown.append("")
            elif before is not None and value != before[index]:
                shown.append(CHANGED)
            else:
                shown.append(MASK)
        return shown


class EncryptedFieldsResourceMixin:
    """Put in front of ``resources.ModelResource``: see this module's docstring.

    ``Meta.encrypted_export`` chooses the export of encrypted fields: ``"omit"`` (the default,
    nothing secret leaves the database) or ``"ciphertext"`` (the stored text, for a backup or a
    move to a database with the same key).
    """

    if TYPE_CHECKING:  # what ModelResource provides
        _meta: Any

    def encrypted_export(self) -> str:
        mode = getattr(self._meta, "encrypted_export", "omit")
        if mode not in EXPORT_MODES:
            raise ValueError(
                f"{type(self).__qualname__}.Meta.encrypted_export must be one of "
                f"{', '.join(map(repr, EXPORT_MODES))}, not {mode!r}."
            )
        return str(mode)

    def secret_fields(self) -> dict[Any, tuple[Any, str]]:
        """This resource's fields that reach encrypted data: ``{field: (model field, lookup)}``."""
        # Asked for every field of every row: worked out once per resource instance, whose
        # fields are its own copies (ModelResource.__init__ deep-copies them).
        found: dict[Any, tuple[Any, str]] | None = self.__dict__.get("_secret_fields")
        if found is None:
            fields = self.fields.values()  # type: ignore[attr-defined]
            found = self.__dict__["_secret_fields"] = secret_resource_fields(
                self._meta.model, fields
            )
        return found

    # Export --------------------------------------------------------------------------------

    def get_export_fields(self, selected_fields: Any = None) -> list[Any]:
        fields: list[Any] = super().get_export_fields(selected_fields)  # type: ignore[misc]
        if self.encrypted_export() == "ciphertext":
            return fields
        secrets = self.secret_fields()
        # A document stays, without its secret leaves; a whole secret goes.
        return [f for f in fields if not (f in secrets and not _is_document(secrets[f][0]))]

    def filter_export(self, queryset: Any, **kwargs: Any) -> Any:
        queryset = super().filter_export(queryset, **kwargs)  # type: ignore[misc]
        if self.encrypted_export() == "ciphertext" and isinstance(queryset, models.QuerySet):
            # The stored text, read beside each row in the same query.
            lookups = [lookup for _field, lookup in self.secret_fields().values()]
            queryset = with_stored_lookups(queryset, lookups)
        return queryset

    def export_field(self, field: Any, instance: Any, **kwargs: Any) -> Any:
        target = self.secret_fields().get(field)
        if target is None:
            return super().export_field(field, instance, **kwargs)  # type: ignore[misc]
        # A dehydrate_<field> method is not called for a secret: it would get the plaintext.
        model_field, lookup = target
        if self.encrypted_export() == "omit":
            if not _is_document(model_field):
                return ""
            plain = field.get_value(instance)
            return field.widget.render(without_leaves(model_field.path_trie, plain))
        stored = related_stored_value(instance, lookup, model_field)
        return field.widget.render(_sealed(model_field, stored))

    # Import --------------------------------------------------------------------------------

    def get_diff_class(self) -> type[Any]:
        return _SecretSafeDiff

    def import_field(
        self, field: Any, instance: Any, row: Any, is_m2m: bool = False, **kwargs: Any
    ) -> None:
        target = self.secret_fields().get(field)
        if target is None or getattr(field, "column_name", None) not in row:
            super().import_field(field, instance, row, is_m2m, **kwargs)  # type: ignore[misc]
            return
        model_field, lookup = target
        value = field.clean(row, **kwargs)
        own = _own_stored(instance, lookup, model_field)
        if not _is_document(model_field):
            if not is_ciphertext(value):
                super().import_field(field, instance, row, is_m2m, **kwargs)  # type: ignore[misc]
            elif value != own:
                raise _refusal(field, value, "")
            return  # the row's own stored text: unchanged, the instance keeps its secret
        current = field.get_value(instance) if own is not None else None
        _assign(field, instance, _imported_document(field, model_field, value, own, current))


def _is_document(model_field: Any) -> bool:
    return isinstance(model_field, JSONPathEncryptedField)


def _sealed(model_field: Any, stored: Any) -> Any:
    """``stored`` as ciphertext only: legacy plaintext encrypted, left out if it cannot be."""
    if stored is None:
        return None
    if _is_document(model_field):
        return without_leaves(
            model_field.path_trie, model_field.encrypt_document(stored), is_ciphertext
        )
    sealed = model_field.get_prep_value(stored)
    return sealed if is_ciphertext(sealed) else None


def _own_stored(instance: Any, lookup: str, model_field: Any) -> Any:
    """What the row being imported into stores now; ``None`` for a new row."""
    if instance is None or instance._state.adding or instance.pk is None:
        return None
    return related_stored_value(instance, lookup, model_field)


def _imported_document(field: Any, model_field: Any, value: Any, own: Any, current: Any) -> Any:
    """The document to set: pasted ciphertext refused, the row's own kept, missing leaves kept."""
    trie = model_field.path_trie
    if not isinstance(value, dict):
        return value
    for path, leaf in list(trie.secrets(value)):
        if not is_ciphertext(leaf):
            continue
        if own is None or leaf_at(own, path) != leaf:
            raise _refusal(field, leaf, f" at '{path_text(path)}'")
        _set_leaf(value, path, leaf_at(current, path))
    for path, leaf in trie.secrets(current):
        parent = leaf_at(value, path[:-1]) if len(path) > 1 else value
        if isinstance(parent, dict) and path[-1] not in parent:
            _set_leaf(value, path, leaf)
    return value


def _assign(field: Any, instance: Any, value: Any) -> None:
    # As import-export's Field.save(), with a value already cleaned.
    if field.readonly or (value is None and not field.saves_null_values):
        return
    names = field.attribute.split("__")
    for name in names[:-1]:
        instance = getattr(instance, name, None)
    setattr(instance, names[-1], value)


def _refusal(field: Any, value: str, where: str) -> ValidationError:
    error = ValidationError(
        "This value%(where)s starts with '%(prefix)s', the prefix of stored ciphertext. "
        "Import the secret itself: an imported value is never taken as ciphertext, except "
        "the text this very row already stores.",
        code="ciphertext",
        params={"where": where, "prefix": next(p for p in _PREFIXES if value.startswith(p))},
    )
    return ValidationError({field.attribute: [error]})
