"""Blind indexes through the integrations, with the real packages: DRF's unique validators,
django-filter's exact filters, the admin's ``=email`` search and django-import-export imports.

Each shows the plaintext answer and that a pasted ciphertext finds nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
import tablib
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import RequestFactory, override_settings
from django_filters import rest_framework as django_filters
from import_export.resources import ModelResource
from rest_framework import generics, serializers
from rest_framework.test import APIRequestFactory
from rest_framework.validators import UniqueValidator

from authhero_encrypt.admin import EncryptedFieldsAdminMixin
from authhero_encrypt.admin.checks import check_admin_secrets
from authhero_encrypt.integrations.drf import EncryptedFieldsSerializerMixin
from authhero_encrypt.integrations.drf.filtersets import (
    EncryptedFieldsFilterBackend,
    EncryptedFieldsFilterSet,
)
from authhero_encrypt.integrations.drf_checks import check_drf_views
from authhero_encrypt.integrations.import_export import EncryptedFieldsResourceMixin
from tests.blind_index_helpers import raw_value
from tests.indexapp.models import Account, Member
from tests.keys import INDEX_KEY_A, INDEX_KEY_B

pytestmark = pytest.mark.django_db

ROTATING = {
    "ENCRYPTION_INDEX_KEY": INDEX_KEY_B,
    "ENCRYPTION_INDEX_KEY_ID": "i2",
    "ENCRYPTION_INDEX_KEY_FALLBACKS": [f"i1:{INDEX_KEY_A}"],
}


raw = raw_value


def names(rows: Any) -> list[str]:
    return sorted(row.name if hasattr(row, "name") else row["name"] for row in rows)


@pytest.fixture
def members() -> dict[str, str]:
    """The members, and the stored ciphertext of each one's email (what an attacker pastes)."""
    bob = Member.objects.create(name="m-bob", email="Bob@Example.com", token="Tok")
    ann = Member.objects.create(name="m-ann", email="ann@example.com", token="tok")
    return {"bob": raw(Member, bob.pk, "email"), "ann": raw(Member, ann.pk, "email")}


# DRF: UniqueValidator and ModelSerializer ---------------------------------------------------


class MemberSerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Member
        fields = ["name", "email"]


class AccountSerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Account
        fields = ["tenant", "email"]


def test_model_serializer_refuses_a_duplicate_on_the_source(members: dict[str, str]) -> None:
    serializer = MemberSerializer(data={"name": "x", "email": " BOB@example.com"})
    assert not serializer.is_valid()
    # DRF words it as for any unique model field (its verbose names, lowercase)
    assert serializer.errors == {"email": ["member with this email already exists."]}
    assert [error.code for error in serializer.errors["email"]] == ["unique"]
    serializer = MemberSerializer(data={"name": "carol", "email": "carol@example.com"})
    assert serializer.is_valid(), serializer.errors
    saved = serializer.save()
    assert raw(Member, saved.pk, "email_index").startswith("i1:")
    # An update keeping its own email is no duplicate of itself.
    bob = Member.objects.get(email="bob@example.com")
    assert MemberSerializer(bob, data={"email": "bob@example.com"}, partial=True).is_valid()


def test_model_serializer_finds_rows_under_an_older_key(members: dict[str, str]) -> None:
    with override_settings(**ROTATING):
        serializer = MemberSerializer(data={"name": "x", "email": "bob@example.com"})
        assert not serializer.is_valid()
        assert [error.code for error in serializer.errors["email"]] == ["unique"]


def test_model_serializer_pasted_ciphertext_is_refused_and_no_duplicate(
    members: dict[str, str],
) -> None:
    serializer = MemberSerializer(data={"name": "x", "email": members["bob"]})
    assert not serializer.is_valid()
    assert [error.code for error in serializer.errors["email"]] == ["ciphertext"]


