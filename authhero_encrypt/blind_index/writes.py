"""Every write that sets an indexed field sets its blind index in the same statement.

``save()``, ``create()`` and ``bulk_create()`` call each field's ``pre_save()``, which computes
the tags. The paths that do not are wrapped here, once, from ``AppConfig.ready()``:

* ``QuerySet.update()`` and ``bulk_update()`` (which is ``update()`` of ``Case`` expressions)
  queue their values in ``UpdateQuery.add_update_fields()``, and a parent's values in
  ``add_related_update()``: the tags of each value are queued beside it (``save()`` of a
  stored row queues its values there too, with the tags its ``pre_save()`` computed, which are
  kept, so that a write pays one HMAC per index and key);
* an upsert (``bulk_create(update_conflicts=True, update_fields=[...])``) builds an
  ``InsertQuery`` whose ``update_fields`` gain the indexes of every source they list;
* ``save(update_fields=[...])`` naming the source but not its index is refused (the
  ``pre_save`` signal cannot add a field), and a raw save (``loaddata``) recomputes the tags
  from the fixture's value instead of trusting the fixture's.

An index is never set by hand: a value given for it is refused, since it would make the row
match a value it does not hold.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError
from django.db.models import signals
from django.db.models.expressions import Case, Value, When
from django.db.models.functions import Cast
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery

from authhero_encrypt.blind_index.field import BlindIndexField, PreviousIndexField, indexes_of
from authhero_encrypt.blind_index.keys import get_index_keyring

__all__ = ["install"]

_MARK = "_authhero_encrypt_blind_index"
_FROM_UPDATE = "_authhero_encrypt_from_update"


def tag_expression(index: BlindIndexField, value: Any) -> Any:
    """The index's value for an update that sets its source to ``value``."""
    if isinstance(value, Value):
        return Value(tag_expression(index, value.value), output_field=index)
    if isinstance(value, Cast) and isinstance(value.get_source_expressions()[0], Case):
        return Cast(tag_expression(index, value.get_source_expressions()[0]), output_field=index)
    if isinstance(value, Case):
        # bulk_update(): CASE WHEN pk = ... THEN Value(v) ... END, one branch per object.
        cases = [
            When(when.condition, then=tag_expression(index, when.result)) for when in value.cases
        ]
        return Case(*cases, default=tag_expression(index, value.default), output_field=index)
    if hasattr(value, "resolve_expression"):
        # The source refuses it too (its SQL would be computed on plaintext or ciphertext).
        raise index.source_field.write_expression_error(value, "update()")
    return index.stored_for(index.plaintext(index.value_at_path(value)))


def _by_hand(index: BlindIndexField, where: str) -> FieldError:
    return FieldError(
        f"{index.label()} is the blind index of {index.source_field.label()} and is computed "
        f"from it; {where} cannot set it. Set {index.source_name} instead."
    )


def tag_expressions(field: Any, value: Any) -> list[tuple[BlindIndexField, Any]]:
    """Each index over ``field`` with its value for an update setting ``field`` to ``value``.

    With one key a unique index's previous column holds the declared column's tag: it is
    computed once (one HMAC per index per key generation), not once per column.
    """
    ring = get_index_keyring()
    found: dict[BlindIndexField, Any] = {}
    for index in indexes_of(field, for_writes=True):
        main = index.main if isinstance(index, PreviousIndexField) else None
        if main is not None and main in found and ring.oldest is ring.active:
            found[index] = found[main]
        else:
            found[index] = tag_expression(index, value)
    return list(found.items())


def _with_tags(values_seq: list[tuple[Any, Any, Any]]) -> list[tuple[Any, Any, Any]]:
    """``update()``'s values: every index recomputed from its source, none taken by hand."""
    sources = {field.name for field, _model, _value in values_seq}
    kept: list[tuple[Any, Any, Any]] = []
    added: list[tuple[Any, Any, Any]] = []
    for field, model, value in values_seq:
        if isinstance(field, BlindIndexField):
            if field.source_name not in sources:
                raise _by_hand(field, "update()")
            continue  # recomputed below from the source's value
        kept.append((field, model, value))
        added.extend((index, model, tag) for index, tag in tag_expressions(field, value))
    return kept + added


