"""An encrypted value selected by a ``Subquery``: judged where the outer query uses it.

Django's own ``test_obj_subquery_lookup`` and ``test_nested_key_transform_on_subquery`` select a
JSON document in a subquery and filter on its keys. The subquery's value is the column's
ciphertext (or one of its keys), so it gets the column's answers: a key reaching only
plaintext is compared, sorted and selected as on the column; the document selected is
decrypted; a secret key, a key holding secrets compared whole, and anything that sorts, groups,
deduplicates or combines rows on the value raises ``FieldError``.

``configuration.app_secret`` holds text that looks like ciphertext but sits at a plaintext path,
so a value decrypted with the paths of the wrong place would come back changed.
"""

from __future__ import annotations

from typing import Any

import django
import pytest
from django.core.exceptions import FieldError
from django.db import connection, models
from django.db.models import Count, F, Max, OuterRef, Subquery
from django.db.models.fields.json import KT, KeyTransform
from django.db.models.functions import Cast
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.query import Query

from authhero_encrypt.crypto import PREFIX, encrypt_value
from authhero_encrypt.fields import expressions
from tests.test_guard_fail_closed import _delegating, _renamed_locals
from tests.testapp.models import Connection, Secret

pytestmark = pytest.mark.django_db

LOOKALIKE = encrypt_value("not a secret here")


def google_options() -> dict[str, Any]:
    return {
        "client_id": "abc",
        "client_secret": "shh one!",
        "configuration": {"client_secret": "deep one!", "region": "eu", "app_secret": LOOKALIKE},
        "nested": {"k": "v"},
    }


def github_options() -> dict[str, Any]:
    return {
        "client_id": "def",
        "client_secret": "shh two!",
        "configuration": {"region": "us"},
        "nested": {"k": "w"},
    }


@pytest.fixture
def rows(raw_column: Any) -> list[Connection]:
    made = [
        Connection.objects.create(name="google", options=google_options()),
        Connection.objects.create(name="github", options=github_options()),
        Connection.objects.create(name="empty", options=None),
    ]
    stored = str(raw_column(Connection, made[0].pk, "options"))
    # The answers below need the keys: the secrets are only ciphertext in the column.
    assert "shh one!" not in stored
    assert "deep one!" not in stored
    assert PREFIX in stored
    return made


@pytest.fixture(params=["Subquery", "queryset"])
def selected(request: Any) -> Any:
    """Builds the row's own document (or its key at ``path``), selected by a subquery.

    Spelled ``Subquery(qs)``, or as the queryset itself, which resolves to its bare ``Query``
    (as ``Subquery`` itself does in newer Django).
    """

    def build(path: str = "options") -> Any:
        queryset = Connection.objects.filter(pk=OuterRef("pk")).values(path)
        return Subquery(queryset) if request.param == "Subquery" else queryset

    return build


def names(queryset: Any) -> list[str]:
    return [row.name for row in queryset.order_by("pk")]


# What works, with the plaintext answer --------------------------------------------------------


def test_the_document_filtered_on_a_plaintext_key(rows, selected):
    # Django's test_obj_subquery_lookup: the subquery's document is also selected (decrypted).
    found = Connection.objects.annotate(doc=selected()).filter(doc__client_id="abc")
    assert [(c.name, c.doc) for c in found] == [("google", google_options())]
    assert found.count() == 1
    assert found.exists()
    deep = Connection.objects.annotate(doc=selected()).filter(doc__configuration__region="us")
    assert names(deep) == ["github"]


def test_a_nested_key_transform_on_the_subquery(rows, selected):
    # Django's test_nested_key_transform_on_subquery: keys of keys, built by hand, selected.
    found = (
        Connection.objects.filter(options__client_id__isnull=False)
        .annotate(
            doc=selected(),
            key=KeyTransform("configuration", "doc"),
            chain=KeyTransform("region", "key"),
        )
        .filter(chain="eu")
    )
    assert [(c.name, c.key, c.chain) for c in found] == [
        ("google", google_options()["configuration"], "eu")
    ]


def test_a_subquery_selecting_a_key_filtered_below_it(rows, selected):
    nested = Connection.objects.annotate(sub=selected("options__nested")).filter(sub__k="v")
    assert [(c.name, c.sub) for c in nested] == [("google", {"k": "v"})]
    holding = Connection.objects.annotate(sub=selected("options__configuration"))
    assert [(c.name, c.sub) for c in holding.filter(sub__region="eu")] == [
        ("google", google_options()["configuration"])  # app_secret left as it is stored
    ]
    assert names(nested.model.objects.annotate(sub=selected("options__nested"))) == [
        "google",
        "github",
        "empty",
    ]


