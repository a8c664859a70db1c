"""System checks on what a model declares around an encrypted field: constraints, indexes and
``db_default`` (E106, E107).

The database builds constraints and indexes from the stored text, and each ciphertext has its own
random IV: a unique constraint never sees two equal plaintexts as equal, an index orders
ciphertext, a check constraint tests ciphertext. A ``db_default`` is a literal in the schema,
written by the database into every new row without passing through the field, so it is one
value sealed once at ``migrate`` time (or stored in the clear) that key rotation never reaches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core import checks
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTransform

__all__ = ["declaration_errors"]

_UNIQUE_HINT = (
    "Drop the constraint: equal plaintexts have different ciphertexts, so it never fires. "
    'Declare a blind index instead: BlindIndexField("{name}", unique=True), or '
    'unique_with=("tenant",) for uniqueness per value of plaintext fields '
    "(authhero_encrypt.blind_index; docs/blind_index.md, 'Uniqueness')."
)
_INDEX_HINT = (
    "Drop it, or build it over a plaintext field (for JSONPathEncryptedField, a plaintext key): "
    "the database would only index or test ciphertext. For lookups by value, declare a blind "
    'index: BlindIndexField("{name}") (authhero_encrypt.blind_index; docs/blind_index.md).'
)


def _names_in_expression(expression: Any) -> Iterator[str]:
    """Every field name an expression (or a ``Q`` condition) refers to, with its path."""
    if isinstance(expression, str):
        yield expression.lstrip("-")
    elif isinstance(expression, (tuple, list)):
        # ExclusionConstraint's expressions are (expression, operator) pairs.
        for item in expression:
            yield from _names_in_expression(item)
    elif isinstance(expression, Q):
        for child in expression.children:
            if isinstance(child, tuple):
                lookup, value = child
                if not lookup.endswith("__isnull"):  # NULL is the same for ciphertext
                    yield lookup
                yield from _names_in_expression(value)
            else:
                yield from _names_in_expression(child)
    elif isinstance(expression, models.F):
        yield str(getattr(expression, "name", ""))
    elif isinstance(expression, KeyTransform):
        # KT("options__client_id"): the key path, so a plaintext key is told from a secret one.
        keys: list[str] = []
        while isinstance(expression, KeyTransform):
            keys.insert(0, str(expression.key_name))
            expression = expression.lhs
        for name in _names_in_expression(expression):
            yield "__".join((name, *keys))
    elif hasattr(expression, "get_source_expressions"):
        for source in expression.get_source_expressions():
            yield from _names_in_expression(source)


def _declared_names(declaration: Any) -> Iterator[str]:
    for attribute in ("fields", "include", "expressions"):
        for item in getattr(declaration, attribute, None) or ():
            yield from _names_in_expression(item)
    # CheckConstraint's condition (Django 5.1+; its older ``check`` keyword is stored here too),
    # and the condition of a partial index or unique constraint.
    condition = getattr(declaration, "condition", None)
    if condition is not None:
        yield from _names_in_expression(condition)


def _references(field: Any, declaration: Any) -> bool:
    for name in _declared_names(declaration):
        first, *path = name.split("__")
        if first not in (field.name, field.attname):
            continue
        if path and field.path_kind(tuple(path)) == "plain":
            continue
        return True
    return False


def declaration_errors(field: Any) -> list[checks.CheckMessage]:
    """E106 for each constraint or index over ``field``; E107 for a ``db_default``."""
    errors: list[checks.CheckMessage] = []
    meta = field.model._meta
    for attribute, declarations in (("constraints", meta.constraints), ("indexes", meta.indexes)):
        for declaration in declarations:
            if not _references(field, declaration):
                continue
            kind = type(declaration).__name__
            unique = isinstance(declaration, models.UniqueConstraint)
            errors.append(
                checks.Error(
                    f"Meta.{attribute} declares {kind} '{declaration.name}' over "
                    f"{field.label()}, which is encrypted at rest: the database would build it "
                    "over random ciphertext, which never matches equal plaintexts.",
                    hint=(_UNIQUE_HINT if unique else _INDEX_HINT).format(name=field.name),
                    obj=field,
                    id="authhero_encrypt.E106",
                )
            )
    for names in meta.unique_together:
        if field.name in names or field.attname in names:
            errors.append(
                checks.Error(
                    f"Meta.unique_together {tuple(names)!r} includes {field.label()}, which is "
                    "encrypted at rest: the database would compare random ciphertext, which "
                    "never matches equal plaintexts.",
                    hint=_UNIQUE_HINT.format(name=field.name),
                    obj=field,
                    id="authhero_encrypt.E106",
                )
            )
    if field.has_db_default():
        errors.append(
            checks.Error(
                f"db_default on {field.label()}: the database writes that literal into new "
                "rows without the field encrypting it, so it is stored in the clear (or as one "
                "ciphertext sealed at migrate time that key rotation never re-encrypts).",
                hint="Use default= (a value or a callable), which save() encrypts per row.",
                obj=field,
                id="authhero_encrypt.E107",
            )
        )
    return errors
