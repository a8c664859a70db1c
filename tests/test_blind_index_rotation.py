"""Blind index rotation and status: ``encryption_migrate`` fills and moves tags, and
``encryption_status`` counts them; every step asserted on the raw columns."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from authhero_encrypt.blind_index.status import IndexTally
from authhero_encrypt.migrate import migrate
from authhero_encrypt.rotation import Outcome
from authhero_encrypt.status import status
from tests.indexapp.models import Connection, Member
from tests.keys import INDEX_KEY_A, INDEX_KEY_B
from tests.test_blind_index import ROTATED, ROTATING, expected_tag, names, raw

pytestmark = pytest.mark.django_db

EMAIL = "indexapp.member.email.email_index"
PHONE = "indexapp.member.phone.phone_index"
SECRET = "indexapp.connection.options__client_secret.secret_index"
KEYS = {"i1": INDEX_KEY_A, "i2": INDEX_KEY_B}


def email_tag(key_id: str, email: str) -> str:
    return expected_tag(KEYS[key_id], key_id, EMAIL, email.strip().casefold())


def set_raw(model: Any, pk: Any, **columns: Any) -> None:
    """Write columns as they are, past every field (AuthHero, or a row from before the index)."""
    quote = connection.ops.quote_name
    sets = ", ".join(f"{quote(column)} = %s" for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(model._meta.db_table)} SET {sets} WHERE id = %s",
            [*columns.values(), pk],
        )


def exit_code(command: str, *args: str, **options: Any) -> int:
    try:
        call_command(command, "indexapp", *args, stdout=StringIO(), **options)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def tallies() -> dict[str, IndexTally]:
    return {t.index.name: t for t in status(["indexapp.Member"]).indexes}


def assert_tags(pks: dict[str, Any], main: str, previous: str) -> None:
    for email, pk in pks.items():
        assert raw(pk, "email_index") == email_tag(main, email), email
        assert raw(pk, "email_index_previous") == email_tag(previous, email), email


def assert_queries(pks: dict[str, Any]) -> None:
    for email, pk in pks.items():
        assert list(Member.objects.filter(email=email).values_list("pk", flat=True)) == [pk]
        assert Member.objects.get(email=f"  {email.upper()} ").pk == pk
    wanted = sorted(pks.values())
    assert sorted(Member.objects.filter(email__in=list(pks)).values_list("pk", flat=True)) == wanted
    assert not Member.objects.exclude(email__in=list(pks)).filter(pk__in=wanted).exists()


def assert_duplicate_refused(email: str) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.create(name="dup", email=email.upper())


# Missing tags ------------------------------------------------------------------------------


def test_missing_tags_are_filled_for_ciphertext_and_legacy_plaintext() -> None:
    written = Member.objects.create(name="authhero", email="a@x", phone="+1 555")
    legacy = Member.objects.create(name="legacy")
    # AuthHero writes ciphertext and no tag; a row from before encryption holds plaintext.
    set_raw(Member, written.pk, email_index=None, email_index_previous=None, phone_index=None)
    set_raw(Member, legacy.pk, email="B@x", phone="555-0101")
    conn = Connection.objects.create(name="c", options={"client_secret": "s3cret", "n": 1})
    set_raw(Connection, conn.pk, secret_index=None)

    before = tallies()
    assert (before["email_index"].missing, before["email_index"].filled) == (2, 0)
    assert before["email_index_previous"].missing == 2
    assert before["phone_index"].missing == 2
    assert exit_code("encryption_status", check=True) == 1
    assert exit_code("encryption_migrate", check=True) == 1
    # Until they are tagged the legacy row is found by its plaintext, the other one not at all.
    assert names(Member.objects.filter(email="B@x")) == ["legacy"]
    assert names(Member.objects.filter(email="a@x")) == []

    dry = migrate(["indexapp"], dry_run=True)
    assert dry.index_totals()["tags"]["filled"] == 7  # 2 x email, previous, phone; 1 secret
    assert raw(written.pk, "email_index") is None  # a dry run writes nothing

    report = migrate(["indexapp"])
    assert report.ok, report.problems()
    assert report.index_totals()["written"] == 5  # rows, per indexed field: 2 + 2 + 1
    assert raw(written.pk, "email_index") == email_tag("i1", "a@x")
    assert raw(legacy.pk, "email_index") == email_tag("i1", "b@x")
    assert raw(legacy.pk, "email_index_previous") == email_tag("i1", "b@x")
    assert raw(legacy.pk, "phone_index") == expected_tag(INDEX_KEY_A, "i1", PHONE, "5550101")
    assert raw(legacy.pk, "email").startswith("enc:v1:")  # and the value pass encrypted it
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_index FROM indexapp_connection WHERE id = %s", [conn.pk])
        assert cursor.fetchone()[0] == expected_tag(INDEX_KEY_A, "i1", SECRET, "s3cret")
    assert names(Member.objects.filter(email="b@x")) == ["legacy"]
    assert names(Member.objects.filter(email="A@X")) == ["authhero"]

    after = tallies()
    assert after["email_index"].filled == 2
    assert not any(t.missing or t.stale for t in after.values())
    assert exit_code("encryption_status", check=True) == 0
    assert exit_code("encryption_migrate", check=True) == 0
    assert migrate(["indexapp"]).index_totals()["written"] == 0  # a rerun has nothing to do


def test_tags_of_rows_without_a_value_are_cleared() -> None:
    member = Member.objects.create(name="a", email="a@x")
    set_raw(Member, member.pk, email=None)
    assert tallies()["email_index"].orphaned == 1
    assert exit_code("encryption_status", check=True) == 1
    report = migrate(["indexapp.Member"])
    assert report.indexes[0].counts["email_index"]["cleared"] == 1
    assert raw(member.pk, "email_index") is None
    assert raw(member.pk, "email_index_previous") is None


def test_two_legacy_rows_with_one_value_are_reported_not_tagged() -> None:
    one, two = Member.objects.create(name="1"), Member.objects.create(name="2")
    set_raw(Member, one.pk, email="Same@x")
    set_raw(Member, two.pk, email="same@X ")
    report = migrate(["indexapp.Member"], batch_size=10)
    assert report.index_totals()["write_failed"] == 1
    assert any("unique index" in problem for problem in report.problems())
    tagged = [raw(pk, "email_index") for pk in (one.pk, two.pk)]
    assert sorted(tagged, key=str) == sorted([email_tag("i1", "same@x"), None], key=str)
    # The untagged one keeps its plaintext (the value pass holds it), so lookups still find it.
    held = one.pk if tagged[0] is None else two.pk
    assert raw(held, "email") in ("Same@x", "same@X ")
    assert raw(one.pk if held == two.pk else two.pk, "email").startswith("enc:v1:")
    assert report.fields[0].counts[None][Outcome.SKIPPED] == 1
    assert names(Member.objects.filter(email=raw(held, "email"))) == ["1", "2"]
    with pytest.raises(CommandError, match="could not get their blind index tags"):
        call_command("encryption_migrate", "indexapp", stdout=StringIO())


# Rotation ----------------------------------------------------------------------------------


def test_rotation_step_by_step() -> None:
    pks = {e: Member.objects.create(name=e, email=e).pk for e in ("a@x", "b@x", "c@x")}
    assert_tags(pks, "i1", "i1")
    assert exit_code("encryption_status", check=True) == 0

    with override_settings(**ROTATING):  # i2 active, i1 still matched and the oldest
        t = tallies()
        assert (t["email_index"].stale, t["email_index"].by_key) == (3, {"i1": 3})
        assert (t["email_index_previous"].stale, t["email_index"].expected) == (0, "i2")
        assert exit_code("encryption_status", check=True) == 1
        assert_queries(pks)
        pks["d@x"] = Member.objects.create(name="d", email="d@x").pk
        assert raw(pks["d@x"], "email_index") == email_tag("i2", "d@x")
        assert raw(pks["d@x"], "email_index_previous") == email_tag("i1", "d@x")
        for email in ("a@x", "d@x"):
            assert_duplicate_refused(email)
        assert exit_code("encryption_migrate", check=True) == 1

        report = migrate(["indexapp.Member"], batch_size=2)
        assert report.ok, report.problems()
        counts = report.indexes[0].counts
        assert (counts["email_index"]["moved"], counts["email_index"]["unchanged"]) == (3, 1)
        assert counts["email_index_previous"]["unchanged"] == 4
        assert_tags(pks, "i2", "i1")
        assert_queries(pks)
        for email in ("b@x", "d@x"):
            assert_duplicate_refused(email)
        t = tallies()
        assert (t["email_index"].by_key, t["email_index_previous"].by_key) == (
            {"i2": 4},
            {"i1": 4},
        )
        assert exit_code("encryption_status", check=True) == 0

    with override_settings(**ROTATED):  # i1 retired
        t = tallies()
        assert (t["email_index"].stale, t["email_index_previous"].stale) == (0, 4)
        assert t["email_index_previous"].expected == "i2"
        assert exit_code("encryption_status", check=True) == 1
        assert_queries(pks)
        assert_duplicate_refused("c@x")
        pks["e@x"] = Member.objects.create(name="e", email="e@x").pk
        report = migrate(["indexapp.Member"], batch_size=3)
        assert report.ok, report.problems()
        assert report.indexes[0].counts["email_index_previous"]["moved"] == 4
        assert_tags(pks, "i2", "i2")
        assert_queries(pks)
        assert_duplicate_refused("e@x")
        assert exit_code("encryption_status", check=True) == 0
        assert exit_code("encryption_migrate", check=True) == 0


# Status ------------------------------------------------------------------------------------


def test_verify_finds_a_tag_that_does_not_match_its_value() -> None:
    a = Member.objects.create(name="a", email="a@x")
    Member.objects.create(name="b", email="b@x")
    set_raw(Member, a.pk, email_index=email_tag("i1", "b@z"))  # right key, wrong value
    assert tallies()["email_index"].ok  # by key id alone it looks fine
    report = status(["indexapp.Member"], verify=True)
    found = {t.index.name: t for t in report.indexes}
    assert (found["email_index"].mismatched, found["email_index"].mismatched_pks) == (1, [a.pk])
    assert found["email_index"].checked == 2
    assert found["email_index_previous"].mismatched == 0
    assert exit_code("encryption_status", check=True, verify=True) == 1
    migrated = migrate(["indexapp.Member"])
    assert migrated.indexes[0].counts["email_index"]["fixed"] == 1
    assert raw(a.pk, "email_index") == email_tag("i1", "a@x")
    assert exit_code("encryption_status", check=True, verify=True) == 0


def test_leakage_figures_and_the_near_boolean_warning() -> None:
    for n in range(24):
        Member.objects.create(name=str(n), email=f"{n}@x", phone="1" if n % 6 else "2")
    t = tallies()
    assert (t["phone_index"].distinct, t["phone_index"].largest) == (2, 20)
    assert t["phone_index"].near_boolean
    assert (t["email_index"].distinct, t["email_index"].largest) == (24, 1)
    assert not t["email_index"].near_boolean
    out = StringIO()
    call_command("encryption_status", "indexapp", stdout=out)
    text = out.getvalue()
    assert "Warning: indexapp.Member.phone_index has 2 distinct tag(s) over 24 rows" in text
    assert "email_index has" not in text
    data = json.loads(_json_status())
    phone = next(i for i in data["indexes"] if i["index"] == "phone_index")
    assert phone["leakage"] == {
        "distinct": 2,
        "largest_group": 20,
        "largest_share": round(20 / 24, 4),
        "near_boolean": True,
    }
    assert phone["by_key"] == {"i1": 24}
    assert data["check"]["indexes_ok"] is True


def _json_status(*args: str) -> str:
    out = StringIO()
    call_command("encryption_status", "indexapp", *args, format="json", stdout=out)
    return out.getvalue()


def test_tags_under_an_unknown_key_are_stale_and_named_only_when_shaped_like_an_id() -> None:
    a = Member.objects.create(name="a", email="a@x")
    b = Member.objects.create(name="b", email="b@x")
    set_raw(Member, a.pk, email_index="old-key:00ff")
    set_raw(Member, b.pk, email_index="not an id, maybe a secret:00")
    t = tallies()["email_index"]
    assert t.by_key == {"old-key": 1, "(malformed)": 1}
    assert t.stale == 2
    migrate(["indexapp.Member"])
    assert raw(a.pk, "email_index") == email_tag("i1", "a@x")
    assert tallies()["email_index"].stale == 0


def test_migrate_reports_index_work_as_text_and_json() -> None:
    member = Member.objects.create(name="a", email="a@x")
    set_raw(Member, member.pk, email_index=None)
    out = StringIO()
    call_command("encryption_migrate", "indexapp.Member", dry_run=True, stdout=out)
    text = out.getvalue()
    assert "Blind index" in text
    assert "  email_index " in text
    assert raw(member.pk, "email_index") is None
    out = StringIO()
    call_command("encryption_migrate", "indexapp.Member", format="json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["indexes"][0]["columns"][0] == {
        "column": "email_index",
        "filled": 1,
        "moved": 0,
        "fixed": 0,
        "cleared": 0,
        "unchanged": 0,
    }
    assert data["remaining_indexes"] == {"missing": 0, "stale": 0, "orphaned": 0}
    # No key, no plaintext in either report.
    assert "a@x" not in text + out.getvalue()
    assert INDEX_KEY_A not in text + out.getvalue()


def test_json_path_indexes_are_counted_verified_and_migrated() -> None:
    tagged = Connection.objects.create(name="a", options={"client_secret": "s1", "n": 1})
    untagged = Connection.objects.create(name="b", options={"client_secret": "s2"})
    empty = Connection.objects.create(name="c", options={"n": 2})
    set_raw(Connection, untagged.pk, secret_index=None)
    # A tag on a row whose path holds no string: orphaned, cleared by the run.
    set_raw(Connection, empty.pk, secret_index=expected_tag(INDEX_KEY_A, "i1", SECRET, "x"))
    (tally,) = status(["indexapp.Connection"], verify=True).indexes
    assert (tally.rows, tally.with_value, tally.filled) == (3, 2, 2)
    assert (tally.missing, tally.orphaned, tally.stale, tally.mismatched) == (1, 1, 0, 0)
    assert tally.checked == 1
    report = migrate(["indexapp.Connection"])
    assert report.ok, report.problems()
    counts = report.indexes[0].counts["secret_index"]
    assert (counts["filled"], counts["cleared"], counts["unchanged"]) == (1, 1, 1)
    tags = dict(Connection.objects.values_list("pk", "secret_index"))
    assert tags == {
        tagged.pk: expected_tag(INDEX_KEY_A, "i1", SECRET, "s1"),
        untagged.pk: expected_tag(INDEX_KEY_A, "i1", SECRET, "s2"),
        empty.pk: None,
    }
    assert status(["indexapp.Connection"], verify=True).indexes_ok


def test_a_backend_without_a_dialect_is_counted_by_streaming(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(6):
        Member.objects.create(name=str(n), email=f"{n}@x", phone="1" if n % 3 else "22")
    a, b = Member.objects.filter(name__in=["1", "2"]).order_by("pk")
    set_raw(Member, a.pk, email_index=None)
    set_raw(Member, b.pk, email=None, phone_index="odd id!:00")
    Connection.objects.create(name="c", options={"client_secret": "s"})
    Connection.objects.create(name="d", options={"n": 1})

    def figures() -> list[dict[str, Any]]:
        report = status(["indexapp"])
        return [tally.as_json() for tally in report.indexes]

    in_sql = figures()
    monkeypatch.setattr("authhero_encrypt.status.dialects.DIALECTS", {})
    assert figures() == in_sql
    email = next(t for t in in_sql if t["index"] == "email_index")
    assert (email["missing"], email["orphaned"], email["filled"]) == (1, 1, 5)
    phone = next(t for t in in_sql if t["index"] == "phone_index")
    assert phone["by_key"] == {"(malformed)": 1, "i1": 5}
