"""Blind indexes of JSON secret paths: every write sets the tag, equality answers as a JSONField.

Each query is compared with the same query on a plaintext twin (``models.JSONField``) holding
the same documents, on the database under test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import serializers
from django.core.exceptions import FieldError
from django.db import connection
from django.db.models import F, JSONField, Q, Value
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.blind_index_helpers import raw_value
from tests.indexapp.models import Connection, ConnectionCopy, Provider, ProviderCopy
from tests.keys import INDEX_KEY_A
from tests.test_blind_index import expected_tag

pytestmark = pytest.mark.django_db

LABEL = "indexapp.connection.options__client_secret.secret_index"
NESTED = "indexapp.provider.settings__oauth__client_secret.oauth_index"


def raw(model: Any, pk: Any, column: str) -> Any:
    """The stored value, a document parsed (PostgreSQL's driver parses jsonb itself)."""
    value = raw_value(model, pk, column)
    return json.loads(value) if isinstance(value, str) and "_index" not in column else value


def tag(plaintext: str) -> str:
    return expected_tag(INDEX_KEY_A, "i1", LABEL, plaintext)


def plant_legacy(model: Any, pk: Any, column: str, index: str, document: Any) -> None:
    """Store ``document`` as it is (plaintext secrets) with no tag: a row from before."""
    table = connection.ops.quote_name(model._meta.db_table)
    mark = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {connection.ops.quote_name(column)} = {mark}, "
            f"{connection.ops.quote_name(index)} = NULL WHERE id = %s",
            [json.dumps(document), pk],
        )


def names(queryset: Any) -> list[str]:
    return sorted(queryset.values_list("name", flat=True))


# Writes ------------------------------------------------------------------------------------


def test_save_stores_the_tag_of_the_secret_and_its_ciphertext() -> None:
    made = Connection.objects.create(name="a", options={"client_secret": "s3cret", "id": 1})
    assert raw(Connection, made.pk, "secret_index") == tag("s3cret")
    stored = raw(Connection, made.pk, "options")
    assert stored["client_secret"].startswith("enc:v1:")
    assert stored["id"] == 1


@pytest.mark.parametrize(
    "document",
    [{}, {"client_secret": None}, {"client_secret": 5}, {"client_secret": {"a": "b"}}, []],
)
def test_a_document_without_a_secret_string_has_no_tag(document: Any) -> None:
    made = Connection.objects.create(name="a", options=document)
    assert raw(Connection, made.pk, "secret_index") is None
    Connection.objects.filter(pk=made.pk).update(options={"client_secret": "x"})
    assert raw(Connection, made.pk, "secret_index") == tag("x")
    Connection.objects.filter(pk=made.pk).update(options=document)
    assert raw(Connection, made.pk, "secret_index") is None


def test_every_write_path_sets_the_tag() -> None:
    Connection.objects.bulk_create(
        [Connection(name="1", options={"client_secret": "b1"}), Connection(name="2")]
    )
    pks = list(Connection.objects.order_by("pk").values_list("pk", flat=True))
    assert raw(Connection, pks[0], "secret_index") == tag("b1")
    assert raw(Connection, pks[1], "secret_index") is None
    Connection.objects.filter(pk=pks[1]).update(options={"client_secret": "u"})
    assert raw(Connection, pks[1], "secret_index") == tag("u")
    document = Value({"client_secret": "v"}, output_field=JSONField())
    Connection.objects.filter(pk=pks[1]).update(options=document)
    assert raw(Connection, pks[1], "secret_index") == tag("v")
    assert raw(Connection, pks[1], "options")["client_secret"].startswith("enc:v1:")
    rows = list(Connection.objects.order_by("pk"))
    rows[0].options, rows[1].options = {"client_secret": "p"}, {"client_secret": None}
    Connection.objects.bulk_update(rows, ["options"])
    assert raw(Connection, pks[0], "secret_index") == tag("p")
    assert raw(Connection, pks[1], "secret_index") is None
    rows[1].options = {"client_secret": "q"}
    rows[1].save()
    assert raw(Connection, pks[1], "secret_index") == tag("q")


