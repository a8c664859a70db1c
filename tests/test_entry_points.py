"""QuerySet entry points over encrypted data: the plaintext answer or ``FieldError`` naming it.

``in_bulk(field_name=...)``, ``dates()`` and ``datetimes()`` on an encrypted field, and the
JSON containment lookups with documents whose arrays would be matched against ciphertext
(MariaDB matches a value inside an array, so ``contained_by`` gave ``[]`` where the plaintext
answer was ``['google']``).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.db import NotSupportedError, connection, transaction
from django.db.models import F, JSONField, Value

from tests.testapp.models import Connection, EmailProvider, Secret

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["token", "notes"])
def test_in_bulk_by_an_encrypted_field_is_a_field_error(name):
    Secret.objects.create(label="a", token="t", notes="n")
    with pytest.raises(FieldError, match=rf"testapp\.Secret\.{name} is encrypted.*in_bulk"):
        Secret.objects.in_bulk(field_name=name)
    with pytest.raises(FieldError, match=rf"testapp\.Secret\.{name} is encrypted.*in_bulk"):
        Secret.objects.in_bulk(["t"], field_name=name)


def test_in_bulk_by_the_primary_key_still_answers():
    row = Secret.objects.create(label="a", token="t")
    assert Secret.objects.in_bulk([row.pk])[row.pk].token == "t"


@pytest.mark.parametrize("method", ["dates", "datetimes"])
@pytest.mark.parametrize("name", ["token", "notes"])
def test_date_listings_of_an_encrypted_field_are_a_field_error(method, name):
    Secret.objects.create(label="a", token="2026-01-01", notes="2026-01-01")
    with pytest.raises(FieldError, match=rf"testapp\.Secret\.{name} is encrypted.*{method}\(\)"):
        getattr(Secret.objects, method)(name, "year")


def test_date_listings_of_other_fields_are_unchanged():
    with pytest.raises(TypeError, match="isn't a DateField"):
        Secret.objects.dates("label", "year")


@pytest.fixture
def google() -> Connection:
    return Connection.objects.create(
        name="google",
        options={
            "client_id": "x",
            "client_secret": "s",
            "configuration": {"client_secret": "t", "region": "eu"},
            "tags": ["a", "b"],
        },
    )


def matching(**lookup: Any) -> list[str]:
    return list(Connection.objects.filter(**lookup).values_list("name", flat=True))


REFUSED_DOCUMENTS = [
    ("options__contained_by", {"client_id": "x", "client_secret": ["s"]}),
    ("options__contained_by", {"client_secret": ["s"], "configuration": {"region": "eu"}}),
    ("options__contained_by", {"configuration": [{"client_secret": "t", "region": "eu"}]}),
    ("options__contained_by", [{"client_id": "x", "client_secret": "s"}]),
    ("options__contains", {"client_secret": ["s"]}),
    ("options__contains", {"configuration": {"client_secret": ["t"]}}),
    ("options__contains", {"configuration": [{"client_secret": "t"}]}),
    ("options__configuration__contained_by", {"client_secret": ["t"], "region": "eu"}),
    ("options__configuration__contains", [{"client_secret": "t"}]),
    ("options__contains", Value({"client_secret": "s"}, output_field=JSONField())),
    ("options__contained_by", Value({"client_secret": ["s"]}, output_field=JSONField())),
    ("options__contains", F("options")),
]


@pytest.mark.parametrize(("lookup", "document"), REFUSED_DOCUMENTS)
def test_containment_that_would_match_a_secret_is_a_field_error_everywhere(
    google, lookup, document
):
    with pytest.raises(FieldError, match=r"testapp\.Connection\.options"):
        matching(**{lookup: document})


@pytest.mark.parametrize(
    ("lookup", "document", "expected"),
    [
        ("options__contains", {"client_id": "x"}, ["google"]),
        ("options__contains", {"tags": ["a"]}, ["google"]),
        ("options__contains", {"client_secret": 5}, []),
        ("options__contains", {"configuration": {"region": "eu"}}, ["google"]),
        ("options__configuration__contains", {"region": "eu"}, ["google"]),
        ("options__tags__contains", ["b"], ["google"]),
        ("options__contains", Value({"client_id": "x"}, output_field=JSONField()), ["google"]),
        ("options__has_key", "client_secret", ["google"]),
        ("options__has_keys", ["client_secret", "configuration"], ["google"]),
        ("options__has_any_keys", ["nope", "client_secret"], ["google"]),
        ("options__configuration__has_key", "client_secret", ["google"]),
    ],
)
def test_containment_without_secrets_gives_the_plaintext_answer(google, lookup, document, expected):
    if connection.vendor == "sqlite" and "contain" in lookup:
        # SQLite has no containment: Django's own refusal, raised when the SQL is built.
        with pytest.raises(NotSupportedError), transaction.atomic():
            matching(**{lookup: document})
        return
    assert matching(**{lookup: document}) == expected


def test_containment_under_a_wildcard_refuses_arrays_of_secret_keys():
    EmailProvider.objects.create(name="mailgun", credentials={"api_key": "k", "port": 25})
    with pytest.raises(FieldError, match="'api_key' is an encrypted path"):
        list(EmailProvider.objects.filter(credentials__contained_by={"api_key": ["k"]}))
    with pytest.raises(FieldError, match="holds encrypted paths"):
        list(EmailProvider.objects.filter(credentials__contained_by=[{"api_key": "k"}]))


def test_raw_sql_sees_the_stored_text_as_docs_queries_md_says():
    from django.db.models.expressions import RawSQL

    row = Secret.objects.create(label="a", token="apple")
    table, column = Secret._meta.db_table, connection.ops.quote_name("token")
    extra = Secret.objects.extra(select={"stored": column})  # noqa: S610 - the point
    assert str(extra.values_list("stored", flat=True).get()).startswith("enc:v1:")
    where = Secret.objects.extra(where=[f"{column} = %s"], params=["apple"])  # noqa: S610
    assert not where.exists()
    annotated = Secret.objects.annotate(stored=RawSQL(column, []))  # noqa: S611 - the point
    annotated = annotated.values_list("stored", flat=True)
    assert str(annotated.get()).startswith("enc:v1:")
    sql = f"SELECT * FROM {connection.ops.quote_name(table)}"
    assert [r.token for r in Secret.objects.raw(sql)] == ["apple"]
    assert row.pk == Secret.objects.raw(sql)[0].pk