def _with_missing_tags(values_seq: list[tuple[Any, Any, Any]]) -> list[tuple[Any, Any, Any]]:
    """``save()``'s values (``Model._do_update()``): each index's ``pre_save()`` computed it
    from the instance's source, so those are kept; an index missing beside its source is added
    (``before_save`` refuses that for ``update_fields``, so this is a safety net). An index
    whose source is not written (not loaded: ``defer()``) is left out, so the row keeps the tag
    it has rather than whatever the instance's attribute says."""
    given = {field.name for field, _model, _value in values_seq}
    kept = [
        each
        for each in values_seq
        if not isinstance(each[0], BlindIndexField) or each[0].source_name in given
    ]
    if kept:  # nothing else to write: Django's UPDATE needs a value (a reloaded row re-saved)
        values_seq = kept
    added: list[tuple[Any, Any, Any]] = []
    for field, model, value in values_seq:
        if isinstance(field, BlindIndexField):
            continue
        indexes = indexes_of(field, for_writes=True)
        if any(index.name not in given for index in indexes):
            added.extend(
                (index, model, tag)
                for index, tag in tag_expressions(field, value)
                if index.name not in given
            )
    return values_seq + added


def _install_updates() -> None:
    add_fields = UpdateQuery.add_update_fields
    if getattr(add_fields, _MARK, False):
        return
    add_values = UpdateQuery.add_update_values

    # QuerySet.update() (and bulk_update()) enter through add_update_values(); save() calls
    # add_update_fields() directly, with the values its fields' pre_save() computed.
    def add_update_values(self: UpdateQuery, values: Any) -> None:
        setattr(self, _FROM_UPDATE, True)
        try:
            add_values(self, values)
        finally:
            delattr(self, _FROM_UPDATE)

    def add_update_fields(self: UpdateQuery, values_seq: Any) -> None:
        if getattr(self, _FROM_UPDATE, False):
            add_fields(self, _with_tags(list(values_seq)))
        else:
            add_fields(self, _with_missing_tags(list(values_seq)))

    add_related = UpdateQuery.add_related_update

    def add_related_update(self: UpdateQuery, model: Any, field: Any, value: Any) -> None:
        if isinstance(field, BlindIndexField):
            raise _by_hand(field, "update()")
        add_related(self, model, field, value)
        for index, tag in tag_expressions(field, value):
            add_related(self, model, index, tag)

    wrapped = (
        (add_update_fields, add_fields),
        (add_related_update, add_related),
        (add_update_values, add_values),
    )
    for function, original in wrapped:
        setattr(function, _MARK, True)
        function.__doc__ = original.__doc__
    UpdateQuery.add_update_values = add_update_values  # type: ignore[method-assign]
    UpdateQuery.add_update_fields = add_update_fields  # type: ignore[method-assign]
    UpdateQuery.add_related_update = add_related_update  # type: ignore[method-assign]


def _install_upserts() -> None:
    init = InsertQuery.__init__
    if getattr(init, _MARK, False):
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if self.update_fields:
            fields = list(self.update_fields)
            for field in self.update_fields:
                if isinstance(field, BlindIndexField):
                    raise _by_hand(field, "bulk_create(update_fields=...)")
                fields.extend(i for i in indexes_of(field, for_writes=True) if i not in fields)
            self.update_fields = fields

    setattr(__init__, _MARK, True)
    InsertQuery.__init__ = __init__  # type: ignore[method-assign]


def _model_indexes(model: Any) -> tuple[BlindIndexField, ...]:
    found = model.__dict__.get("_authhero_blind_indexes")
    if found is None:
        found = tuple(f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField))
        model._authhero_blind_indexes = found
    return found  # type: ignore[no-any-return]


def before_save(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    """Refuse a ``save(update_fields=...)`` that would leave a tag stale; retag raw saves."""
    indexes = _model_indexes(sender)
    if not indexes:
        return
    if raw:
        for index in indexes:
            setattr(instance, index.attname, index.stored_for(index.plaintext_of(instance)))
        return
    if update_fields is None:
        return
    for index in indexes:
        source = index.source_field
        named = source.name in update_fields or source.attname in update_fields
        if named and index.name not in update_fields:
            raise FieldError(
                f"save(update_fields=[..., {source.name!r}]) would leave {index.label()}, the "
                f"blind index of {source.label()}, stale: add {index.name!r} to update_fields "
                "(it is computed in the same statement)."
            )


def install() -> None:
    """Wrap the write paths once (``AppConfig.ready()`` may run twice)."""
    _install_updates()
    _install_upserts()
    signals.pre_save.connect(before_save, dispatch_uid="authhero_encrypt.blind_index.before_save")