def test_upsert_sets_the_tag() -> None:
    made = Connection.objects.create(name="a", options={"client_secret": "old"})
    target = {"unique_fields": ["id"]} if connection.vendor != "mysql" else {}
    Connection.objects.bulk_create(
        [Connection(pk=made.pk, name="a", options={"client_secret": "new"})],
        update_conflicts=True,
        update_fields=["options"],
        **target,
    )
    assert raw(Connection, made.pk, "secret_index") == tag("new")


def test_save_update_fields_without_the_index_is_refused() -> None:
    made = Connection.objects.create(name="a", options={"client_secret": "x"})
    made.options = {"client_secret": "y"}
    with pytest.raises(FieldError, match="stale"):
        made.save(update_fields=["options"])
    made.save(update_fields=["options", "secret_index"])
    assert raw(Connection, made.pk, "secret_index") == tag("y")


def test_loaddata_recomputes_the_tag() -> None:
    made = Connection.objects.create(name="a", options={"client_secret": "x"})
    dumped = serializers.serialize("json", Connection.objects.all())
    assert "x" not in json.loads(dumped)[0]["fields"]["options"].values()
    Connection.objects.all().delete()
    forged = dumped.replace(tag("x"), "i1:" + "0" * 64)
    for obj in serializers.deserialize("json", forged):
        obj.save()
    assert raw(Connection, made.pk, "secret_index") == tag("x")


def test_a_nested_secret_path_is_tagged_after_its_normalizers() -> None:
    made = Provider.objects.create(name="a", settings={"oauth": {"client_secret": " ABC "}})
    assert raw(Provider, made.pk, "oauth_index") == expected_tag(INDEX_KEY_A, "i1", NESTED, "abc")
    # The top-level secret is encrypted but not indexed here: only the nested path counts.
    Provider.objects.filter(pk=made.pk).update(settings={"client_secret": "abc"})
    assert raw(Provider, made.pk, "oauth_index") is None
    Provider.objects.filter(pk=made.pk).update(settings=None)
    assert raw(Provider, made.pk, "settings") is None
    assert raw(Provider, made.pk, "oauth_index") is None


# Queries -----------------------------------------------------------------------------------

DOCUMENTS: list[Any] = [
    {"client_secret": "x"},
    {"client_secret": "X"},
    {"client_secret": " x"},
    {},
    {"client_secret": None},
    {"client_secret": 5},
    {"client_secret": "5"},
    {"client_secret": "y", "id": 1},
    {"client_secret": ""},
    {"other": "x"},
]


def fill(documents: list[Any], legacy: int = 0) -> None:
    """Both tables with ``documents``; the last ``legacy`` of them as legacy plaintext rows."""
    for number, document in enumerate(documents):
        made = Connection.objects.create(name=str(number), options=document)
        ConnectionCopy.objects.create(name=str(number), options=document)
        if number >= len(documents) - legacy:
            plant_legacy(Connection, made.pk, "options", "secret_index", document)


def queries(model: Any) -> list[Any]:
    objects = model.objects
    return [
        objects.filter(options__client_secret="x"),
        objects.filter(options__client_secret=""),
        objects.filter(options__client_secret="5"),
        objects.exclude(options__client_secret="x"),
        objects.filter(options__client_secret__in=["x", "5", "y"]),
        objects.filter(options__client_secret__in=["x", None]),
        objects.exclude(options__client_secret__in=["x", "y"]),
        objects.filter(Q(options__client_secret="y") | Q(name="0")),
        objects.filter(~Q(options__client_secret="x") & Q(name__in=["1", "3", "4"])),
        objects.exclude(Q(options__client_secret="X") | Q(options__client_secret="y")),
    ]


def answers(model: Any) -> list[list[str]]:
    return [names(queryset) for queryset in queries(model)]