def test_drf_unique_validator_on_the_source(members: dict[str, str]) -> None:
    class Plain(serializers.Serializer):  # type: ignore[type-arg]
        email = serializers.CharField(validators=[UniqueValidator(Member.objects.all())])

    assert not Plain(data={"email": "bob@EXAMPLE.com"}).is_valid()
    assert Plain(data={"email": "carol@example.com"}).is_valid()
    # A ciphertext is no plaintext any row holds: the validator finds nothing.
    assert Plain(data={"email": members["bob"]}).is_valid()


def test_serializer_unique_with_validates_per_tenant() -> None:
    Account.objects.create(tenant="t1", email="bob@example.com")
    serializer = AccountSerializer(data={"tenant": "t1", "email": "Bob@example.com"})
    assert not serializer.is_valid()
    assert [error.code for error in serializer.errors["non_field_errors"]] == ["unique"]
    assert AccountSerializer(data={"tenant": "t2", "email": "bob@example.com"}).is_valid()
    stored = raw(Account, Account.objects.get().pk, "email")
    errors = AccountSerializer(data={"tenant": "t1", "email": stored})
    assert not errors.is_valid()
    assert [error.code for error in errors.errors["email"]] == ["ciphertext"]
    assert "non_field_errors" not in errors.errors


# django-filter ----------------------------------------------------------------------------


class MemberFilter(EncryptedFieldsFilterSet):  # type: ignore[misc]
    class Meta:
        model = Member
        fields = {
            "email": ["exact", "in", "iexact", "icontains", "startswith"],
            "token": ["exact", "iexact"],
        }


def test_the_filterset_keeps_exactly_the_lookups_the_index_answers() -> None:
    assert sorted(MemberFilter.base_filters) == ["email", "email__iexact", "email__in", "token"]


def test_all_fields_filter_the_sources_and_never_the_tags(members: dict[str, str]) -> None:
    class Everything(EncryptedFieldsFilterSet):  # type: ignore[misc]
        class Meta:
            model = Member
            fields = "__all__"

    assert sorted(Everything.base_filters) == ["email", "name", "phone", "token"]
    found = Everything({"token": "Tok"}, queryset=Member.objects.all()).qs
    assert names(found) == ["m-bob"]
    found = Everything({"email": "ann@example.com"}, queryset=Member.objects.all()).qs
    assert names(found) == ["m-ann"]
    found = Everything({"email": members["ann"]}, queryset=Member.objects.all()).qs
    assert names(found) == []


def test_django_filter_exact_filters_give_the_plaintext_answer(members: dict[str, str]) -> None:
    def found(**params: str) -> list[str]:
        return names(MemberFilter(params, queryset=Member.objects.all()).qs)

    assert found(email="bob@example.com") == ["m-bob"]
    assert found(email__iexact="BOB@EXAMPLE.COM") == ["m-bob"]
    assert found(email__in="bob@example.com,ann@example.com") == ["m-ann", "m-bob"]
    assert found(token="tok") == ["m-ann"]  # the token index does not fold case
    assert found(email=members["bob"]) == []
    assert found(email__in=f"{members['bob']},{members['ann']}") == []


class MemberView(generics.ListAPIView):  # type: ignore[type-arg]
    queryset = Member.objects.all()
    serializer_class = MemberSerializer
    filter_backends = [django_filters.DjangoFilterBackend]
    filterset_fields = {"email": ["exact"]}


def test_filterset_fields_on_a_view(members: dict[str, str]) -> None:
    assert check_drf_views(views=[MemberView]) == []
    view = MemberView.as_view()
    response = view(APIRequestFactory().get("/", {"email": "BOB@example.com"}))
    assert names(response.data) == ["m-bob"]
    response = view(APIRequestFactory().get("/", {"email": members["ann"]}))
    assert names(response.data) == []


