"""Writes that used to crash or to store a secret in the clear, proven against the raw columns.

Multi-table updates are refused before any statement; envelope fields seal ``Value()`` literals;
JSON text holding a secret is refused; ``update_fields`` leaves other legacy plaintext alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import FieldError, ValidationError
from django.db import connection, transaction
from django.db.models import Case, F, JSONField, Value, When
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext

from authhero_encrypt.crypto import PREFIX
from authhero_encrypt.envelope.format import PREFIX as ENV_PREFIX
from tests.testapp.models import (
    Connection,
    GuardAccount,
    GuardPremiumAccount,
    PrivateKey,
    Secret,
)

pytestmark = pytest.mark.django_db


def write_raw(model: Any, pk: object, column: str, value: str | None) -> None:
    qn = connection.ops.quote_name
    table, pk_column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk_column)} = %s", [value, pk]
        )


# Envelope fields: Value() and Case/When are sealed as save() seals ------------------------


def test_envelope_update_with_a_value_is_sealed(raw_column):
    row = PrivateKey.objects.create(name="k", pem="old")
    assert PrivateKey.objects.update(pem=Value("new pem!")) == 1
    stored = raw_column(PrivateKey, row.pk, "pem")
    assert stored.startswith(ENV_PREFIX)
    assert "new pem!" not in stored
    assert PrivateKey.objects.get(pk=row.pk).pem == "new pem!"


def test_envelope_update_with_case_when_is_sealed_under_each_context(raw_column):
    a = PrivateKey.objects.create(name="a", pem="old", bundle="old")
    b = PrivateKey.objects.create(name="b", pem="old", bundle="old")
    PrivateKey.objects.update(
        pem=Case(When(pk=a.pk, then=Value("pem of a!")), default=Value("pem of b!")),
        bundle=Case(When(pk=a.pk, then=Value("bundle!")), default=Value(None)),
    )
    for row, pem in ((a, "pem of a!"), (b, "pem of b!")):
        stored = raw_column(PrivateKey, row.pk, "pem")
        assert stored.startswith(ENV_PREFIX)
        assert pem not in stored
    assert raw_column(PrivateKey, b.pk, "bundle") is None
    assert [(k.pem, k.bundle) for k in PrivateKey.objects.order_by("pk")] == [
        ("pem of a!", "bundle!"),
        ("pem of b!", None),
    ]


def test_envelope_update_from_an_expression_is_still_refused(raw_column):
    row = PrivateKey.objects.create(name="k", pem="old")
    before = raw_column(PrivateKey, row.pk, "pem")
    with (
        pytest.raises(FieldError, match=r"PrivateKey\.pem is encrypted at rest"),
        transaction.atomic(),
    ):
        PrivateKey.objects.update(pem=F("name"))
    assert raw_column(PrivateKey, row.pk, "pem") == before


# Multi-table inheritance: refused before any statement -------------------------------------


@pytest.fixture
def premium() -> GuardPremiumAccount:
    return GuardPremiumAccount.objects.create(name="acme", client_secret="s3cret", tier="gold")


def raw_rows(row: GuardPremiumAccount, raw_column: Any) -> tuple[object, ...]:
    return (
        raw_column(GuardAccount, row.pk, "name"),
        raw_column(GuardAccount, row.pk, "client_secret"),
        raw_column(GuardAccount, row.pk, "options"),
        raw_column(GuardPremiumAccount, row.pk, "tier"),
        raw_column(GuardPremiumAccount, row.pk, "api_key"),
    )


@pytest.mark.parametrize(
    "values",
    [
        {"tier": "platinum", "client_secret": F("name")},
        {"tier": "platinum", "client_secret": Upper("name")},
        {"api_key": "k", "client_secret": F("name")},
        {"tier": "platinum", "options": Value('{"client_secret": "x"}')},
        {"tier": "platinum", "options": '{"client_secret": "x"}'},
        {"tier": "platinum", "client_secret": Case(When(pk=1, then=F("name")))},
    ],
    ids=["F", "Upper", "api_key-and-F", "json-text-value", "json-text", "case-of-F"],
)
def test_a_child_update_refused_for_a_parent_field_writes_no_table(premium, raw_column, values):
    before = raw_rows(premium, raw_column)
    with (
        pytest.raises(FieldError, match=r"testapp\.GuardAccount\.(client_secret|options)"),
        transaction.atomic(),  # the test's own transaction stays usable for the reads below
        CaptureQueriesContext(connection) as queries,
    ):
        GuardPremiumAccount.objects.update(**values)
    # Refused before any statement, not rolled back after one: nothing was sent at all.
    assert [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]] == []
    assert raw_rows(premium, raw_column) == before
    assert str(before[3]) == "gold"


def test_a_child_update_with_plain_values_writes_both_tables_encrypted(premium, raw_column):
    GuardPremiumAccount.objects.update(
        tier="platinum", client_secret="new!", api_key=Value("key!"), options={"client_secret": "o"}
    )
    _name, secret, options, tier, api_key = raw_rows(premium, raw_column)
    assert tier == "platinum"
    assert str(secret).startswith(PREFIX)
    assert str(api_key).startswith(PREFIX)
    assert PREFIX in str(options)
    assert '"o"' not in str(options)
    row = GuardPremiumAccount.objects.get(pk=premium.pk)
    assert (row.client_secret, row.api_key, row.options) == ("new!", "key!", {"client_secret": "o"})


# JSON text holding a secret is refused -----------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        '{"client_secret": "x"}',
        '{"configuration": {"client_secret": "x"}}',
        '{"configuration": "{\\"client_secret\\": \\"x\\"}"}',
        {"configuration": '{"client_secret": "x"}'},
    ],
    ids=["top", "nested", "text-in-text", "text-above-a-secret"],
)
def test_json_text_reaching_a_secret_is_refused_on_save_and_update(raw_column, document):
    row = Connection.objects.create(name="c", options={"client_id": "a"})
    before = raw_column(Connection, row.pk, "options")
    row.options = document
    with (
        pytest.raises(FieldError, match="JSON text holding an encrypted path"),
        transaction.atomic(),
    ):
        row.save()
    with (
        pytest.raises(FieldError, match="JSON text holding an encrypted path"),
        transaction.atomic(),
    ):
        Connection.objects.update(options=Value(document, output_field=JSONField()))
    if isinstance(document, str):
        with (
            pytest.raises(FieldError, match="JSON text holding an encrypted path"),
            transaction.atomic(),
        ):
            Connection.objects.update(options=Value(document))
    with (
        pytest.raises(FieldError, match="JSON text holding an encrypted path"),
        transaction.atomic(),
    ):
        Connection.objects.create(name="d", options=document)
    for write in (
        lambda: Connection.objects.bulk_create([Connection(name="e", options=document)]),
        lambda: Connection.objects.bulk_update([row], ["options"]),
    ):
        with (
            pytest.raises(FieldError, match="JSON text holding an encrypted path"),
            transaction.atomic(),
        ):
            write()
    assert raw_column(Connection, row.pk, "options") == before
    assert Connection.objects.count() == 1


def test_json_text_reaching_a_secret_is_a_validation_error_in_forms():
    row = Connection(name="c", options={"configuration": '{"client_secret": "x"}'})
    with pytest.raises(ValidationError) as caught:
        row.full_clean()
    assert [e.code for e in caught.value.error_dict["options"]] == ["json_text"]
    assert "'configuration'" in str(caught.value)


@pytest.mark.parametrize(
    "document",
    ['{"client_id": "x"}', "not json", '["client_secret"]', {"client_id": '{"a": "b"}'}],
)
def test_json_text_reaching_no_secret_is_stored_as_before(document):
    row = Connection.objects.create(name="c", options=document)
    assert Connection.objects.get(pk=row.pk).options == document


# update_fields: what docs/fields.md says about legacy plaintext -----------------------------


def test_legacy_plaintext_is_encrypted_only_when_its_own_field_is_written(raw_column):
    row = Secret.objects.create(label="a", token="t", notes="n")
    write_raw(Secret, row.pk, "token", "legacy token")
    write_raw(Secret, row.pk, "notes", "legacy notes")
    row = Secret.objects.get(pk=row.pk)
    row.label = "b"
    row.save(update_fields=["label"])
    Secret.objects.filter(pk=row.pk).update(label="c")
    assert raw_column(Secret, row.pk, "token") == "legacy token"
    assert raw_column(Secret, row.pk, "notes") == "legacy notes"
    row.save(update_fields=["token"])
    assert str(raw_column(Secret, row.pk, "token")).startswith(PREFIX)
    assert raw_column(Secret, row.pk, "notes") == "legacy notes"
    row.save()
    assert str(raw_column(Secret, row.pk, "notes")).startswith(PREFIX)
    assert Secret.objects.values_list("token", "notes").get() == ("legacy token", "legacy notes")
