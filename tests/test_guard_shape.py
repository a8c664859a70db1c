"""The guard judged on the whole query: set operations, ordering, aliases, documents.

Two encrypted columns of one row hold the same plaintext (``token`` and ``notes``), so a set
operation comparing their stored text gives an answer the plaintext would not; each refused
query below would otherwise return ciphertext or a wrong row count.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.db.models import Count, F, Q
from django.db.models.expressions import OrderBy
from django.db.models.fields.json import KT

from tests.testapp.models import Connection, EmailProvider, Secret

pytestmark = pytest.mark.django_db

OPERATIONS = [
    pytest.param(lambda a, b: a.union(b), id="union"),
    pytest.param(lambda a, b: a.union(b, all=True), id="union-all"),
    pytest.param(lambda a, b: a.intersection(b), id="intersection"),
    pytest.param(lambda a, b: a.difference(b), id="difference"),
]
TOKENS = ["apple", "banana", "apple", None]


@pytest.fixture
def rows() -> list[Secret]:
    return [
        Secret.objects.create(label=f"row{i}", token=token, notes=token)
        for i, token in enumerate(TOKENS)
    ]


@pytest.fixture
def connections() -> list[Connection]:
    options = [
        {"client_id": "a", "configuration": {"client_secret": "s1", "region": "eu"}},
        {"client_id": "b", "configuration": {"client_secret": "s2", "region": "us"}},
    ]
    return [Connection.objects.create(name=f"c{i}", options=o) for i, o in enumerate(options)]


def refused(build: Any) -> None:
    with pytest.raises(FieldError, match="encrypted"):
        list(build())


# Set operations: every combined query is judged, at every position ----------------------------


def _values(flat: str, *fields: str) -> Any:
    """``values()``, ``values_list()``, ``flat=True`` or ``named=True`` over ``fields``."""
    manager = Secret.objects
    if flat == "values":
        return manager.values(*fields)
    if flat == "flat":
        return manager.values_list(*fields, flat=True)
    return manager.values_list(*fields, named=flat == "named")


SHAPES = ["values", "list", "named"]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("shape", [*SHAPES, "flat"])
@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("label",), ("token",)),  # the secret only in the second query
        (("token",), ("label",)),
        (("token",), ("notes",)),  # two encrypted columns at one position
    ],
)
def test_set_operations_mixing_a_secret_with_another_column_are_refused(
    operation, shape, first, second, rows
):
    refused(lambda: operation(_values(shape, *first), _values(shape, *second)))


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_pk_beside_different_secrets_is_refused(operation, shape, rows):
    refused(lambda: operation(_values(shape, "pk", "token"), _values(shape, "pk", "notes")))
    refused(lambda: operation(_values(shape, "token", "pk"), _values(shape, "pk", "token")))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_same_secret_beside_the_pk_gives_the_plaintext_answer(operation, rows):
    first = Secret.objects.filter(label__in=["row0", "row1"]).values_list("pk", "token")
    second = Secret.objects.filter(label__in=["row1", "row2"]).values_list("pk", "token")
    left = {(r.pk, r.token) for r in rows[:2]}
    right = {(r.pk, r.token) for r in rows[1:3]}
    result = list(operation(first, second))
    name = operation(Secret.objects.all(), Secret.objects.all()).query.combinator
    every = operation(Secret.objects.all(), Secret.objects.all()).query.combinator_all
    if every:
        assert sorted(result) == sorted([*left, *right])
    else:
        expected = {"union": left | right, "intersection": left & right}.get(name, left - right)
        assert sorted(result) == sorted(expected)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_instances_of_one_model_combine_with_plaintext(operation, rows):
    one = Secret.objects.filter(pk=rows[0].pk)
    result = operation(one, one)
    expected = set() if result.query.combinator == "difference" else {"apple"}
    assert {s.token for s in result} == expected


def test_union_all_of_one_secret_column_is_decrypted(rows):
    tokens = Secret.objects.values_list("token", flat=True)
    assert sorted(tokens.union(tokens, all=True), key=str) == sorted(TOKENS * 2, key=str)


@pytest.mark.parametrize("operation", [p for p in OPERATIONS if p.id != "union-all"])
def test_a_set_operation_on_a_lone_secret_column_is_refused(operation, rows):
    tokens = Secret.objects.values_list("token", flat=True)
    refused(lambda: operation(tokens, tokens))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_ordering_a_set_operation_by_a_secret_is_refused(operation, rows):
    pairs = Secret.objects.values_list("pk", "token")
    refused(lambda: operation(pairs, pairs).order_by("token"))
    refused(lambda: operation(pairs, pairs).order_by("-token"))
    ordered = [p for p, _t in operation(pairs, pairs).order_by("pk")]
    pks = [r.pk for r in rows]
    assert ordered in (pks, sorted(pks * 2), [])


@pytest.mark.parametrize("operation", OPERATIONS)
def test_set_operations_on_json_keys_holding_a_secret(operation, connections):
    names = Connection.objects.values_list("name", flat=True)
    documents = Connection.objects.values_list("options__configuration", flat=True)
    refused(lambda: operation(names, documents))
    refused(lambda: operation(documents, names))
    if operation(names, names).query.combinator_all:
        expected = [c.options["configuration"] for c in connections] * 2
        assert sorted(operation(documents, documents), key=str) == sorted(expected, key=str)
    else:
        refused(lambda: operation(documents, documents))
    regions = Connection.objects.values_list("options__configuration__region", flat=True)
    expected = {"eu", "us"} if operation(names, names).query.combinator != "difference" else set()
    assert set(operation(regions, regions)) == expected


def test_a_union_inside_a_filter_is_refused(rows):
    tokens = Secret.objects.values("label").union(Secret.objects.values("token"))
    refused(lambda: Secret.objects.filter(label__in=tokens))


# Ordering by select position, F() on aliases, extra(order_by) ---------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Secret.objects.values_list("label", "token").order_by(F("token").asc()),
        lambda: Secret.objects.values_list("token", flat=True).order_by(F("token").desc()),
        lambda: Secret.objects.annotate(c=F("token")).order_by(F("c").desc()),
        lambda: Secret.objects.annotate(c=F("token")).order_by("-c"),
        lambda: Secret.objects.annotate(c=F("token")).order_by(OrderBy(F("c"))),
        lambda: Secret.objects.annotate(c=F("token")).values("c").annotate(n=Count("id")),
        lambda: Secret.objects.annotate(c=F("token")).distinct(),
        lambda: Secret.objects.values(c=F("token")).order_by("c"),
        lambda: Secret.objects.values_list("token", flat=True).extra(order_by=["token"]),
        lambda: Secret.objects.extra(order_by=["-token"]),
        lambda: Secret.objects.extra(order_by=["testapp_secret.token"]),
        lambda: Connection.objects.values_list("name", "options__configuration").order_by(
            F("options__configuration").asc()
        ),
        lambda: Connection.objects.annotate(c=F("options__configuration")).order_by(F("c").desc()),
        lambda: Connection.objects.order_by(KT("options__configuration")),
    ],
)
def test_ordering_that_reaches_a_secret_is_refused(build, rows, connections):
    refused(build)


def test_ordering_by_plaintext_beside_secrets_gives_the_plaintext(rows, connections):
    labels = Secret.objects.values_list("label", "token").order_by(F("label").desc())
    assert list(labels) == [(r.label, r.token) for r in reversed(rows)]
    extra = Secret.objects.extra(order_by=["-label"]).values_list("token", flat=True)
    assert list(extra) == [r.token for r in reversed(rows)]
    regions = Connection.objects.order_by(KT("options__configuration__region").desc())
    assert [c.name for c in regions] == ["c1", "c0"]


# Aliases and KT() -----------------------------------------------------------------------------


def test_an_alias_of_a_secret_is_decrypted(rows, connections):
    assert [s.c for s in Secret.objects.annotate(c=F("token")).order_by("pk")] == TOKENS
    assert [v["c"] for v in Secret.objects.order_by("pk").values(c=F("token"))] == TOKENS
    assert [c.doc for c in Connection.objects.annotate(doc=F("options")).order_by("pk")] == [
        c.options for c in connections
    ]


def test_kt_on_a_key_holding_a_secret_is_refused(connections):
    refused(lambda: Connection.objects.annotate(c=KT("options__configuration")))
    regions = Connection.objects.annotate(r=KT("options__configuration__region")).order_by("pk")
    assert [c.r for c in regions] == ["eu", "us"]


# Whole documents ------------------------------------------------------------------------------


def test_whole_document_exact_without_a_secret_path_is_answered(connections):
    plain = Connection.objects.create(name="plain", options={"client_id": "z"})
    assert list(Connection.objects.filter(options={"client_id": "z"})) == [plain]
    assert list(Connection.objects.filter(options__exact={"client_id": "abc"})) == []
    found, created = Connection.objects.get_or_create(options={"client_id": "z"})
    assert (found, created) == (plain, False)
    made, created = Connection.objects.get_or_create(name="n", options={"region": "eu"})
    assert created
    assert Connection.objects.get(options={"region": "eu"}) == made
    empty = EmailProvider.objects.create(name="e", credentials={})
    assert list(EmailProvider.objects.filter(credentials={})) == [empty]


def test_whole_document_exact_naming_a_secret_is_refused(connections):
    with pytest.raises(FieldError, match="'client_secret' is an encrypted path"):
        list(Connection.objects.filter(options={"client_id": "a", "client_secret": "s"}))
    with pytest.raises(FieldError, match=r"'configuration\.client_secret' is an encrypted"):
        Connection.objects.get_or_create(options={"configuration": {"client_secret": "s1"}})


def test_count_of_a_secret_with_a_filter(rows):
    counted = Secret.objects.aggregate(n=Count("token", filter=Q(label__in=["row0", "row3"])))
    assert counted == {"n": 1}


def test_count_of_a_secret_with_a_filter_per_row_per_group_and_of_a_document(rows, connections):
    # On MariaDB each of these is COUNT(CASE WHEN ... THEN <ciphertext> END): NULL tests only.
    per_row = Secret.objects.annotate(n=Count("token", filter=Q(label__in=["row0", "row3"])))
    assert list(per_row.order_by("pk").values_list("n", flat=True)) == [1, 0, 0, 0]
    per_group = Secret.objects.values("label").annotate(n=Count("token", filter=~Q(label="row0")))
    assert list(per_group.order_by("label").values_list("n", flat=True)) == [0, 1, 1, 0]
    documents = Connection.objects.aggregate(n=Count("options", filter=Q(name="c1")))
    assert documents == {"n": 1}
    refused(lambda: [Secret.objects.aggregate(n=Count("token", distinct=True, filter=Q(pk=1)))])