@pytest.mark.parametrize("legacy", [0, 4])
def test_queries_answer_as_a_plaintext_json_field(legacy: int) -> None:
    fill(DOCUMENTS, legacy)
    expected = answers(ConnectionCopy)
    assert expected[0] == ["0"]  # the twin answers something: the comparison can fail
    assert answers(Connection) == expected
    assert [q.count() for q in queries(Connection)] == [len(e) for e in expected]
    assert [q.exists() for q in queries(Connection)] == [bool(e) for e in expected]


def test_strict_mode_keeps_the_answer_for_rows_without_the_key() -> None:
    fill(DOCUMENTS)
    expected = answers(ConnectionCopy)
    with override_settings(ENCRYPTION_REJECT_PLAINTEXT=True):
        assert answers(Connection) == expected


def test_the_query_uses_the_index_column() -> None:
    sql = str(Connection.objects.filter(options__client_secret="x").query)
    assert "secret_index" in sql
    assert tag("x") in sql


def test_get_or_create_update_and_delete_through_the_index() -> None:
    fill(DOCUMENTS)
    found, created = Connection.objects.get_or_create(
        options__client_secret="y", defaults={"options": {"client_secret": "y"}}
    )
    assert (found.name, created) == ("7", False)
    made, created = Connection.objects.get_or_create(
        options__client_secret="new", defaults={"name": "n", "options": {"client_secret": "new"}}
    )
    assert created
    assert raw(Connection, made.pk, "secret_index") == tag("new")
    assert Connection.objects.filter(options__client_secret="x").update(name="x!") == 1
    assert names(Connection.objects.filter(name="x!")) == ["x!"]
    deleted, _ = Connection.objects.filter(options__client_secret__in=["new", "y"]).delete()
    assert deleted == 2


def test_a_nested_path_with_case_folding() -> None:
    documents: list[Any] = [
        {"oauth": {"client_secret": "Abc"}},
        {"oauth": {"client_secret": " abc"}},
        {"oauth": {"client_secret": "abd"}},
        {"oauth": {}},
        {"oauth": "abc"},
        {"client_secret": "abc"},
        None,
    ]
    for number, document in enumerate(documents):
        Provider.objects.create(name=str(number), settings=document)
    objects = Provider.objects
    assert names(objects.filter(settings__oauth__client_secret="ABC")) == ["0", "1"]
    assert names(objects.filter(settings__oauth__client_secret__iexact="abc ")) == ["0", "1"]
    assert names(objects.filter(settings__oauth__client_secret__in=["abd", "x"])) == ["2"]
    # exclude(): as on a JSONField, rows lacking the key (SQL NULL) are left out, except the
    # SQL NULL document itself, which Django keeps by an explicit IS NULL test.
    for number, document in enumerate(documents):
        ProviderCopy.objects.create(name=str(number), settings=document)
    twin = ProviderCopy.objects.exclude(settings__oauth__client_secret="abd")
    assert names(objects.exclude(settings__oauth__client_secret="abd")) == names(twin)


ASKED = "s3cr3t-asked-value"


@pytest.mark.parametrize(
    "build",
    [
        lambda o: o.filter(options__client_secret__icontains=ASKED),
        lambda o: o.filter(options__client_secret__startswith=ASKED),
        lambda o: o.filter(options__client_secret__iexact=ASKED),  # the index keeps case
        lambda o: o.filter(options__client_secret__isnull=True),
        lambda o: o.filter(options__client_secret__gt=ASKED),
        lambda o: o.filter(options__client_secret__deeper=ASKED),
        lambda o: o.filter(options__client_secret=None),
        lambda o: o.filter(options__client_secret=5),
        lambda o: o.filter(options__client_secret__in=[ASKED, 5]),
        lambda o: o.filter(options__client_secret={"a": "b"}),
        lambda o: o.filter(options__client_secret=F("name")),
        lambda o: o.values("options__client_secret"),
        lambda o: o.order_by("options__client_secret"),
        lambda o: o.annotate(s=F("options__client_secret")),
        lambda o: o.values_list("options__client_secret__deeper"),
    ],
)
def test_every_other_use_of_the_path_is_refused(build: Any) -> None:
    Connection.objects.create(name="a", options={"client_secret": ASKED})
    with pytest.raises(FieldError) as caught:
        list(build(Connection.objects))
    assert ASKED not in str(caught.value)


