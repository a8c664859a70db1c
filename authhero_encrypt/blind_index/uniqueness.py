"""Uniqueness through a blind index: the database constraints, and validation naming the source.

``unique=True`` on an index makes its column (and its previous-generation column) unique;
``unique_with=("tenant",)`` declares ``UniqueConstraint`` s over ``(tenant, email_index)`` and
``(tenant, email_index_previous)``, so per-tenant uniqueness stays enforced during an index key
change-over just as global uniqueness does (see :mod:`authhero_encrypt.blind_index.field`).

Django's own validation cannot see a duplicate there: it compares the tag the instance was
loaded with (``None`` for a new instance, the old value's tag for a changed one), and a
``ModelForm`` leaves the non-editable index out of its checks altogether, so a duplicate reached
the database as ``IntegrityError``. The model's ``validate_unique()`` and
``validate_constraints()`` are wrapped, once per model, when such an index is declared: Django's
checks run without the index columns, and the duplicate is looked for as any lookup would find
it, from the instance's current plaintext (the tag under every configured key, and legacy rows by
their stored plaintext). The error names the source field, as a unique source field's would:
"Member with this Email already exists.", code ``unique``; per tenant, "Member with this Tenant
and Email already exists.", code ``unique_together``, as Django's ``unique_together`` says it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.db.backends.utils import truncate_name

if TYPE_CHECKING:
    from django.db.models import Model

    from authhero_encrypt.blind_index.field import BlindIndexField

__all__ = ["declare_constraints", "install_validation", "uniqueness_errors"]

_WRAPPED = "_authhero_encrypt_unique_index"
_RUNNING = "_authhero_encrypt_validating_indexes"
# Under PostgreSQL's 63 and MariaDB's 64 characters, with room for truncate_name's digest.
_MAX_NAME = 60


def constraint_name(model: type[Model], column_field: str) -> str:
    opts = model._meta
    return truncate_name(f"{opts.app_label}_{opts.model_name}_{column_field}_uniq", _MAX_NAME)


def declare_constraints(model: type[Model], index: BlindIndexField) -> None:
    """Add the ``UniqueConstraint`` s of ``unique_with`` to the model's ``Meta.constraints``.

    They are then the model's own, so ``makemigrations`` writes them (``original_attrs`` is
    what migrations read) and ``validate_constraints()`` sees them. A model rebuilt from
    migrations already has them in its state and is never given them twice.
    """
    opts = model._meta
    added = [
        models.UniqueConstraint(
            fields=[*index.unique_with, column], name=constraint_name(model, column)
        )
        for column in (index.name, f"{index.name}_previous")
    ]
    existing = {constraint.name for constraint in opts.constraints}
    constraints = [
        *opts.constraints,
        *(item for item in added if item.name not in existing),
    ]
    # A new list: the old one may be the Meta class's own, shared with subclasses.
    opts.constraints = constraints
    opts.original_attrs["constraints"] = constraints


def install_validation(model: type[Model]) -> None:
    """Wrap ``validate_unique()`` and ``validate_constraints()`` of ``model`` (once)."""
    for method, scoped in (("validate_unique", False), ("validate_constraints", True)):
        current = getattr(model, method)
        if getattr(current, _WRAPPED, False):
            continue  # inherited from a model that has one: it checks every index of self
        setattr(model, method, _wrapped(current, scoped=scoped))


def _wrapped(original: Callable[..., None], *, scoped: bool) -> Callable[..., None]:
    @functools.wraps(original)
    def validate(self: Model, exclude: Collection[str] | None = None, **kwargs: Any) -> None:
        if self.__dict__.get(_RUNNING):
            # An override below calling super(): the outer call checks the indexes.
            original(self, exclude=exclude, **kwargs)
            return
        indexes = unique_indexes(type(self))
        errors: dict[str, Any] = {}
        # Django's checks on the index columns compare a stale tag, and would repeat ours.
        without = {*(exclude or ()), *(name for index in indexes for name in columns(index))}
        self.__dict__[_RUNNING] = True
        try:
            original(self, exclude=without, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        finally:
            del self.__dict__[_RUNNING]
        for key, error in uniqueness_errors(self, indexes, exclude, scoped=scoped):
            errors.setdefault(key, []).append(error)
        if errors:
            raise ValidationError(errors)

    setattr(validate, _WRAPPED, True)
    return validate


def columns(index: BlindIndexField) -> tuple[str, str]:
    return index.name, f"{index.name}_previous"


def unique_indexes(model: type[Model]) -> list[BlindIndexField]:
    from authhero_encrypt.blind_index.field import BlindIndexField, PreviousIndexField

    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, BlindIndexField)
        and not isinstance(field, PreviousIndexField)
        and field.enforces_uniqueness
    ]


def uniqueness_errors(
    instance: Model,
    indexes: list[BlindIndexField],
    exclude: Collection[str] | None,
    *,
    scoped: bool,
) -> list[tuple[str, ValidationError]]:
    """The duplicates ``instance`` would make: ``unique`` indexes (``scoped=False``, what
    ``validate_unique`` checks) or ``unique_with`` ones (``scoped=True``, constraints)."""
    found: list[tuple[str, ValidationError]] = []
    for index in indexes:
        if bool(index.unique_with) is not scoped:
            continue
        names = (*index.unique_with, index.source_name)
        if exclude and any(name in exclude for name in names):
            continue  # as Django skips a check over a field the form does not have
        lookups = _lookups(instance, index)
        if lookups is None or not _duplicate(instance, index, lookups):
            continue
        label_names = (*index.unique_with, index.source_name)
        error = instance.unique_error_message(index.model, label_names)
        found.append((NON_FIELD_ERRORS if scoped else index.source_name, error))
    return found


def _lookups(instance: Model, index: BlindIndexField) -> dict[str, Any] | None:
    """The filter finding another row with the instance's values; ``None`` when a value is
    missing (NULL is distinct from NULL, in the constraint as in Django's checks)."""
    plaintext = index.plaintext_of(instance)
    if plaintext is None:
        return None
    lookups: dict[str, Any] = {index.source: plaintext}
    if index.source_path:
        # A JSON secret path: its rows are compared by their tags (under every key) alone.
        lookups = {f"{index.name}__in": index.match_tags(plaintext)}
    for name in index.unique_with:
        field = instance._meta.get_field(name)
        value = getattr(instance, field.attname)  # type: ignore[union-attr]
        if value is None:
            return None
        lookups[name] = value
    return lookups


def _duplicate(instance: Model, index: BlindIndexField, lookups: dict[str, Any]) -> bool:
    owner = index.model
    queryset = owner._default_manager.filter(**lookups)
    pk = instance._get_pk_val(owner._meta)
    if not instance._state.adding and pk is not None:
        queryset = queryset.exclude(pk=pk)
    return bool(queryset.exists())
