"""Writes of expressions: what an encrypted field does with an expression it is asked to store.

Django compiles an expression's SQL without asking the field to prepare its value, so a write of
anything but a plain value would land in the clear. A literal in ``Value()`` is sealed as
``save()`` would seal it; every other expression is refused with ``FieldError`` before any SQL
is sent. :class:`WriteExpressionsMixin` is a base of every encrypted field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.expressions import Case, Value
from django.db.models.functions import Cast

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

__all__ = ["WriteExpressionsMixin"]


class WriteExpressionsMixin:
    """Sealing the literals of an expression written to an encrypted field, or refusing it."""

    if TYPE_CHECKING:

        def label(self) -> str: ...

    def stored_literal(self, value: Any) -> Any:
        """The value to write for the plain ``value``, in the form the column holds."""
        raise NotImplementedError

    def plain_output_field(self) -> models.Field[Any, Any]:
        """A field that writes a stored value as it is, for a sealed ``Value``."""
        return models.TextField()

    def pre_save(self, model_instance: Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)  # type: ignore[misc]
        if not hasattr(value, "resolve_expression"):
            return value
        if isinstance(value, Value):
            # The literal goes through the usual path, which encrypts it. JSON null is the one
            # Value kept, because a bare None would store SQL NULL instead.
            return value if value.value is None else value.value
        raise self.write_expression_error(value, "save()")

    def get_placeholder(self, value: Any, compiler: Any, connection: BaseDatabaseWrapper) -> str:
        # Called by QuerySet.update() and bulk_update() for every value, right before the
        # value is compiled; an expression here is a resolved copy, so sealing it in place
        # changes nobody else's object.
        if hasattr(value, "as_sql"):
            self.seal_expression(value)
        return "%s"

    def get_placeholder_sql(
        self, value: Any, compiler: Any, connection: BaseDatabaseWrapper
    ) -> tuple[str, Any]:
        # Django 6.1's name for the hook above, which also returns the SQL; it is called for
        # inserts and updates alike.
        if hasattr(value, "as_sql"):
            self.seal_expression(value)
            sql, params = compiler.compile(value)
            return sql, params
        return "%s", (value,)

    def seal_expression(self, expression: Any, *, apply: bool = True) -> None:
        """Seal the literals of ``expression`` in place, or refuse it with ``FieldError``.

        With ``apply=False`` only the refusal: every literal is sealed to prove it can be, and
        nothing is changed (multi-table updates are vetted this way before any statement runs).
        """
        if isinstance(expression, Value):
            if expression.value is None:
                return
            if expression._output_field_or_none is self:  # type: ignore[attr-defined]
                # A Value that prepares itself through this field when compiled.
                if not apply:
                    self.stored_literal(expression.value)
                return
            stored = self.stored_literal(expression.value)
            if apply:
                expression.value = stored
                expression.output_field = self.plain_output_field()
                expression.__dict__.pop("_output_field_or_none", None)
        elif isinstance(expression, Case):
            # bulk_update(): CASE WHEN pk=... THEN Value(v, output_field=field) ... END.
            for when in expression.cases:
                self.seal_expression(when.result, apply=apply)
            self.seal_expression(expression.default, apply=apply)
        elif isinstance(expression, Cast) and expression._output_field_or_none is self:  # type: ignore[attr-defined]
            self.seal_expression(expression.get_source_expressions()[0], apply=apply)
        else:
            raise self.write_expression_error(expression, "update()")

    def vet_write(self, value: Any) -> None:
        """Raise as the write of ``value`` would, without writing or changing anything."""
        if hasattr(value, "resolve_expression"):
            self.seal_expression(value, apply=False)
        elif value is not None:
            self.stored_literal(value)

    def write_expression_error(self, expression: Any, where: str) -> FieldError:
        return FieldError(
            f"{self.label()} is encrypted at rest, so {where} cannot set it from "
            f"{type(expression).__name__}(): the database would compute the value and store it "
            "in plaintext. Nothing was written. Pass a plain value (it is encrypted as save() "
            "would), or load the rows, change them in Python and save them."
        )