def test_ordering_and_selecting_a_plaintext_key_of_the_subquery(rows, selected):
    ordered = Connection.objects.annotate(doc=selected()).filter(doc__isnull=False)
    assert list(ordered.order_by("-doc__client_id").values_list("name", flat=True)) == [
        "github",
        "google",
    ]
    regions = ordered.annotate(region=KT("doc__configuration__region")).order_by("region")
    assert list(regions.values_list("name", "region")) == [("google", "eu"), ("github", "us")]


def test_null_and_documents_without_a_secret(rows, selected):
    # (has_key is left out: Django's own HasKeyLookup fails on a subquery on SQLite and MariaDB,
    # adding a list to the subquery's tuple of parameters, with a plain JSONField too.)
    annotated = Connection.objects.annotate(doc=selected())
    assert names(annotated.filter(doc__isnull=True)) == ["empty"]
    assert names(annotated.filter(doc__nested={"k": "w"})) == ["github"]
    plain = Connection.objects.create(name="plain", options={"client_id": "z"})
    assert list(annotated.filter(doc={"client_id": "z"})) == [plain]
    assert list(annotated.filter(doc={"client_id": "abc"})) == []
    if connection.features.supports_json_field_contains:
        assert names(annotated.filter(doc__contains={"client_id": "def"})) == ["github"]


def test_a_scalar_secret_selected_by_a_subquery_is_decrypted(raw_column):
    made = [Secret.objects.create(label=f"row{i}", token=t) for i, t in enumerate(["b", "a"])]
    assert raw_column(Secret, made[0].pk, "token") != "b"
    inner = Secret.objects.filter(pk=OuterRef("pk")).values("token")[:1]
    values = Secret.objects.annotate(s=Subquery(inner)).order_by("pk").values_list("s", flat=True)
    assert list(values) == ["b", "a"]


# What stays refused -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda sub: Connection.objects.annotate(doc=sub()).filter(doc__client_secret="shh one!"),
        lambda sub: Connection.objects.annotate(doc=sub()).filter(
            doc__configuration__client_secret="deep one!"
        ),
        lambda sub: Connection.objects.annotate(sub=sub("options__configuration")).filter(
            sub__client_secret="deep one!"
        ),
        lambda sub: Connection.objects.annotate(doc=sub()).filter(
            doc={"client_id": "abc", "client_secret": "shh one!"}
        ),
        lambda sub: Connection.objects.annotate(sub=sub("options__configuration")).filter(
            sub={"client_secret": "deep one!"}
        ),
        lambda sub: Connection.objects.annotate(doc=sub()).filter(
            doc__contains={"client_secret": "shh one!"}
        ),
        lambda sub: Connection.objects.annotate(doc=sub()).annotate(t=KT("doc__client_secret")),
    ],
)
def test_a_secret_path_reached_through_the_subquery_is_refused(build, rows, selected):
    with pytest.raises(FieldError, match=r"'(configuration\.)?client_secret' is an encrypted"):
        list(build(selected))


@pytest.mark.parametrize(
    "build",
    [
        lambda sub: Connection.objects.annotate(doc=sub()).order_by("doc"),
        lambda sub: Connection.objects.annotate(doc=sub()).order_by(F("doc").desc()),
        lambda sub: Connection.objects.order_by(sub()),
        lambda sub: Connection.objects.annotate(doc=sub()).order_by("doc__configuration"),
        lambda sub: Connection.objects.annotate(sub=sub("options__configuration")).order_by("-sub"),
        lambda sub: Connection.objects.annotate(doc=sub()).values_list("doc").order_by("doc"),
        lambda sub: Connection.objects.annotate(doc=sub()).distinct(),
        lambda sub: Connection.objects.annotate(doc=sub()).values("doc").distinct(),
        lambda sub: Connection.objects.annotate(doc=sub()).values("doc").annotate(n=Count("id")),
        lambda sub: (
            Connection.objects.annotate(doc=sub())
            .values_list("pk", "doc")
            .union(Connection.objects.annotate(doc=sub()).values_list("pk", "doc"))
        ),
        lambda sub: Connection.objects.annotate(doc=sub()).filter(doc=F("options")),
        lambda sub: Connection.objects.annotate(doc=sub()).filter(
            doc__configuration={"region": "eu"}
        ),
        lambda sub: Connection.objects.annotate(doc=sub()).filter(
            doc__configuration__icontains="deep"
        ),
        lambda sub: Connection.objects.annotate(doc=sub()).annotate(t=KT("doc__configuration")),
        lambda sub: Connection.objects.annotate(t=Cast(sub(), models.TextField())),
        lambda sub: Connection.objects.filter(
            name__in=Subquery(Connection.objects.values("options"))
        ),
        lambda sub: Connection.objects.filter(
            name=Subquery(Connection.objects.filter(pk=OuterRef("pk")).values("options")[:1])
        ),
        lambda sub: Connection.objects.annotate(doc=sub()).aggregate(m=Max("doc")),
        lambda sub: Connection.objects.annotate(doc=sub())[:2].aggregate(n=Count("doc")),
    ],
)
def test_a_subquery_document_sorted_grouped_or_compared_is_refused(build, rows, selected):
    def evaluate() -> None:
        result = build(selected)
        if isinstance(result, models.QuerySet):
            list(result)

    with pytest.raises(FieldError, match=r"testapp\.Connection\.options"):
        evaluate()


