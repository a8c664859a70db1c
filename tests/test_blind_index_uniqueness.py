"""Uniqueness through blind indexes: the constraints, and validation errors naming the source."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.test import override_settings
from django.test.utils import isolate_apps
from hypothesis import given, settings
from hypothesis import strategies as st

from authhero_encrypt.blind_index import BlindIndexField
from authhero_encrypt.crypto import encrypt_value
from authhero_encrypt.fields import EncryptedCharField
from authhero_encrypt.keys import get_keyring
from tests.indexapp.models import Account, Member
from tests.keys import INDEX_KEY_A, INDEX_KEY_B

pytestmark = pytest.mark.django_db

ROTATING = {
    "ENCRYPTION_INDEX_KEY": INDEX_KEY_B,
    "ENCRYPTION_INDEX_KEY_ID": "i2",
    "ENCRYPTION_INDEX_KEY_FALLBACKS": [f"i1:{INDEX_KEY_A}"],
}
DUPLICATE = "Member with this Email already exists."


class MemberForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = ["name", "email"]


class AccountForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = ["tenant", "email"]


def raw(model: type[models.Model], pk: Any, column: str) -> Any:
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]


def errors_of(call: Any) -> dict[str, list[tuple[str, str | None]]]:
    with pytest.raises(ValidationError) as caught:
        call()
    return {
        key: [(" ".join(message.messages), message.code) for message in messages]
        for key, messages in caught.value.error_dict.items()
    }


# unique=True -------------------------------------------------------------------------------


def test_full_clean_names_the_source_once() -> None:
    Member.objects.create(name="a", email="bob@example.com")
    duplicate = Member(name="b", email="  BOB@example.com")
    assert errors_of(duplicate.full_clean) == {"email": [(DUPLICATE, "unique")]}
    assert errors_of(duplicate.validate_unique) == {"email": [(DUPLICATE, "unique")]}
    Member(name="c", email="carol@example.com").full_clean()


def test_a_changed_instance_is_checked_by_its_new_value_and_not_against_itself() -> None:
    Member.objects.create(name="a", email="bob@example.com")
    other = Member.objects.create(name="b", email="ann@example.com")
    other.full_clean()  # its own row is no duplicate
    other.email = "Bob@Example.com"  # the loaded tag is ann's: Django's check would pass
    assert errors_of(other.full_clean) == {"email": [(DUPLICATE, "unique")]}


def test_model_form_reports_the_duplicate_instead_of_integrity_error() -> None:
    Member.objects.create(name="a", email="bob@example.com")
    form = MemberForm(data={"name": "b", "email": "bob@EXAMPLE.com"})
    assert not form.is_valid()
    assert form.errors.as_data()["email"][0].code == "unique"
    assert form.errors == {"email": [DUPLICATE]}
    form = MemberForm(data={"name": "c", "email": "carol@example.com"})
    assert form.is_valid()
    saved = form.save()
    assert raw(Member, saved.pk, "email_index").startswith("i1:")


def test_a_form_without_the_source_does_not_check_it() -> None:
    class NameForm(forms.ModelForm):
        class Meta:
            model = Member
            fields = ["name"]

    Member.objects.create(name="a", email="bob@example.com")
    duplicate = Member(email="bob@example.com")
    assert NameForm(data={"name": "b"}, instance=duplicate).is_valid()


def test_a_pasted_ciphertext_is_refused_and_finds_no_duplicate() -> None:
    Member.objects.create(name="a", email="bob@example.com")
    stored = raw(Member, Member.objects.get().pk, "email")
    form = MemberForm(data={"name": "b", "email": stored})
    assert not form.is_valid()
    assert [error.code for error in form.errors.as_data()["email"]] == ["ciphertext"]


def test_legacy_rows_are_duplicates_by_their_stored_plaintext() -> None:
    legacy = Member.objects.create(name="a", email="placeholder")
    table = connection.ops.quote_name(Member._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET email = %s, email_index = NULL, email_index_previous = NULL "
            "WHERE id = %s",
            ["bob@example.com", legacy.pk],
        )
    assert errors_of(Member(name="b", email="bob@example.com").full_clean) == {
        "email": [(DUPLICATE, "unique")]
    }


def test_rows_under_an_older_index_key_are_duplicates() -> None:
    Member.objects.create(name="a", email="bob@example.com")
    with override_settings(**ROTATING):
        assert errors_of(Member(name="b", email="bob@example.com").full_clean) == {
            "email": [(DUPLICATE, "unique")]
        }
        # and the database agrees during the change-over, through the previous column
        with pytest.raises(IntegrityError), transaction.atomic():
            Member.objects.create(name="b", email="bob@example.com")


def test_an_instance_holding_ciphertext_is_checked_by_its_plaintext() -> None:
    Member.objects.create(name="a", email="bob@example.com")
    sealed = encrypt_value("bob@example.com", get_keyring())
    # Assigned directly (a form would refuse it): the tag is computed from what it opens to.
    assert errors_of(Member(email=sealed).validate_unique) == {"email": [(DUPLICATE, "unique")]}


def test_an_override_calling_super_reports_once() -> None:
    Member.objects.create(name="a", email="bob@example.com")
    duplicate = Member(email="bob@example.com")
    # The wrapper guards against a nested call: the inner (Django's) check runs bare.
    assert errors_of(lambda: type(duplicate).validate_unique(duplicate)) == {
        "email": [(DUPLICATE, "unique")]
    }


# unique_with -------------------------------------------------------------------------------

PER_TENANT = "Account with this Tenant and Email already exists."


def test_unique_with_declares_constraints_over_both_columns() -> None:
    constraints = {
        constraint.name: constraint.fields
        for constraint in Account._meta.constraints
        if isinstance(constraint, models.UniqueConstraint)
    }
    assert constraints == {
        "indexapp_account_email_index_uniq": ("tenant", "email_index"),
        "indexapp_account_email_index_previous_uniq": ("tenant", "email_index_previous"),
    }
    previous = Account._meta.get_field("email_index_previous")
    assert not previous.unique
    assert not Account._meta.get_field("email_index").unique


def test_unique_with_is_enforced_by_the_database_through_a_change_over() -> None:
    Account.objects.create(tenant="t1", email="bob@example.com")
    Account.objects.create(tenant="t2", email="bob@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(tenant="t1", email=" BOB@example.com")
    with override_settings(**ROTATING):
        created = Account.objects.create(tenant="t3", email="bob@example.com")
        assert raw(Account, created.pk, "email_index").startswith("i2:")
        assert raw(Account, created.pk, "email_index_previous").startswith("i1:")
        with pytest.raises(IntegrityError), transaction.atomic():
            Account.objects.create(tenant="t1", email="bob@example.com")


def test_unique_with_validation_names_the_source() -> None:
    Account.objects.create(tenant="t1", email="bob@example.com")
    Account(tenant="t2", email="bob@example.com").full_clean()
    duplicate = Account(tenant="t1", email="Bob@example.com")
    expected = {NON_FIELD_ERRORS: [(PER_TENANT, "unique_together")]}
    assert errors_of(duplicate.full_clean) == expected
    assert errors_of(duplicate.validate_constraints) == expected
    duplicate.validate_unique()  # the constraint is validate_constraints' business
    with override_settings(**ROTATING):
        assert errors_of(duplicate.full_clean) == expected


def test_unique_with_model_form() -> None:
    Account.objects.create(tenant="t1", email="bob@example.com")
    form = AccountForm(data={"tenant": "t1", "email": "bob@example.com"})
    assert not form.is_valid()
    assert form.errors == {NON_FIELD_ERRORS: [PER_TENANT]}
    assert AccountForm(data={"tenant": "t2", "email": "bob@example.com"}).is_valid()


def test_bad_unique_with_fails_at_once() -> None:
    with pytest.raises(ValueError, match="give one of them"):
        BlindIndexField("email", unique=True, unique_with=["tenant"])
    with pytest.raises(ValueError, match="field names"):
        BlindIndexField("email", unique_with=[""])
    with pytest.raises(ValueError, match="truncated"):
        BlindIndexField("email", unique_with=["tenant"], bits=64)


@isolate_apps("tests.indexapp")
def test_unique_with_check_errors() -> None:
    class Scoped(models.Model):
        tenant = models.CharField(max_length=20)
        secret = EncryptedCharField(max_length=20)
        email = EncryptedCharField(max_length=20)
        email_index = BlindIndexField("email", unique_with=["secret", "missing"])

        class Meta:
            app_label = "indexapp"

        def __str__(self) -> str:
            return self.tenant

    found = [message.id for message in Scoped._meta.get_field("email_index").check()]
    assert found == ["authhero_encrypt.E420", "authhero_encrypt.E420"]


@isolate_apps("tests.indexapp")
def test_a_hand_made_constraint_over_an_index_is_warned() -> None:
    class Declared(models.Model):
        tenant = models.CharField(max_length=20)
        email = EncryptedCharField(max_length=20)
        email_index = BlindIndexField("email")

        class Meta:
            app_label = "indexapp"
            constraints = [
                models.UniqueConstraint(fields=["tenant", "email_index"], name="declared_uniq")
            ]

        def __str__(self) -> str:
            return self.tenant

    found = Declared._meta.get_field("email_index").check()
    assert [message.id for message in found] == ["authhero_encrypt.W421"]
    assert "'declared_uniq'" in found[0].msg
    assert "unique_with=('tenant',)" in str(found[0].hint)


@isolate_apps("tests.indexapp")
def test_unique_together_over_an_index_is_warned() -> None:
    class Together(models.Model):
        tenant = models.CharField(max_length=20)
        email = EncryptedCharField(max_length=20)
        email_index = BlindIndexField("email")

        class Meta:
            app_label = "indexapp"
            unique_together = [("tenant", "email_index")]

        def __str__(self) -> str:
            return self.tenant

    found = Together._meta.get_field("email_index").check()
    assert [message.id for message in found] == ["authhero_encrypt.W421"]
    assert Account._meta.get_field("email_index").check() == []


# AuthHero writes no tags -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "shared", "warned"),
    [
        ("clients", (), True),  # one of AuthHero's own tables
        ("indexapp_shared", ["indexapp_shared"], True),  # declared shared
        ("indexapp_shared", (), False),
    ],
)
@isolate_apps("tests.indexapp")
def test_an_index_on_a_table_authhero_writes_is_warned(
    table: str, shared: Any, warned: bool
) -> None:
    class Client(models.Model):
        client_secret = EncryptedCharField(max_length=200)
        secret_index = BlindIndexField("client_secret")

        class Meta:
            app_label = "indexapp"
            db_table = table

        def __str__(self) -> str:
            return "client"

    with override_settings(ENCRYPTION_AUTHHERO_TABLES=shared):
        messages = Client._meta.get_field("secret_index").check()
    assert [message.id for message in messages] == (["authhero_encrypt.W430"] if warned else [])
    if warned:
        assert "encryption_migrate" in str(messages[0].hint)


@isolate_apps("tests.indexapp")
def test_a_json_path_source_is_compared_by_its_tags() -> None:
    from authhero_encrypt.blind_index.uniqueness import _lookups
    from authhero_encrypt.fields import JSONPathEncryptedField

    class Document(models.Model):
        options = JSONPathEncryptedField(encrypted_paths=["client_secret"], default=dict)
        secret_index = BlindIndexField("options__client_secret", unique=True)

        class Meta:
            app_label = "indexapp"

        def __str__(self) -> str:
            return "document"

    index = Document._meta.get_field("secret_index")
    assert _lookups(Document(options={"client_secret": "s3"}), index) == {
        "secret_index__in": index.match_tags("s3")
    }
    assert _lookups(Document(options={}), index) is None


# Against a plaintext unique column ---------------------------------------------------------

_TEXT = st.text(alphabet="aAsSß é", max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(_TEXT, max_size=6),
    legacy=st.lists(_TEXT, max_size=2),
    probe=_TEXT,
    rotating=st.booleans(),
)
def test_validation_answers_as_a_unique_normalized_column(
    values: list[str], legacy: list[str], probe: str, rotating: bool
) -> None:
    """full_clean() finds a duplicate exactly when a unique column of normalized plaintext
    would hold one, or when a legacy row (no tag) holds the probe's exact text, and the
    database refuses exactly the tagged duplicates; under one index key or during a change-over.
    """

    def normal(text: str) -> str:
        return text.strip().casefold()

    with transaction.atomic():
        taken: set[str] = set()
        for value in values:
            if normal(value) not in taken:
                taken.add(normal(value))
                Member.objects.create(name="v", email=value)
        table = connection.ops.quote_name(Member._meta.db_table)
        for text in legacy:
            planted = Member.objects.create(name="legacy")
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET email = %s WHERE id = %s", [text, planted.pk])
        with override_settings(**(ROTATING if rotating else {})):
            candidate = Member(name="p", email=probe)
            if normal(probe) in taken or probe in legacy:
                assert errors_of(candidate.full_clean) == {"email": [(DUPLICATE, "unique")]}
            else:
                candidate.full_clean()
            if normal(probe) in taken:
                with pytest.raises(IntegrityError), transaction.atomic():
                    Member.objects.create(name="p", email=probe)
            else:
                Member.objects.create(name="p", email=probe)
        transaction.set_rollback(True)