@pytest.mark.parametrize(
    ("fields", "backend", "warned"),
    [
        ({"email": ["exact", "in", "iexact"]}, django_filters.DjangoFilterBackend, False),
        (["email"], django_filters.DjangoFilterBackend, False),
        ({"email": ["icontains"]}, django_filters.DjangoFilterBackend, True),
        ({"token": ["iexact"]}, django_filters.DjangoFilterBackend, True),
        ({"token": ["exact"]}, EncryptedFieldsFilterBackend, False),
    ],
)
def test_w503_allows_only_the_indexed_lookups(fields: Any, backend: Any, warned: bool) -> None:
    view = type(
        "View",
        (generics.ListAPIView,),
        {
            "queryset": Member.objects.all(),
            "serializer_class": MemberSerializer,
            "filter_backends": [backend],
            "filterset_fields": fields,
        },
    )
    found = [message.id for message in check_drf_views(views=[view])]
    assert found == (["authhero_encrypt.W503"] if warned else [])


def test_w504_allows_only_the_indexed_lookups(members: dict[str, str]) -> None:
    class Exact(django_filters.FilterSet):  # type: ignore[misc]
        email_like = django_filters.CharFilter(field_name="email", lookup_expr="icontains")

        class Meta:
            model = Member
            fields = {"email": ["exact", "in"]}

    view = type(
        "View",
        (generics.ListAPIView,),
        {
            "queryset": Member.objects.all(),
            "serializer_class": MemberSerializer,
            "filter_backends": [django_filters.DjangoFilterBackend],
            "filterset_class": Exact,
        },
    )
    found = check_drf_views(views=[view])
    assert [message.id for message in found] == ["authhero_encrypt.W504"]
    assert "email__icontains" in found[0].msg
    assert names(Exact({"email": "BOB@example.com"}, queryset=Member.objects.all()).qs) == ["m-bob"]
    assert names(Exact({"email": members["bob"]}, queryset=Member.objects.all()).qs) == []


# The admin --------------------------------------------------------------------------------


def model_admin(search_fields: list[str]) -> admin.ModelAdmin[Member]:
    from django.contrib.admin.sites import all_sites

    site = admin.AdminSite(name="blind_index")
    # Out of the project's checks: W201 is the point of some of these admins, and every
    # AdminSite still alive is checked by `manage.py check` (tests/test_checks.py).
    all_sites.discard(site)
    attrs = {"search_fields": search_fields}
    site.register(Member, type("MemberAdmin", (EncryptedFieldsAdminMixin, admin.ModelAdmin), attrs))
    return site._registry[Member]


@pytest.mark.parametrize(
    ("search_fields", "warned"),
    [
        (["=email", "name"], []),  # the email index folds case: =email is its iexact
        (["email__exact", "token__exact"], []),
        (["=token"], ["=token"]),  # the token index does not fold case
        (["email"], ["email"]),  # icontains
        (["^email"], ["^email"]),
        (["email__in"], ["email__in"]),  # a search term is no list
    ],
)
def test_w201_allows_exact_searches_through_the_index(
    search_fields: list[str], warned: list[str]
) -> None:
    site = model_admin(search_fields).admin_site
    found = check_admin_secrets(sites=[site])
    assert [message.id for message in found] == ["authhero_encrypt.W201"] * len(warned)
    for message, name in zip(found, warned, strict=True):
        assert repr(name.lstrip("^=@")) in message.msg
        assert "'=email'" in str(message.hint)


def test_admin_exact_search_gives_the_plaintext_answer(members: dict[str, str]) -> None:
    request = RequestFactory().get("/")
    request.user = User.objects.create_superuser("admin", "a@example.com", "pw")
    members_admin = model_admin(["=email", "token__exact", "name"])

    def found(term: str) -> list[str]:
        queryset, _ = members_admin.get_search_results(request, Member.objects.all(), term)
        return names(queryset)

    assert found("BOB@example.com") == ["m-bob"]
    assert found("tok") == ["m-ann"]
    assert found(members["bob"]) == []
    # The changelist itself, as the search box sends it.
    request = RequestFactory().get("/", {"q": "ANN@example.com"})
    request.user = User.objects.get(username="admin")
    changelist = members_admin.get_changelist_instance(request)
    assert names(changelist.result_list) == ["m-ann"]


