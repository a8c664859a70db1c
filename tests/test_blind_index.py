"""Blind indexes: every write sets the tag, equality lookups answer through it, under every key."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from django.core import serializers
from django.core.exceptions import FieldError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.test import override_settings

from authhero_encrypt.blind_index import BlindIndexField
from authhero_encrypt.crypto import encrypt_value
from authhero_encrypt.keys import get_keyring
from tests.blind_index_helpers import index_subkey, raw_value
from tests.indexapp.models import Member
from tests.keys import INDEX_KEY_A, INDEX_KEY_B

pytestmark = pytest.mark.django_db

# The change-over: i2 active, i1 still matched (and the oldest, so unique indexes keep it).
ROTATING = {
    "ENCRYPTION_INDEX_KEY": INDEX_KEY_B,
    "ENCRYPTION_INDEX_KEY_ID": "i2",
    "ENCRYPTION_INDEX_KEY_FALLBACKS": [f"i1:{INDEX_KEY_A}"],
}
ROTATED = {
    "ENCRYPTION_INDEX_KEY": INDEX_KEY_B,
    "ENCRYPTION_INDEX_KEY_ID": "i2",
    "ENCRYPTION_INDEX_KEY_FALLBACKS": [],
}


def expected_tag(key_text: str, key_id: str, label: str, normalized: str) -> str:
    """The tag, computed here from the documented recipe, independently of the package."""
    subkey = index_subkey(key_text, label)
    return f"{key_id}:{hmac.new(subkey, normalized.encode(), hashlib.sha256).hexdigest()}"


def raw(pk: Any, column: str) -> Any:
    return raw_value(Member, pk, column)


def plant_legacy(pk: Any, column: str, value: str) -> None:
    """Store plaintext with no tag, as a row written before encryption and the index."""
    table = connection.ops.quote_name(Member._meta.db_table)
    col = connection.ops.quote_name(column)
    index = connection.ops.quote_name(f"{column}_index")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {col} = %s, {index} = NULL WHERE id = %s", [value, pk])


def names(queryset: Any) -> list[str]:
    return sorted(queryset.values_list("name", flat=True))


# Writes ------------------------------------------------------------------------------------


def test_save_stores_the_documented_tag_and_ciphertext() -> None:
    member = Member.objects.create(name="a", email="  Bob@Example.COM ", token="t-1")
    label = "indexapp.member.email.email_index"
    tag = expected_tag(INDEX_KEY_A, "i1", label, "bob@example.com")
    assert raw(member.pk, "email_index") == tag
    assert raw(member.pk, "email_index_previous") == tag
    assert raw(member.pk, "email").startswith("enc:v1:")
    assert raw(member.pk, "token_index") == expected_tag(
        INDEX_KEY_A, "i1", "indexapp.member.token.token_index", "t-1"
    )


def test_two_indexes_of_one_value_never_share_tags() -> None:
    member = Member.objects.create(name="a", email="same", token="same")
    assert raw(member.pk, "email_index") != raw(member.pk, "token_index")


def test_none_leaves_the_tag_empty() -> None:
    member = Member.objects.create(name="a")
    assert raw(member.pk, "email_index") is None


def test_bulk_create_update_and_bulk_update_set_the_tag() -> None:
    _one, _two = Member.objects.bulk_create([Member(name="1", email="x@a"), Member(name="2")])
    pks = list(Member.objects.order_by("pk").values_list("pk", flat=True))
    assert raw(pks[0], "email_index") == Member.objects.get(pk=pks[0]).email_index
    Member.objects.filter(pk=pks[1]).update(email="Y@a")
    assert names(Member.objects.filter(email="y@a")) == ["2"]
    members = list(Member.objects.order_by("pk"))
    members[0].email, members[1].email = "p@a", "q@a"
    Member.objects.bulk_update(members, ["email"])
    assert names(Member.objects.filter(email="p@a")) == ["1"]
    assert names(Member.objects.filter(email="q@a")) == ["2"]
    assert names(Member.objects.filter(email="x@a")) == []
    assert raw(pks[1], "email_index_previous") == raw(pks[1], "email_index")


def test_update_to_none_clears_the_tag() -> None:
    member = Member.objects.create(name="a", email="x@a")
    Member.objects.filter(pk=member.pk).update(email=None)
    assert raw(member.pk, "email_index") is None


def test_the_index_is_never_set_by_hand() -> None:
    member = Member.objects.create(name="a", email="x@a")
    with pytest.raises(FieldError, match="computed from"):
        Member.objects.filter(pk=member.pk).update(email_index="i1:00")
    # Beside its source, a value given for it is replaced by the computed one.
    Member.objects.filter(pk=member.pk).update(email="z@a", email_index="i1:00")
    assert names(Member.objects.filter(email="z@a")) == ["a"]


def test_save_update_fields_with_the_source_alone_is_refused() -> None:
    member = Member.objects.create(name="a", email="x@a")
    member.email = "y@a"
    with pytest.raises(FieldError, match="stale"):
        member.save(update_fields=["email"])
    member.save(update_fields=["email", "email_index", "email_index_previous"])
    assert names(Member.objects.filter(email="y@a")) == ["a"]


def test_upsert_updates_the_tag() -> None:
    member = Member.objects.create(name="a", email="x@a")
    # MySQL and MariaDB take no conflict target (ON DUPLICATE KEY UPDATE).
    target = {"unique_fields": ["id"]} if connection.vendor != "mysql" else {}
    Member.objects.bulk_create(
        [Member(pk=member.pk, name="a", email="new@a")],
        update_conflicts=True,
        update_fields=["email"],
        **target,
    )
    assert names(Member.objects.filter(email="new@a")) == ["a"]
    assert names(Member.objects.filter(email="x@a")) == []


def test_loaddata_recomputes_the_tag() -> None:
    member = Member.objects.create(name="a", email="x@a")
    dumped = serializers.serialize("json", Member.objects.all())
    Member.objects.all().delete()
    forged = dumped.replace(member.email_index, "i1:" + "0" * 64)
    for obj in serializers.deserialize("json", forged):
        obj.save()
    assert names(Member.objects.filter(email="x@a")) == ["a"]


def test_a_unique_index_refuses_equal_plaintexts() -> None:
    Member.objects.create(name="a", email="x@a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.create(name="b", email=" X@A")


# Queries -----------------------------------------------------------------------------------


@pytest.fixture
def members() -> None:
    Member.objects.create(name="bob", email="Bob@Example.com", phone="+1 (555) 010-9999", token="T")
    Member.objects.create(name="ann", email="ann@example.com", phone="5550100000", token="t")
    Member.objects.create(name="nil")


def test_equality_lookups(members: None) -> None:
    assert names(Member.objects.filter(email="bob@example.com")) == ["bob"]
    assert names(Member.objects.filter(email__iexact="BOB@example.com")) == ["bob"]
    assert names(Member.objects.filter(phone="15550109999")) == ["bob"]
    assert names(Member.objects.filter(token="T")) == ["bob"]
    assert names(Member.objects.filter(token="t")) == ["ann"]
    assert names(Member.objects.filter(email__in=["ann@example.com", "bob@example.com"])) == [
        "ann",
        "bob",
    ]
    assert names(Member.objects.exclude(email="ann@example.com")) == ["bob", "nil"]
    assert names(Member.objects.filter(Q(token="T") | Q(email="ann@example.com"))) == ["ann", "bob"]
    assert names(Member.objects.filter(~Q(token="T") & Q(name__startswith="a"))) == ["ann"]
    assert names(Member.objects.filter(email=None)) == ["nil"]
    assert names(Member.objects.filter(email__in=[])) == []
    assert Member.objects.filter(email="nobody@example.com").count() == 0


def test_iexact_without_a_case_folding_index_is_refused(members: None) -> None:
    with pytest.raises(FieldError):
        Member.objects.filter(token__iexact="t")


def test_get_or_create_and_update_or_create(members: None) -> None:
    found, created = Member.objects.get_or_create(email="BOB@example.com", defaults={"name": "x"})
    assert (found.name, created) == ("bob", False)
    made, created = Member.objects.get_or_create(email="new@example.com", defaults={"name": "new"})
    assert created
    assert raw(made.pk, "email_index") is not None
    Member.objects.update_or_create(
        email="new@example.com", defaults={"email": "newer@example.com"}
    )
    assert names(Member.objects.filter(email="newer@example.com")) == ["new"]


def test_a_pasted_ciphertext_matches_nothing(members: None) -> None:
    stored = raw(Member.objects.get(name="bob").pk, "email")
    plant_legacy(Member.objects.get(name="ann").pk, "email", "ann@example.com")
    assert names(Member.objects.filter(email=stored)) == []
    assert names(Member.objects.filter(email__in=[stored, encrypt_value("ann@example.com")])) == []


def test_expressions_on_the_right_are_refused(members: None) -> None:
    from django.db.models import F

    with pytest.raises(FieldError, match="plain values only"):
        list(Member.objects.filter(email=F("name")))
    with pytest.raises(FieldError, match="plain values only"):
        list(Member.objects.filter(email__in=Member.objects.values("email")))


def test_legacy_rows_match_by_their_stored_plaintext(members: None) -> None:
    ann = Member.objects.get(name="ann")
    plant_legacy(ann.pk, "token", "legacy-token")
    assert raw(ann.pk, "token_index") is None
    assert names(Member.objects.filter(token="legacy-token")) == ["ann"]
    assert names(Member.objects.exclude(token="legacy-token")) == ["bob", "nil"]
    with override_settings(ENCRYPTION_REJECT_PLAINTEXT=True):
        assert names(Member.objects.filter(token="legacy-token").values("name")) == []


def test_rows_are_found_under_every_configured_key(members: None) -> None:
    with override_settings(**ROTATING):
        carol = Member.objects.create(name="carol", email="carol@example.com")
        assert raw(carol.pk, "email_index").startswith("i2:")
        assert raw(carol.pk, "email_index_previous").startswith("i1:")
        assert names(Member.objects.filter(email="bob@example.com")) == ["bob"]
        assert names(Member.objects.filter(email="carol@example.com")) == ["carol"]
        # The old key's column still covers every row: a duplicate is refused mid-rotation.
        with pytest.raises(IntegrityError), transaction.atomic():
            Member.objects.create(name="bob2", email="bob@example.com")
    with override_settings(**ROTATED):
        assert names(Member.objects.filter(email="carol@example.com")) == ["carol"]
        assert names(Member.objects.filter(email="bob@example.com")) == []  # until migrated


def test_the_index_key_is_never_an_encryption_key_and_never_in_a_repr() -> None:
    from authhero_encrypt.blind_index.keys import get_index_keyring

    ring = get_index_keyring()
    assert INDEX_KEY_A not in repr(ring)
    assert ring.active is not None
    assert ring.active.id == "i1"
    assert get_keyring().active is not None


def test_bad_arguments_fail_at_once() -> None:
    with pytest.raises(ValueError, match="Unknown normalizer"):
        BlindIndexField("email", normalize=["upper"])
    with pytest.raises(ValueError, match="lambda"):
        BlindIndexField("email", normalize=[lambda v: v])
    with pytest.raises(ValueError, match="truncated"):
        BlindIndexField("email", unique=True, bits=64)
    with pytest.raises(ValueError, match="multiple of 8"):
        BlindIndexField("email", bits=100)
