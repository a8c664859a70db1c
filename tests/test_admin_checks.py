"""The admin system checks (W201-E205), on throwaway admin sites so no message leaks out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.sites import all_sites
from django.contrib.auth.models import User
from django.core import checks
from django.db import models
from django.test.utils import isolate_apps

from authhero_encrypt.admin import EncryptedFieldsAdminMixin, JSONKeyColumn
from authhero_encrypt.admin.checks import check_admin_secrets
from authhero_encrypt.fields import EncryptedCharField, JSONPathEncryptedField
from example_project.authhero import models as demo


@contextmanager
def throwaway_site(model: type[models.Model], admin_class: type[admin.ModelAdmin]) -> Iterator[Any]:
    """An AdminSite with one registration, dropped from ``all_sites`` afterwards.

    Every AdminSite joins ``all_sites`` until it is garbage collected, and the checks of every
    later ``manage.py check`` in the run would see it.
    """
    site = admin.AdminSite(name="checks")
    site.register(model, admin_class)
    try:
        yield site
    finally:
        all_sites.discard(site)


def _warnings(admin_class: type[admin.ModelAdmin], model: type[models.Model]) -> list[str]:
    with throwaway_site(model, admin_class) as site:
        return [message.id for message in check_admin_secrets(sites=[site])]


def admin_class(name: str, *bases: type, **options: Any) -> type[admin.ModelAdmin]:
    return type(name, (*bases, admin.ModelAdmin), {"__module__": __name__, **options})


def test_registered_admins_pass_the_checks():
    assert check_admin_secrets(sites=[admin.site]) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"search_fields": ["client_secret"]}, ["authhero_encrypt.W201"]),
        ({"search_fields": ["^client_secret"]}, ["authhero_encrypt.W201"]),
        ({"search_fields": ["client_id"]}, []),
        ({"list_filter": ["client_secret"]}, ["authhero_encrypt.E202"]),
        (
            {"list_filter": [("client_secret", admin.EmptyFieldListFilter)]},
            ["authhero_encrypt.E202"],
        ),
        ({"ordering": ["-client_secret"]}, ["authhero_encrypt.E203"]),
        ({"ordering": [models.F("client_secret").desc()]}, ["authhero_encrypt.E203"]),
        ({"ordering": ["client_id", "?"]}, []),
    ],
)
def test_admin_checks_on_a_scalar_field(options, expected):
    cls = admin_class("ClientCheckAdmin", EncryptedFieldsAdminMixin, **options)
    assert _warnings(cls, demo.Client) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"search_fields": ["options__client_id"]}, []),
        ({"search_fields": ["options__client_secret"]}, ["authhero_encrypt.W201"]),
        ({"search_fields": ["options__configuration__client_secret"]}, ["authhero_encrypt.W201"]),
        ({"search_fields": ["options__configuration__issuer"]}, []),
        ({"search_fields": ["options"]}, ["authhero_encrypt.W201"]),
        ({"list_filter": ["options__app_secret"]}, ["authhero_encrypt.E202"]),
        ({"list_filter": ["options"]}, ["authhero_encrypt.E202"]),
        ({"list_filter": ["strategy", "options__client_id"]}, []),
        # A parent of an encrypted path holds its ciphertext (or a legacy plaintext).
        ({"search_fields": ["options__configuration"]}, ["authhero_encrypt.W201"]),
        ({"list_filter": ["options__configuration"]}, ["authhero_encrypt.E202"]),
        ({"ordering": ["-options__configuration"]}, ["authhero_encrypt.E203"]),
        (
            {"list_display": ["name", JSONKeyColumn("options", "configuration")]},
            ["authhero_encrypt.E203"],
        ),
        ({"ordering": ["options__configuration__issuer"]}, []),
        ({"ordering": ["options__twilio_token"]}, ["authhero_encrypt.E203"]),
        (
            {"list_display": ["name", JSONKeyColumn("options", "client_secret")]},
            ["authhero_encrypt.E203"],
        ),
        ({"list_display": ["name", JSONKeyColumn("options", "client_id")]}, []),
    ],
)
def test_admin_checks_on_json_paths(options, expected):
    cls = admin_class("ConnectionCheckAdmin", EncryptedFieldsAdminMixin, **options)
    assert _warnings(cls, demo.Connection) == expected


def test_admin_check_follows_relations_and_wildcards():
    with isolate_apps("tests.testapp"):

        class Owner(models.Model):  # noqa: DJ008
            secret = EncryptedCharField(max_length=10)
            settings = JSONPathEncryptedField(encrypted_paths=["*"], default=dict)

            class Meta:
                app_label = "testapp"

        class Pet(models.Model):  # noqa: DJ008
            owner = models.ForeignKey(Owner, on_delete=models.CASCADE)

            class Meta:
                app_label = "testapp"

        options = {"search_fields": ["owner__secret", "owner__settings__anything", "owner__id"]}
        assert _warnings(admin_class("PetAdmin", **options), Pet) == ["authhero_encrypt.W201"] * 2


def test_list_filter_check_is_an_error_that_names_the_fix():
    cls = admin_class("ClientFilterAdmin", EncryptedFieldsAdminMixin, list_filter=["client_secret"])
    with throwaway_site(demo.Client, cls) as site:
        (message,) = check_admin_secrets(sites=[site])
    assert message.level == checks.ERROR
    assert "decrypted secrets" in message.msg
    assert "leaves the filter out" in message.msg
    assert "Remove it from list_filter" in (message.hint or "")


def test_admin_check_on_list_display_lookups_through_relations():
    with isolate_apps("tests.testapp"):

        class Owner(models.Model):  # noqa: DJ008
            secret = EncryptedCharField(max_length=10)
            settings = JSONPathEncryptedField(encrypted_paths=["client_secret"], default=dict)
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "testapp"

        class Pet(models.Model):  # noqa: DJ008
            owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="pets")
            chip = EncryptedCharField(max_length=10)

            class Meta:
                app_label = "testapp"

        display = ["owner__secret", "owner__settings", "owner__name", "owner__settings__x"]
        # Without the mixin the two columns reaching secrets are also sortable (E203).
        assert _warnings(admin_class("PetAdmin", list_display=display), Pet) == [
            "authhero_encrypt.E203",
            "authhero_encrypt.E203",
            "authhero_encrypt.W204",
            "authhero_encrypt.E205",
            "authhero_encrypt.E205",
        ]
        sortable_by: dict[str, Any] = {"list_display": display, "sortable_by": ["owner__name"]}
        assert "authhero_encrypt.E203" not in _warnings(admin_class("PetAdmin", **sortable_by), Pet)
        # With the mixin they are status badges.
        mixin = admin_class("PetAdmin", EncryptedFieldsAdminMixin, list_display=display)
        assert _warnings(mixin, Pet) == []
        # Through a to-many relation the admin reaches a manager, which shows no value, but
        # the column still sorts by the secret.
        assert _warnings(admin_class("OwnerAdmin", list_display=["pets__chip"]), Owner) == [
            "authhero_encrypt.E203",
            "authhero_encrypt.W204",
        ]


def test_admin_without_the_mixin_is_reported():
    assert _warnings(admin_class("PlainClientAdmin"), demo.Client) == ["authhero_encrypt.W204"]
    # An envelope field is an encrypted field too: without the mixin its page shows the PEM.
    assert _warnings(admin_class("PlainKeyAdmin"), demo.SigningKey) == ["authhero_encrypt.W204"]
    assert _warnings(admin_class("PlainUserAdmin"), User) == []


def test_admin_check_is_registered():
    plain = admin_class("PlainClientAdmin")
    with throwaway_site(demo.Client, plain):
        messages = checks.run_checks(tags=[checks.Tags.admin])
    assert [m.id for m in messages if m.obj is plain] == ["authhero_encrypt.W204"]


def _messages(admin_class: type[admin.ModelAdmin], model: type[models.Model]) -> list[Any]:
    with throwaway_site(model, admin_class) as site:
        return [m for m in check_admin_secrets(sites=[site]) if m.id == "authhero_encrypt.E203"]


@pytest.mark.parametrize(
    ("options", "named", "fix"),
    [
        ({"ordering": ["client_secret"]}, "ordering of", "Remove it from ordering"),
        (
            {"list_display": ["client_id", "client_secret"]},
            "sortable list_display of",
            "Add authhero_encrypt.admin.EncryptedFieldsAdminMixin",
        ),
    ],
)
def test_e203_names_the_option_that_triggers_it_and_the_fix(options, named, fix):
    """A converted field listed in list_display: the message says list_display, not ordering,
    and the hint names the mixin (and sortable_by)."""
    (message,) = _messages(admin_class("WebhookAdmin", **options), demo.Client)
    assert str(message.msg).startswith(f"{named} WebhookAdmin has 'client_secret'")
    assert fix in (message.hint or "")
    if "list_display" in options:
        assert "sortable_by" in (message.hint or "")
        assert "ordering" not in str(message.msg)


def test_e203_for_admin_order_field_names_the_column_option():
    def secret(obj: Any) -> str:
        return "x"

    secret.admin_order_field = "client_secret"  # type: ignore[attr-defined]
    options = {"list_display": ["client_id", "secret"], "secret": staticmethod(secret)}
    hook_admin = admin_class("HookAdmin", EncryptedFieldsAdminMixin, **options)
    (message,) = _messages(hook_admin, demo.Client)
    expected = "the admin_order_field of a list_display column of HookAdmin"
    assert str(message.msg).startswith(expected)
    assert "admin_order_field" in (message.hint or "")
