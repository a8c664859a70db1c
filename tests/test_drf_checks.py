"""Checks W501-E506: DRF views whose ordering, search or filters reach encrypted data."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core import checks
from django.test import override_settings
from django_filters import rest_framework as django_filters
from rest_framework import filters, generics, serializers

from authhero_encrypt.integrations.drf import (
    EncryptedFieldsOrderingFilter,
    EncryptedFieldsSerializerMixin,
)
from authhero_encrypt.integrations.drf.filtersets import (
    EncryptedFieldsFilterBackend,
    EncryptedFieldsFilterSet,
)
from authhero_encrypt.integrations.drf_checks import check_drf_settings, check_drf_views
from tests import drf_urls
from tests.testapp.models import Connection, Secret


def ids(views):
    return sorted(message.id for message in check_drf_views(views=views))


def view(model=Secret, serializer=drf_urls.SecretSerializer, **attrs):
    attrs.setdefault("filter_backends", [])
    return type(
        "View",
        (generics.ListAPIView,),
        {"queryset": model.objects.all(), "serializer_class": serializer, **attrs},
    )


def test_the_safe_views_pass():
    safe = [value for name, value in vars(drf_urls).items() if name.startswith("Safe")]
    assert len(safe) == 7
    assert ids([*safe, drf_urls.ReadableSecret]) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PlainOrdering", ["authhero_encrypt.W501"]),
        ("PlainSearch", ["authhero_encrypt.W502"]),
        ("PlainFilterFields", ["authhero_encrypt.W503"]),
        ("PlainFilterSet", ["authhero_encrypt.W504"]),
        ("PlainSerializer", ["authhero_encrypt.W505", "authhero_encrypt.W505"]),
    ],
)
def test_each_plain_view_is_reported(name, expected):
    found = check_drf_views(views=[getattr(drf_urls, name)])
    assert sorted(message.id for message in found) == expected
    for message in found:
        assert message.obj is getattr(drf_urls, name)
        assert "encrypted" in message.msg


def test_the_urlconf_is_walked():
    with override_settings(ROOT_URLCONF="tests.drf_urls"):
        found = check_drf_views()
    assert {m.obj.__name__ for m in found} == {
        "PlainOrdering",
        "PlainSearch",
        "PlainFilterFields",
        "PlainFilterSet",
        "PlainSerializer",
    }
    # Registered: manage.py check runs it.
    with override_settings(ROOT_URLCONF="tests.drf_urls"):
        found = checks.run_checks(tags=[checks.Tags.urls])
    assert "authhero_encrypt.W501" in [m.id for m in found]


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"ordering_fields": "__all__"}, 2),  # token and notes
        ({"ordering_fields": ["label", ("token", "Token")]}, 1),
        ({"ordering": "-notes", "ordering_fields": ["label"]}, 1),
        ({"ordering": ["label"]}, 0),  # the default: the mixin makes secrets write-only
    ],
)
def test_ordering_options(attrs, expected):
    found = ids([view(filter_backends=[filters.OrderingFilter], **attrs)])
    assert found == ["authhero_encrypt.W501"] * expected


def test_ordering_defaults_of_the_safe_filter_are_not_reported_but_listed_names_are():
    backends = [EncryptedFieldsOrderingFilter]
    assert ids([view(filter_backends=backends, ordering_fields="__all__")]) == []
    assert ids([view(Connection, drf_urls.ConnectionSerializer, filter_backends=backends)]) == []
    listed = view(filter_backends=backends, ordering_fields=["token"])
    assert ids([listed]) == ["authhero_encrypt.W501"]


@pytest.mark.parametrize(
    ("search_fields", "expected"),
    [
        (["^token"], 1),
        (["=notes", "label"], 1),
        (["label"], 0),
    ],
)
def test_search_fields(search_fields, expected):
    found = ids([view(filter_backends=[filters.SearchFilter], search_fields=search_fields)])
    assert found == ["authhero_encrypt.W502"] * expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (["token"], 1),
        ({"token": ["exact", "isnull"], "label": ["icontains"]}, 1),  # isnull is fine
        ("__all__", 2),
    ],
)
def test_filterset_fields(fields, expected):
    backend = [django_filters.DjangoFilterBackend]
    found = ids([view(filter_backends=backend, filterset_fields=fields)])
    assert found == ["authhero_encrypt.W503"] * expected


def test_filterset_fields_all_with_the_safe_backend_is_not_reported():
    backend = [EncryptedFieldsFilterBackend]
    assert ids([view(filter_backends=backend, filterset_fields="__all__")]) == []


def test_json_paths_in_declared_filters():
    class Options(django_filters.FilterSet):
        client_id = django_filters.CharFilter(field_name="options__client_id")
        secret = django_filters.CharFilter(field_name="options__configuration__client_secret")
        whole = django_filters.CharFilter(field_name="options__configuration")
        present = django_filters.CharFilter(field_name="options", lookup_expr="has_key")

        class Meta:
            model = Connection
            fields = ["name"]

    backend = [django_filters.DjangoFilterBackend]
    found = check_drf_views(
        views=[
            view(
                Connection,
                drf_urls.ConnectionSerializer,
                filter_backends=backend,
                filterset_class=Options,
            )
        ]
    )
    assert [m.id for m in found] == ["authhero_encrypt.W504"] * 2
    assert "'configuration.client_secret'" in found[0].msg
    assert "holds encrypted paths" in found[1].msg


@pytest.mark.parametrize(
    ("base", "fields", "expected"),
    [
        # django-filter builds exact filters on token and notes that the database cannot answer.
        (django_filters.FilterSet, "__all__", 2),
        (EncryptedFieldsFilterSet, "__all__", 0),  # it leaves them out
        (EncryptedFieldsFilterSet, ["label", "token"], 1),  # listed: reported all the same
    ],
)
def test_filterset_meta_fields(base, fields, expected):
    meta = type("Meta", (), {"model": Secret, "fields": fields})
    filterset = type("Secrets", (base,), {"Meta": meta})
    backend = [django_filters.DjangoFilterBackend]
    found = ids([view(filter_backends=backend, filterset_class=filterset)])
    assert found == ["authhero_encrypt.W504"] * expected


def test_a_readable_secret_without_the_mixin_but_not_with_it():
    class Plain(serializers.ModelSerializer):
        class Meta:
            model = Connection
            fields = ["name", "options"]

    class OptedIn(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
        class Meta:
            model = Connection
            fields = ["name", "options"]
            readable_secrets = ["options"]

    assert ids([view(Connection, Plain)]) == ["authhero_encrypt.W505"]
    assert ids([view(Connection, OptedIn)]) == []


def test_e506_when_a_setting_names_an_integration_class_that_cannot_load():
    config = {"DEFAULT_FILTER_BACKENDS": ["authhero_encrypt.integrations.drf.NoSuchFilter"]}
    with override_settings(REST_FRAMEWORK=config):
        found = check_drf_settings()
    assert [m.id for m in found] == ["authhero_encrypt.E506"]
    assert "pip install djangorestframework django-filter" in found[0].hint
    with override_settings(REST_FRAMEWORK={"DEFAULT_FILTER_BACKENDS": []}):
        assert check_drf_settings() == []


@pytest.mark.parametrize(
    ("blocked", "module"),
    [
        ("rest_framework", "authhero_encrypt.integrations.drf"),
        ("django_filters", "authhero_encrypt.integrations.drf.filtersets"),
    ],
)
def test_a_missing_package_names_the_extra(blocked, module):
    code = (
        f"import sys; sys.modules[{blocked!r}] = None\n"
        "import django; from django.conf import settings; settings.configure(); django.setup()\n"
        f"import {module}"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "what the package's drf extra installs" in result.stderr


def test_without_the_packages_the_checks_run_and_find_nothing():
    """The app config registers the checks always; without DRF (a wheel without the extra)
    manage.py check still runs."""
    code = (
        "import sys; sys.modules['rest_framework'] = None; sys.modules['django_filters'] = None\n"
        "import django; from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes',"
        " 'django.contrib.auth', 'authhero_encrypt'], ENCRYPTION_KEY=None,"
        " ROOT_URLCONF='__main__')\n"
        "urlpatterns = []\n"
        "django.setup()\n"
        "from authhero_encrypt.integrations.drf_checks import check_drf_views\n"
        "assert check_drf_views() == []\n"
        "from django.core.management import call_command; call_command('check')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