def test_refusals_of_non_strings_name_the_way_out() -> None:
    with pytest.raises(FieldError, match="Its blind index secret_index answers 'exact', 'in'"):
        Connection.objects.filter(options__client_secret__iexact="x")
    with pytest.raises(FieldError, match=r"options__contains=\{'client_secret': None\}"):
        Connection.objects.filter(options__client_secret=None)


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
SECRETS = st.one_of(
    st.sampled_from(["a", "A", " a", "b", "", "5"]), st.none(), st.integers(0, 6), TEXT
)
DOCS = st.one_of(
    st.fixed_dictionaries({"client_secret": SECRETS}),
    st.dictionaries(st.sampled_from(["other", "client_secret"]), SECRETS, max_size=2),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    documents=st.lists(DOCS, min_size=1, max_size=6),
    asked=st.lists(st.one_of(st.sampled_from(["a", "A", "b", "", "5"]), TEXT), max_size=3),
    legacy=st.integers(0, 2),
)
def test_hypothesis_queries_match_the_plaintext_twin(
    documents: list[Any], asked: list[str], legacy: int
) -> None:
    Connection.objects.all().delete()
    ConnectionCopy.objects.all().delete()
    fill(documents, min(legacy, len(documents)))
    lookups = [
        lambda o: o.filter(options__client_secret__in=asked),
        lambda o: o.exclude(options__client_secret__in=asked),
        *((lambda o, v=value: o.filter(options__client_secret=v)) for value in asked[:1]),
    ]
    for lookup in lookups:
        assert names(lookup(Connection.objects)) == names(lookup(ConnectionCopy.objects))


def test_a_unique_secret_path_stays_unique_through_a_key_change_over() -> None:
    from django.db import IntegrityError, transaction

    from tests.test_blind_index import ROTATED, ROTATING

    old = Provider.objects.create(name="old", settings={"client_secret": "shared"})
    with pytest.raises(IntegrityError), transaction.atomic():
        Provider.objects.create(name="dup", settings={"client_secret": "shared"})
    with override_settings(**ROTATING):
        new = Provider.objects.create(name="new", settings={"client_secret": "fresh"})
        assert raw(Provider, new.pk, "secret_index").startswith("i2:")
        assert raw(Provider, new.pk, "secret_index_previous").startswith("i1:")
        assert names(Provider.objects.filter(settings__client_secret="shared")) == ["old"]
        assert names(Provider.objects.filter(settings__client_secret="fresh")) == ["new"]
        with pytest.raises(IntegrityError), transaction.atomic():
            Provider.objects.create(name="dup", settings={"client_secret": "shared"})
        Provider.objects.filter(pk=old.pk).update(settings={"client_secret": "moved"})
        assert raw(Provider, old.pk, "secret_index").startswith("i2:")
    with override_settings(**ROTATED):
        assert names(Provider.objects.filter(settings__client_secret="moved")) == ["old"]
        with pytest.raises(IntegrityError), transaction.atomic():
            Provider.objects.create(name="dup", settings={"client_secret": "fresh"})


def test_a_subquery_document_keeps_refusing_its_secret_key() -> None:
    # The tag is a column of the row the subquery reads, not of the row filtered: only the
    # column's own key is answered by the index.
    from django.db.models import OuterRef, Subquery

    Connection.objects.create(name="a", options={"client_secret": "s-1"})
    document = Subquery(Connection.objects.filter(pk=OuterRef("pk")).values("options"))
    with pytest.raises(FieldError, match="client_secret"):
        list(Connection.objects.annotate(doc=document).filter(doc__client_secret="s-1"))
    assert list(
        Connection.objects.filter(options__client_secret="s-1").values_list("name", flat=True)
    ) == ["a"]
