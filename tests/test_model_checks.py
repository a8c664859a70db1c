"""E106 and E107: constraints, indexes and db_default over an encrypted field are check errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.core.exceptions import FieldError
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Lower
from django.forms import modelform_factory
from django.test.utils import isolate_apps

from authhero_encrypt.fields import (
    EncryptedCharField,
    EnvelopeEncryptedTextField,
    JSONPathEncryptedField,
)

pytestmark = pytest.mark.django_db


def declared(meta: dict[str, Any], **fields: models.Field[Any, Any]) -> tuple[list[str], Any]:
    """The check ids (and the messages) of a throwaway model with ``fields`` and ``Meta``."""
    with isolate_apps("tests.testapp"):
        attrs: dict[str, Any] = {
            "__module__": __name__,
            "Meta": type("Meta", (), {"app_label": "testapp", **meta}),
            "label": models.CharField(max_length=10),
            **fields,
        }
        model: Any = type("Declared", (models.Model,), attrs)
        messages = model.check(databases=["default"])
        return [message.id for message in messages], messages


def token() -> dict[str, models.Field[Any, Any]]:
    return {"token": EncryptedCharField(max_length=20, null=True)}


def options() -> dict[str, models.Field[Any, Any]]:
    paths = ["client_secret", "configuration.client_secret"]
    return {"options": JSONPathEncryptedField(encrypted_paths=paths, null=True)}


E106 = "authhero_encrypt.E106"


@pytest.mark.parametrize(
    "constraint",
    [
        models.UniqueConstraint(fields=["token"], name="u_token"),
        models.UniqueConstraint(fields=["label", "token"], name="u_label_token"),
        models.UniqueConstraint(Lower("token"), name="u_lower_token"),
        models.UniqueConstraint(fields=["label"], include=["token"], name="u_include"),
        models.UniqueConstraint(fields=["label"], condition=Q(token="x"), name="u_condition"),
        models.CheckConstraint(condition=Q(token__startswith="a"), name="c_token"),
        models.CheckConstraint(condition=Q(label=F("token")), name="c_label_is_token"),
        ExclusionConstraint(expressions=[("token", RangeOperators.EQUAL)], name="x_token"),
    ],
    ids=lambda c: c.name,
)
def test_constraints_over_an_encrypted_field_are_e106(constraint):
    ids, messages = declared({"constraints": [constraint]}, **token())
    assert ids.count(E106) == 1
    message = next(m for m in messages if m.id == E106)
    assert constraint.name in message.msg
    if isinstance(constraint, models.UniqueConstraint):
        assert 'BlindIndexField("token", unique=True)' in message.hint
        assert "unique_with" in message.hint


@pytest.mark.parametrize(
    "index",
    [
        models.Index(fields=["token"], name="i_token"),
        models.Index(fields=["-token"], name="i_token_desc"),
        models.Index(Lower("token"), name="i_lower_token"),
        models.Index(fields=["label"], include=["token"], name="i_include"),
        models.Index(fields=["label"], condition=Q(token="x"), name="i_condition"),
    ],
    ids=lambda i: i.name,
)
def test_indexes_over_an_encrypted_field_are_e106(index):
    ids, messages = declared({"indexes": [index]}, **token())
    assert ids.count(E106) == 1
    assert 'BlindIndexField("token")' in next(m for m in messages if m.id == E106).hint


@pytest.mark.parametrize(
    "meta",
    [
        {"constraints": [models.UniqueConstraint(fields=["label"], name="u_label")]},
        {"indexes": [models.Index(fields=["label"], name="i_label")]},
        # NULL or not is the same for ciphertext and plaintext.
        {
            "constraints": [
                models.UniqueConstraint(
                    fields=["label"], condition=Q(token__isnull=False), name="u_label_set"
                )
            ]
        },
        {"indexes": [models.Index(fields=["label"], condition=Q(token__isnull=True), name="i_n")]},
    ],
)
def test_declarations_on_plaintext_are_not_e106(meta):
    ids, _messages = declared(meta, **token())
    assert E106 not in ids


@pytest.mark.parametrize(
    ("declaration", "refused"),
    [
        (models.Index(fields=["options"], name="i_options"), True),
        (models.Index(KT("options__client_secret"), name="i_secret"), True),
        (models.Index(KT("options__configuration"), name="i_configuration"), True),
        (models.Index(KT("options__client_id"), name="i_client_id"), False),
        (models.Index(KT("options__configuration__region"), name="i_region"), False),
        (models.UniqueConstraint(KT("options__client_secret"), name="u_secret"), True),
        (models.UniqueConstraint(KT("options__client_id"), name="u_client_id"), False),
        (
            models.CheckConstraint(condition=Q(options__client_secret="x"), name="c_secret"),
            True,
        ),
        (
            models.CheckConstraint(condition=Q(options__client_id__startswith="a"), name="c_id"),
            False,
        ),
    ],
    ids=lambda d: getattr(d, "name", d),
)
def test_json_declarations_are_e106_only_where_they_reach_a_secret(declaration, refused):
    attribute = "indexes" if isinstance(declaration, models.Index) else "constraints"
    ids, _messages = declared({attribute: [declaration]}, **options())
    assert (E106 in ids) is refused


@pytest.mark.parametrize(
    "field",
    [
        EncryptedCharField(max_length=20, db_default="x"),
        EncryptedCharField(max_length=20, db_default=Value("x")),
        EnvelopeEncryptedTextField(db_default="x"),
        JSONPathEncryptedField(encrypted_paths=["client_secret"], db_default={"a": 1}),
    ],
    ids=["char", "char-value", "envelope", "json"],
)
def test_db_default_on_an_encrypted_field_is_e107(field):
    ids, messages = declared({}, secret=field)
    assert ids.count("authhero_encrypt.E107") == 1
    assert "default=" in next(m for m in messages if m.id == "authhero_encrypt.E107").hint


@pytest.mark.parametrize(
    ("together", "refused"), [([("label", "token")], True), ([("label", "other")], False)]
)
def test_unique_together_over_an_encrypted_field_is_e106(together, refused):
    fields = {**token(), "other": models.CharField(max_length=5)}
    ids, _messages = declared({"unique_together": together}, **fields)
    assert (E106 in ids) is refused


def test_default_is_not_e107():
    ids, _messages = declared({}, secret=EncryptedCharField(max_length=20, default="x"))
    assert "authhero_encrypt.E107" not in ids


def test_a_model_form_over_a_unique_constraint_on_a_secret_refuses_rather_than_answers():
    """The decision documented in docs/checks.md (E106): the form's constraint validation is not
    skipped (that would report a duplicate as unique); it raises FieldError, and E106 stops the
    project from starting with such a model."""
    with isolate_apps("tests.testapp"):
        meta = type(
            "Meta",
            (),
            {
                "app_label": "testapp",
                "constraints": [models.UniqueConstraint(fields=["token"], name="u_form_token")],
            },
        )
        attrs = {"__module__": __name__, "Meta": meta, **token()}
        model: Any = type("FormDeclared", (models.Model,), attrs)
        form = modelform_factory(model, fields=["token"])(data={"token": "apple"})
        with pytest.raises(FieldError, match="is encrypted at rest"):
            form.is_valid()
