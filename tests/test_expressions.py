"""Every ORM expression over an encrypted column: the plaintext answer, or ``FieldError``.

The rows hold ``apple, banana, apple, NULL, cherry``, so every wrong answer the ciphertext would
give (ordering, grouping, distinct counts, comparisons) differs from the right one. Writes are
proven against the raw column: a refused write leaves it byte-identical, an accepted one holds
ciphertext that reads back as the plaintext.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import FieldError, ValidationError
from django.db import connection, models, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Transform,
    Value,
    When,
    Window,
)
from django.db.models.fields.json import KT, KeyTextTransform
from django.db.models.functions import (
    Cast,
    Coalesce,
    Concat,
    Left,
    Length,
    Lower,
    Replace,
    RowNumber,
    Substr,
    Trim,
    Upper,
)
from django.forms import modelform_factory
from django.test.utils import isolate_apps, register_lookup

from authhero_encrypt.crypto import PREFIX, decrypt_value, encrypt_value
from authhero_encrypt.fields import EncryptedCharField, JSONPathEncryptedField, StoredText
from tests.testapp.models import Connection, Secret

pytestmark = pytest.mark.django_db

FRUITS = ["apple", "banana", "apple", None, "cherry"]
REFUSED = r"testapp\.Secret\.token is encrypted at rest"


@pytest.fixture
def fruits() -> list[Secret]:
    return [Secret.objects.create(label=f"row{i}", token=t) for i, t in enumerate(FRUITS)]


def refuses(build: Any, match: str = REFUSED) -> None:
    """Building and evaluating ``build()`` raises ``FieldError`` whose message matches."""

    def evaluate() -> None:
        result = build()
        if isinstance(result, models.QuerySet):
            list(result)

    with pytest.raises(FieldError, match=match):
        evaluate()


# Reads: what raises -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Secret.objects.order_by("token"),
        lambda: Secret.objects.order_by("-token"),
        lambda: Secret.objects.order_by(F("token").asc(nulls_last=True)),
        lambda: Secret.objects.order_by(Lower("token")),
        lambda: Secret.objects.values("token").order_by("token"),
        lambda: Secret.objects.values("token").annotate(n=Count("id")),
        lambda: Secret.objects.values("token").distinct(),
        lambda: Secret.objects.values_list("token", flat=True).distinct(),
        lambda: Secret.objects.filter(label=F("token")),
        lambda: Secret.objects.filter(Q(label__gt=F("token"))),
        lambda: Secret.objects.filter(label__in=Subquery(Secret.objects.values("token"))),
        lambda: Secret.objects.filter(label__in=Secret.objects.values("token")),
        lambda: Secret.objects.values("token").intersection(Secret.objects.values("token")),
        lambda: Secret.objects.values("token").union(Secret.objects.values("token")),
        lambda: Secret.objects.values("token").difference(Secret.objects.values("label")),
        lambda: (
            Secret.objects.values("token")
            .union(Secret.objects.values("token"), all=True)
            .order_by("token")
        ),
        lambda: Secret.objects.annotate(n=Length("token")),
        lambda: Secret.objects.annotate(s=Substr("token", 1, 3)),
        lambda: Secret.objects.annotate(s=Cast("token", models.TextField())),
        lambda: Secret.objects.annotate(s=Concat("token", Value("!"))),
        lambda: Secret.objects.annotate(s=Upper("token")),
        lambda: Secret.objects.annotate(s=Lower("token")),
        lambda: Secret.objects.annotate(s=Coalesce("token", "label")),
        lambda: Secret.objects.annotate(s=Trim("token")),
        lambda: Secret.objects.annotate(s=Left("token", 2)),
        lambda: Secret.objects.annotate(s=Replace("token", Value("a"), Value("b"))),
        lambda: Secret.objects.annotate(s=F("token")).order_by("s"),
        lambda: Secret.objects.annotate(
            s=Case(When(label="row0", then=F("token")), default=Value("x"))
        ),
        lambda: Secret.objects.annotate(n=Window(RowNumber(), order_by=F("token").asc())),
        lambda: Secret.objects.annotate(n=Window(RowNumber(), partition_by=[F("token")])),
        lambda: Secret.objects.annotate(
            s=Subquery(Secret.objects.filter(pk=OuterRef("pk")).values("token")[:1])
        ).order_by("s"),
        lambda: Secret.objects.filter(
            label=Subquery(Secret.objects.filter(pk=OuterRef("pk")).values("token")[:1])
        ),
        lambda: Secret.objects.alias(s=Upper("token")).filter(s="APPLE"),
        lambda: Secret.objects.filter(Exists(Secret.objects.filter(label=OuterRef("token")))),
    ],
)
def test_reads_that_would_compute_on_ciphertext_raise(build, fruits):
    refuses(build)


@pytest.mark.parametrize(
    "aggregate",
    [
        lambda: Secret.objects.aggregate(m=Max("token")),
        lambda: Secret.objects.aggregate(m=Min("token")),
        lambda: Secret.objects.aggregate(n=Count("token", distinct=True)),
        lambda: Secret.objects.all()[:3].aggregate(m=Max("token")),
        lambda: Secret.objects.values("label").aggregate(m=Max(Length("token"))),
    ],
)
def test_aggregates_over_ciphertext_raise(aggregate, fruits):
    refuses(aggregate)


def test_distinct_on_fields_raises(fruits):
    refuses(lambda: str(Secret.objects.order_by().distinct("token").query))


def test_the_refusal_names_the_field_and_what_was_asked(fruits):
    with pytest.raises(FieldError) as excinfo:
        list(Secret.objects.order_by("token"))
    message = str(excinfo.value)
    assert "testapp.Secret.token" in message
    assert "ordering" in message
    with pytest.raises(FieldError, match=r"aggregate Max\(\)"):
        Secret.objects.aggregate(m=Max("token"))
    with pytest.raises(FieldError, match=r"function Upper\(\)"):
        list(Secret.objects.annotate(s=Upper("token")))


def test_nothing_is_sent_when_a_read_is_refused(fruits, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(FieldError):
        list(Secret.objects.order_by("token"))


def test_meta_ordering_on_an_encrypted_field_raises_at_run_time():
    with isolate_apps("tests.testapp"):

        class Ordered(models.Model):
            token = EncryptedCharField(max_length=20)

            class Meta:
                app_label = "testapp"
                ordering = ["token"]

            def __str__(self) -> str:
                return "ordered"

        with pytest.raises(FieldError, match=r"testapp\.Ordered\.token.*ordering"):
            str(Ordered.objects.all().query)


# Reads: what works, with the plaintext answer -----------------------------------------------------


def test_selecting_the_column_itself_returns_plaintext(fruits):
    assert sorted(Secret.objects.values_list("token", flat=True), key=str) == sorted(
        FRUITS, key=str
    )
    assert [row["token"] for row in Secret.objects.order_by("pk").values("token")] == FRUITS
    assert [s.token for s in Secret.objects.order_by("pk").only("token")] == FRUITS
    assert [s.token for s in Secret.objects.order_by("label")] == FRUITS


def test_isnull_and_a_plain_count_are_answered(fruits):
    assert Secret.objects.filter(token__isnull=True).count() == 1
    assert Secret.objects.filter(token=None).count() == 1
    assert Secret.objects.exclude(token__isnull=True).count() == 4
    assert Secret.objects.aggregate(n=Count("token"))["n"] == 4
    assert Secret.objects.annotate(n=Count("token")).filter(n=1).count() == 4


def test_row_operations_that_keep_rows_apart_work(fruits):
    # Whole rows: the primary key is selected beside the ciphertext, so DISTINCT, GROUP BY and
    # set operations compare rows as the plaintext would.
    assert Secret.objects.distinct().count() == 5
    assert len(Secret.objects.distinct()) == 5
    assert Secret.objects.all()[:3].count() == 3
    assert Secret.objects.distinct()[:3].count() == 3
    assert len(Secret.objects.annotate(n=Count("id"))) == 5
    first = Secret.objects.filter(label__in=["row0", "row1"])
    second = Secret.objects.filter(label__in=["row1", "row2"])
    if connection.features.supports_select_intersection:
        assert [s.token for s in first.intersection(second)] == ["banana"]
    assert sorted(s.token for s in first.union(second)) == ["apple", "apple", "banana"]
    both = Secret.objects.values_list("token", flat=True)
    assert sorted(both.union(both, all=True), key=str) == sorted(FRUITS * 2, key=str)


def test_exists_and_pk_subqueries_work(fruits):
    inner = Secret.objects.filter(token__isnull=False, label=OuterRef("label"))
    assert Secret.objects.filter(Exists(inner)).count() == 4
    assert Secret.objects.filter(pk__in=Secret.objects.filter(token__isnull=True)).count() == 1


def test_stored_text_reads_the_ciphertext_knowingly(fruits):
    rows = Secret.objects.annotate(raw=StoredText("token")).order_by("pk")
    stored = [row.raw for row in rows]
    assert stored[3] is None
    assert all(s.startswith(PREFIX) for s in stored if s is not None)
    assert [decrypt_value(s) if s else None for s in stored] == FRUITS


# Writes -------------------------------------------------------------------------------------------


def test_update_with_a_value_literal_is_encrypted(fruits, raw_column):
    Secret.objects.filter(pk=fruits[0].pk).update(token=Value("pear tree!"))
    stored = raw_column(Secret, fruits[0].pk, "token")
    assert stored.startswith(PREFIX)
    assert "pear" not in stored
    assert decrypt_value(stored) == "pear tree!"
    assert Secret.objects.get(pk=fruits[0].pk).token == "pear tree!"


def test_update_with_a_non_string_literal_is_encrypted_as_save_would(fruits, raw_column):
    Secret.objects.filter(pk=fruits[0].pk).update(token=Value(12345))
    assert decrypt_value(raw_column(Secret, fruits[0].pk, "token")) == "12345"


@pytest.mark.parametrize(
    "expression",
    [
        lambda: F("label"),
        lambda: F("token"),
        lambda: Concat(Value("x"), Value("y")),
        lambda: Upper(Value("x")),
        lambda: Coalesce(F("label"), Value("x")),
        lambda: Case(When(label="row0", then=F("label")), default=Value("x")),
        lambda: Cast(Value("x"), models.TextField()),
        lambda: Subquery(Secret.objects.values("label")[:1]),
    ],
)
def test_update_with_any_other_expression_raises_and_writes_nothing(expression, fruits, raw_column):
    before = [raw_column(Secret, s.pk, "token") for s in fruits]
    with (
        pytest.raises(FieldError, match=r"testapp\.Secret\.token.*Nothing was written"),
        transaction.atomic(),
    ):
        Secret.objects.update(token=expression())
    assert [raw_column(Secret, s.pk, "token") for s in fruits] == before


def test_update_with_case_of_literals_is_encrypted(fruits, raw_column):
    Secret.objects.filter(pk__in=[fruits[0].pk, fruits[1].pk]).update(
        token=Case(When(label="row0", then=Value("one secret!")), default=Value("two secret!"))
    )
    assert decrypt_value(raw_column(Secret, fruits[0].pk, "token")) == "one secret!"
    assert decrypt_value(raw_column(Secret, fruits[1].pk, "token")) == "two secret!"


def test_bulk_update_still_encrypts(fruits, raw_column):
    for item in fruits:
        item.token = f"bulk {item.label}!"
    Secret.objects.bulk_update(fruits, ["token"])
    for item in fruits:
        assert decrypt_value(raw_column(Secret, item.pk, "token")) == f"bulk {item.label}!"


def test_save_with_a_value_literal_is_encrypted(raw_column):
    item = Secret.objects.create(label="v", token=Value("made by value!"))
    assert decrypt_value(raw_column(Secret, item.pk, "token")) == "made by value!"


def test_save_with_an_expression_raises_and_writes_nothing():
    with (
        pytest.raises(FieldError, match=r"testapp\.Secret\.token.*Nothing was written"),
        transaction.atomic(),
    ):
        Secret.objects.create(label="x", token=Upper(Value("x")))
    assert not Secret.objects.filter(label="x").exists()
    item = Secret.objects.create(label="y", token="kept secret!")
    item.token = F("label")
    with pytest.raises(FieldError), transaction.atomic():
        item.save()
    assert Secret.objects.get(pk=item.pk).token == "kept secret!"


# JSONPathEncryptedField ---------------------------------------------------------------------------


@pytest.fixture
def documents() -> list[Connection]:
    return [
        Connection.objects.create(
            name="google",
            options={
                "client_id": "abc",
                "client_secret": "shh one!",
                "tags": ["a", "b"],
                "configuration": {"client_secret": "deep one!", "region": "eu"},
            },
        ),
        Connection.objects.create(
            name="github", options={"client_id": "def", "client_secret": "shh two!"}
        ),
        Connection.objects.create(name="empty", options=None),
    ]


JSON_REFUSED = r"testapp\.Connection\.options"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Connection.objects.annotate(s=Cast("options", models.TextField())),
        lambda: Connection.objects.annotate(n=Length(Cast("options", models.TextField()))),
        lambda: Connection.objects.order_by("options"),
        lambda: Connection.objects.order_by("options__configuration"),
        lambda: Connection.objects.values("options").distinct(),
        lambda: Connection.objects.values("options").annotate(n=Count("id")),
        lambda: Connection.objects.annotate(s=KT("options__client_secret")),
        lambda: Connection.objects.annotate(s=KT("options__configuration__client_secret")),
        lambda: Connection.objects.annotate(s=KeyTextTransform("client_secret", "options")),
        lambda: Connection.objects.annotate(s=KT("options__client_secret")).order_by("s"),
        lambda: Connection.objects.filter(name=KT("options__client_secret")),
        lambda: Connection.objects.aggregate(m=Max("options")),
        lambda: Connection.objects.values("options__configuration").order_by(
            "options__configuration"
        ),
    ],
)
def test_json_reads_that_reach_a_secret_raise(build, documents):
    refuses(build, JSON_REFUSED)


def test_json_plaintext_keys_stay_queryable(documents):
    ids = Connection.objects.annotate(c=KT("options__client_id")).order_by("c")
    assert [c.c for c in ids] == ([None, "abc", "def"] if _nulls_first() else ["abc", "def", None])
    assert Connection.objects.filter(options__client_id="abc").count() == 1
    assert list(
        Connection.objects.filter(options__isnull=False)
        .order_by("options__client_id")
        .values_list("options__client_id", flat=True)
    ) == ["abc", "def"]
    assert Connection.objects.filter(options__has_key="client_secret").count() == 2
    assert Connection.objects.filter(options__configuration__has_key="region").count() == 1
    assert Connection.objects.filter(options__configuration__region="eu").count() == 1


def _nulls_first() -> bool:
    return connection.vendor in ("sqlite", "mysql")


def test_json_null_spelled_as_a_value_is_answered():
    Connection.objects.create(name="json null", options=Value(None, models.JSONField()))
    Connection.objects.create(name="sql null", options=None)
    found = Connection.objects.filter(options=Value(None, models.JSONField()))
    assert list(found.values_list("name", flat=True)) == ["json null"]
    assert Connection.objects.filter(options__isnull=True).count() == 1


class JType(Transform):
    """A transform a project might register on JSONField: the JSON type of the value."""

    lookup_name = "jtype"
    output_field = models.CharField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        lhs, params = compiler.compile(self.lhs)
        function = {"postgresql": "jsonb_typeof", "mysql": "JSON_TYPE"}.get(
            connection.vendor, "json_type"
        )
        return f"LOWER({function}({lhs}))", params


def test_a_registered_transform_works_where_no_secret_is_reached(documents):
    with register_lookup(models.JSONField, JType):
        assert Connection.objects.filter(options__tags__jtype="array").count() == 1
        refuses(lambda: Connection.objects.filter(options__jtype="object"), JSON_REFUSED)
        refuses(
            lambda: Connection.objects.filter(options__client_secret__jtype="string"),
            JSON_REFUSED,
        )
        refuses(
            lambda: Connection.objects.filter(options__configuration__jtype="object"),
            JSON_REFUSED,
        )


def test_json_update_with_a_value_is_encrypted(documents, raw_column):
    document = {"client_id": "new", "client_secret": "value secret!"}
    Connection.objects.filter(pk=documents[1].pk).update(
        options=Value(document, models.JSONField())
    )
    raw = raw_column(Connection, documents[1].pk, "options")
    assert "value secret!" not in str(raw)
    assert Connection.objects.get(pk=documents[1].pk).options == document


@pytest.mark.parametrize(
    "expression",
    [
        lambda: F("options"),
        lambda: Cast(Value('{"client_secret": "x"}'), models.JSONField()),
        lambda: Coalesce(F("options"), Value({}, models.JSONField())),
    ],
)
def test_json_update_with_an_expression_raises_and_writes_nothing(
    expression, documents, raw_column
):
    before = [raw_column(Connection, c.pk, "options") for c in documents]
    with (
        pytest.raises(FieldError, match=r"testapp\.Connection\.options.*Nothing was written"),
        transaction.atomic(),
    ):
        Connection.objects.update(options=expression())
    assert [raw_column(Connection, c.pk, "options") for c in documents] == before


def test_json_create_with_a_value_is_encrypted(raw_column):
    document = {"client_id": "v", "client_secret": "created secret!"}
    item = Connection.objects.create(name="v", options=Value(document, models.JSONField()))
    assert "created secret!" not in str(raw_column(Connection, item.pk, "options"))
    assert Connection.objects.get(pk=item.pk).options == document


# Validation: typed-in ciphertext ------------------------------------------------------------------


def test_model_validation_refuses_typed_in_ciphertext():
    stolen = encrypt_value("the victim's secret")
    with pytest.raises(ValidationError) as excinfo:
        Secret(label="x", token=stolen).full_clean()
    assert excinfo.value.error_dict["token"][0].code == "ciphertext"
    assert "victim" not in str(excinfo.value)
    Secret(label="x", token="enc:v2 is fine").full_clean()


def test_a_model_form_refuses_pasted_ciphertext_and_saves_nothing():
    form_class = modelform_factory(Secret, fields=["label", "token"])
    form = form_class(data={"label": "oracle", "token": encrypt_value("victim secret")})
    assert not form.is_valid()
    assert "token" in form.errors
    assert not Secret.objects.filter(label="oracle").exists()


def test_json_validation_refuses_ciphertext_at_a_secret_path():
    options = {"client_id": "x", "configuration": {"client_secret": encrypt_value("victim")}}
    with pytest.raises(ValidationError, match=r"configuration\.client_secret"):
        Connection(name="x", options=options).full_clean()
    Connection(name="x", options={"client_id": encrypt_value("not a secret path")}).full_clean()


def test_save_and_bulk_create_of_verified_ciphertext_still_work(raw_column):
    stored = encrypt_value("from a dump")
    item = Secret.objects.create(label="dump", token=stored)
    assert raw_column(Secret, item.pk, "token") == stored
    Secret.objects.bulk_create([Secret(label="bulk", token=stored)])
    assert Secret.objects.get(label="bulk").token == "from a dump"


# Checks -------------------------------------------------------------------------------------------


def test_a_malformed_max_length_is_reported_not_crashed():
    with isolate_apps("tests.testapp"):

        class Bad(models.Model):
            token = EncryptedCharField(max_length="20")  # type: ignore[arg-type]

            class Meta:
                app_label = "testapp"

            def __str__(self) -> str:
                return "bad"

        ids = [message.id for message in Bad.check(databases=["default"])]
    assert "fields.E121" in ids


def ordering_check_ids(ordering: list[Any], **fields: models.Field[Any, Any]) -> list[str]:
    """The check ids of a throwaway model with ``fields`` and ``Meta.ordering = ordering``."""
    with isolate_apps("tests.testapp"):
        meta = type("Meta", (), {"app_label": "testapp", "ordering": ordering})
        attrs: dict[str, Any] = {"__module__": __name__, "Meta": meta, **fields}
        model: Any = type("Ordered", (models.Model,), attrs)
        return [message.id for message in model.check(databases=["default"])]


@pytest.mark.parametrize(
    ("ordering", "refused"),
    [
        (["token"], True),
        (["-token"], True),
        ([F("token").desc()], True),
        (["label"], False),
    ],
)
def test_meta_ordering_on_an_encrypted_field_is_a_check_error(ordering, refused):
    ids = ordering_check_ids(
        ordering, label=models.CharField(max_length=10), token=EncryptedCharField(max_length=20)
    )
    assert ("authhero_encrypt.E105" in ids) is refused


@pytest.mark.parametrize(
    ("ordering", "refused"),
    [
        (["options"], True),
        (["options__client_secret"], True),
        (["options__configuration"], True),
        (["options__client_id"], False),
        (["-options__configuration__region"], False),
    ],
)
def test_meta_ordering_on_a_secret_json_path_is_a_check_error(ordering, refused):
    paths = ["client_secret", "configuration.client_secret"]
    ids = ordering_check_ids(ordering, options=JSONPathEncryptedField(encrypted_paths=paths))
    assert ("authhero_encrypt.E105" in ids) is refused