# django-import-export ---------------------------------------------------------------------


class MemberResource(EncryptedFieldsResourceMixin, ModelResource):  # type: ignore[misc]
    class Meta:
        model = Member
        fields = ("name", "email")
        import_id_fields = ("email",)


def import_rows(*rows: list[Any]) -> Any:
    dataset = tablib.Dataset(*rows, headers=["name", "email"])
    return MemberResource().import_data(dataset, dry_run=False, raise_errors=False)


def test_import_computes_the_tag_and_finds_rows_by_the_source(members: dict[str, str]) -> None:
    result = import_rows(["m-carol", "carol@example.com"], ["m-bob-2", "BOB@example.com "])
    assert not result.has_validation_errors()
    assert not result.has_errors()
    # import_id_fields = ("email",): the existing row is found through the index and updated
    assert names(Member.objects.all()) == ["m-ann", "m-bob-2", "m-carol"]
    carol = Member.objects.get(email="carol@example.com")
    field = Member._meta.get_field("email_index")
    assert raw(Member, carol.pk, "email_index") == field.stored_for("carol@example.com")
    assert raw(Member, carol.pk, "email").startswith("enc:v1:")


def test_import_refuses_pasted_ciphertext(members: dict[str, str]) -> None:
    result = import_rows(["m-thief", members["bob"]])
    codes = [
        error.code
        for row in result.invalid_rows
        for errors in row.error.error_dict.values()
        for error in errors
    ]
    assert codes == ["ciphertext"]
    assert names(Member.objects.all()) == ["m-ann", "m-bob"]


# DRF's SearchFilter ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search_fields", "warned"),
    [(["=email", "email__exact"], 0), (["=token"], 1), (["email", "^email"], 2)],
)
def test_drf_search_through_the_index(
    members: dict[str, str], search_fields: list[str], warned: int
) -> None:
    from authhero_encrypt.integrations.drf import EncryptedFieldsSearchFilter

    view_class = type(
        "View",
        (generics.ListAPIView,),
        {
            "queryset": Member.objects.all(),
            "serializer_class": MemberSerializer,
            "filter_backends": [EncryptedFieldsSearchFilter],
            "search_fields": search_fields,
        },
    )
    found = [message.id for message in check_drf_views(views=[view_class])]
    assert found == ["authhero_encrypt.W502"] * warned
    view = view_class.as_view()
    response = view(APIRequestFactory().get("/", {"search": "BOB@example.com"}))
    assert names(response.data) == (["m-bob"] if not warned else ["m-ann", "m-bob"])
    response = view(APIRequestFactory().get("/", {"search": members["bob"]}))
    assert names(response.data) == ([] if not warned else ["m-ann", "m-bob"])


def test_all_fields_leave_the_tags_out(members: dict[str, str]) -> None:
    class Everything(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):  # type: ignore[type-arg]
        class Meta:
            model = Member
            fields = "__all__"

    shown = Everything(Member.objects.get(name="m-bob")).data
    assert sorted(shown) == ["id", "name"]  # the secrets write-only, and no tags
    assert "i1:" not in str(shown)


def test_the_admin_form_reports_a_duplicate_on_the_source(members: dict[str, str]) -> None:
    request = RequestFactory().post("/")
    request.user = User.objects.create_superuser("admin", "a@example.com", "pw")
    form_class = model_admin([]).get_form(request)
    form = form_class(data={"name": "x", "email": "bob@example.COM"})
    assert not form.is_valid()
    assert form.errors == {"email": ["Member with this Email already exists."]}
    form = form_class(data={"name": "x", "email": members["bob"]})
    assert not form.is_valid()
    assert [error.code for error in form.errors.as_data()["email"]] == ["ciphertext"]
    form = form_class(data={"name": "x", "email": "new@example.com"})
    assert form.is_valid(), form.errors
    assert raw(Member, form.save().pk, "email_index").startswith("i1:")