@pytest.mark.parametrize("rhs", [F("options"), F("options__configuration")])
def test_a_vetted_lookup_compared_with_an_encrypted_document_is_refused(rhs, rows, selected):
    # A plaintext key has no secret paths to vet a document against, but the document it is
    # compared with may hold ciphertext: the answer would be about the ciphertext.
    nested = Connection.objects.annotate(sub=selected("options__nested"))
    with pytest.raises(FieldError, match=r"testapp\.Connection\.options.*lookup 'exact'"):
        list(nested.filter(sub=rhs))
    if connection.features.supports_json_field_contains:
        with pytest.raises(FieldError, match=r"lookup 'contains'"):
            list(Connection.objects.filter(options__nested__contains=rhs))


def test_a_subquery_given_another_output_field_is_refused(rows):
    # Its value would reach the caller without the field's converter: ciphertext as the value.
    inner = Connection.objects.filter(pk=OuterRef("pk"))
    plain = Subquery(inner.values("options"), output_field=models.JSONField())
    # (Django 6.0 wraps such a Subquery in ExpressionWrapper, refused as such.)
    with pytest.raises(
        FieldError, match=r"testapp\.Connection\.options.*(subquery|ExpressionWrapper)"
    ):
        list(Connection.objects.annotate(doc=plain).values_list("doc", flat=True))
    Secret.objects.create(label="x", token="kept secret!")
    text = Subquery(
        Secret.objects.filter(pk=OuterRef("pk")).values("token")[:1],
        output_field=models.CharField(),
    )
    with pytest.raises(FieldError, match=r"testapp\.Secret\.token.*(subquery|ExpressionWrapper)"):
        list(Secret.objects.annotate(s=text).values_list("s", flat=True))


@pytest.mark.parametrize("template", ["UPPER(%(subquery)s)", "LOWER(%(subquery)s)"])
def test_a_subquery_with_a_template_of_its_own_is_refused(rows, template):
    # Its SQL wraps the stored text: a filter on a plaintext key of the result would be answered
    # about the ciphertext (or its upper case).
    inner = Connection.objects.filter(pk=OuterRef("pk")).values("options")
    doc = Subquery(inner, template=template)
    with pytest.raises(FieldError, match=r"testapp\.Connection\.options.*subquery"):
        list(Connection.objects.annotate(doc=doc).filter(doc__client_id="abc"))


def test_a_refused_subquery_sends_nothing(rows, selected, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(FieldError):
        list(Connection.objects.annotate(doc=selected()).order_by("doc"))


# Failing closed -------------------------------------------------------------------------------


# Django 6.0 resolves a plain Subquery to its Query, so Subquery.as_sql() is no longer on the
# path these simulations change (the Query.as_sql() and compile() ones still apply).
_SUBQUERY_ON_THE_PATH = pytest.mark.skipif(
    django.VERSION >= (6, 0), reason="Django 6.0+ compiles a Subquery as its Query"
)


def _allowed() -> Any:
    doc = Subquery(Connection.objects.filter(pk=OuterRef("pk")).values("options"))
    return Connection.objects.annotate(doc=doc).filter(doc__client_id="abc")


@pytest.mark.parametrize(
    ("owner", "name", "constant", "locals_renamed"),
    [
        pytest.param(
            Subquery, "as_sql", "", {}, id="Subquery.as_sql-moved", marks=_SUBQUERY_ON_THE_PATH
        ),
        pytest.param(Query, "as_sql", "", {}, id="Query.as_sql-moved"),
        pytest.param(
            Subquery,
            "as_sql",
            "_SUBQUERY_AS_SQL",
            {"self": "this"},
            id="Subquery.as_sql-locals",
            marks=_SUBQUERY_ON_THE_PATH,
        ),
        pytest.param(
            SQLCompiler, "compile", "_COMPILE", {"node": "expression"}, id="compile-locals"
        ),
    ],
)
def test_a_refactored_subquery_path_is_refused(
    monkeypatch, rows, owner, name, constant, locals_renamed
):
    # As in test_guard_fail_closed: a method that now delegates (one more frame), or the same
    # method with its locals renamed, which the guard (reading code objects at import) would
    # know by its new code.
    assert names(_allowed()) == ["google"]
    original = getattr(owner, name)
    if locals_renamed:
        changed = _renamed_locals(original, locals_renamed)
        monkeypatch.setattr(expressions, constant, changed.__code__)
    else:
        changed = _delegating(original)
    monkeypatch.setattr(owner, name, changed)
    with pytest.raises(FieldError, match=r"testapp\.Connection\.options is encrypted at rest"):
        list(_allowed())
