"""``manage.py encryption_status``: counts in SQL, streams ``*`` paths and ``--verify``.

Every stored value is written with a raw cursor, so the command is tested against exact text at
rest (including text no field would write: tampered ciphertext, unknown key ids, non-strings at
secret paths). ``--check`` exits through ``sys.exit(1)``, as ``makemigrations --check`` does, so
the tests expect ``SystemExit``; a clean run returns normally (status 0).
"""

from __future__ import annotations

import base64
import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authhero_encrypt.crypto import encrypt_with
from authhero_encrypt.inventory import NO_KEY_ID
from authhero_encrypt.keys import Key, fingerprint
from authhero_encrypt.management.commands import encryption_status
from authhero_encrypt.status import dialects
from tests.keys import KEY_A, KEY_B, KEY_C
from tests.testapp.models import Connection, EmailProvider, MigrationSource, Secret

pytestmark = pytest.mark.django_db

ACTIVE = Key.from_secret(None, base64.b64decode(KEY_A))
OLD = Key.from_secret("old", base64.b64decode(KEY_B))
UNTAGGED_OLD = Key.from_secret(None, base64.b64decode(KEY_C))
FALLBACKS = [f"old:{KEY_B}", KEY_C]
KEYS = override_settings(ENCRYPTION_KEY=KEY_A, ENCRYPTION_KEY_FALLBACKS=FALLBACKS)


def under_active(text: str) -> str:
    return encrypt_with(ACTIVE, text)


def under_old(text: str) -> str:
    return encrypt_with(OLD, text, prefix="enc:v1:old:")


def under_untagged_fallback(text: str) -> str:
    return encrypt_with(UNTAGGED_OLD, text)


def tampered(stored: str) -> str:
    """The same value with one payload character changed: still canonical base64url."""
    at = len(stored) // 2
    return stored[:at] + ("A" if stored[at] != "A" else "B") + stored[at + 1 :]


def insert(model: type, pk: int, **columns: Any) -> None:
    """Write one row as given, bypassing the fields; dicts and lists are stored as JSON text."""
    values = [pk] + [json.dumps(v) if isinstance(v, (dict, list)) else v for v in columns.values()]
    names = ", ".join(connection.ops.quote_name(c) for c in ["id", *columns])
    table = connection.ops.quote_name(model._meta.db_table)
    marks = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)


def clear(model: type) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")


def run(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command("encryption_status", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def run_json(*args: str, **options: Any) -> dict[str, Any]:
    return dict(json.loads(run(*args, format="json", **options)))


def counts(report: dict[str, Any]) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    return {
        (f["model"], f["field"], f["path"]): {
            k: f[k] for k in ("encrypted", "plaintext", "empty", "no_value", "by_key")
        }
        for f in report["fields"]
    }


def table_counts(text: str) -> dict[tuple[str, str, str | None], tuple[int, ...]]:
    """The numbers of each row of the text table, keyed like ``counts``."""
    found = {}
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 7 and "." in cells[0] and cells[3].isdigit():
            path = None if cells[2] == "-" else cells[2]
            found[cells[0], cells[1], path] = tuple(int(n) for n in cells[3:7])
    return found


def row(encrypted: int, plaintext: int, empty: int, null: int, **by_key: int) -> dict[str, Any]:
    """The expected counts; ``plaintext`` here is the non-empty plaintext: the report's
    ``plaintext`` also holds the ``empty`` ones (legacy ``""`` is encrypted too)."""
    return {
        "encrypted": encrypted,
        "plaintext": plaintext + empty,
        "empty": empty,
        "no_value": null,
        "by_key": {(NO_KEY_ID if k == "untagged" else k): n for k, n in sorted(by_key.items())},
    }


@pytest.fixture
def seeded() -> dict[str, Any]:
    """A known mix in every test model; returns what the tests need to refer back to."""
    broken = tampered(under_active("wrecked"))
    insert(Secret, 1, label="a", token=under_active("t1"), notes=under_active("n1"))
    insert(Secret, 2, label="b", token=under_active("t2"), notes="legacy notes")
    insert(Secret, 3, label="c", token=under_old("t3"), notes=None)
    insert(Secret, 4, label="d", token=under_untagged_fallback("t4"), notes="")
    insert(Secret, 5, label="e", token="legacy token", notes=broken)
    insert(Secret, 6, label="f", token="", notes=None)
    insert(Secret, 7, label="g", token=None, notes=None)

    insert(
        Connection,
        1,
        name="full",
        options={
            "client_id": "plain, not secret",
            "client_secret": under_active("cs"),
            "app_secret": "legacy app secret",
            "twilio_token": "",
            "configuration": {"client_secret": under_old("nested"), "region": "eu"},
        },
    )
    insert(
        Connection,
        2,
        name="odd types",
        options={"client_secret": 42, "app_secret": None, "configuration": "not an object"},
    )
    insert(Connection, 3, name="null document", options=None)
    insert(
        Connection,
        4,
        name="containers",
        options={
            "client_secret": {"nested": "enc:v1:looks-encrypted"},
            "app_secret": ["x"],
            "twilio_token": True,
            "configuration": {"client_secret": ""},
        },
    )
    insert(
        EmailProvider,
        1,
        name="smtp",
        credentials={"api_key": under_active("k"), "user": "legacy", "port": 587, "blank": ""},
    )
    insert(EmailProvider, 2, name="empty", credentials={})
    insert(
        EmailProvider,
        3,
        name="rotated",
        credentials={"a": under_untagged_fallback("a"), "b": under_old("b"), "c": broken},
    )
    insert(EmailProvider, 4, name="array", credentials=[])
    insert(MigrationSource, 1, name="ok", credentials={"client_secret": under_old("m")})
    insert(MigrationSource, 2, name="ghost", credentials={"client_secret": "enc:v1:ghost:AAAA"})
    return {"broken_secret_pk": 5, "broken_provider_pk": 3}


MALFORMED = "(malformed)"
# A canonical base64url payload of 30 bytes: the smallest a value has is 28 (IV and tag).
PAYLOAD = "A" * 40


EXPECTED = {
    ("testapp.Secret", "token", None): row(4, 1, 1, 1, untagged=3, old=1),
    ("testapp.Secret", "notes", None): row(2, 1, 1, 3, untagged=2),
    ("testapp.Swapped", "token", None): row(0, 0, 0, 0),
    ("testapp.Connection", "options", "client_secret"): row(1, 0, 0, 3, untagged=1),
    ("testapp.Connection", "options", "app_secret"): row(0, 1, 0, 3),
    ("testapp.Connection", "options", "twilio_token"): row(0, 0, 1, 3),
    ("testapp.Connection", "options", "configuration.client_secret"): row(1, 0, 1, 2, old=1),
    ("testapp.EmailProvider", "credentials", "*"): row(4, 1, 1, 2, untagged=3, old=1),
    ("testapp.MigrationSource", "credentials", "client_secret"): row(
        2, 0, 0, 0, old=1, **{MALFORMED: 1}
    ),
    ("testapp.TenantCredential", "secret", None): row(0, 0, 0, 0),
    ("testapp.TenantCredential", "options", "client_secret"): row(0, 0, 0, 0),
    ("testapp.UnmanagedClient", "client_secret", None): row(0, 0, 0, 0),
    # Envelope fields: counted in tests/test_status_envelope.py.
    ("testapp.PrivateKey", "pem", None): row(0, 0, 0, 0),
    ("testapp.PrivateKey", "bundle", None): row(0, 0, 0, 0),
    # The guard tests' models (multi-table updates, deletes): empty here.
    ("testapp.GuardAccount", "client_secret", None): row(0, 0, 0, 0),
    ("testapp.GuardAccount", "options", "client_secret"): row(0, 0, 0, 0),
    ("testapp.GuardPremiumAccount", "api_key", None): row(0, 0, 0, 0),
    ("testapp.GuardVaultItem", "secret", None): row(0, 0, 0, 0),
    ("testapp.GuardVaultItem", "pem", None): row(0, 0, 0, 0),
}


@KEYS
def test_seeded_counts_in_json(seeded: dict[str, Any]) -> None:
    report = run_json("testapp")
    assert counts(report) == EXPECTED
    totals = report["totals"]
    assert totals == {
        "fields": len(EXPECTED),
        "encrypted": 14,
        "plaintext": 9,
        "empty": 5,
        "no_value": 17,
        "by_key": {NO_KEY_ID: 9, MALFORMED: 1, "old": 4},
        "unreadable": 1,
        # The active key has no id and a fallback is configured: only --verify can tell which
        # key the values without a key id are under.
        "not_under_active_key": {"other_keys": 5, "unattributed": 9},
    }


@KEYS
def test_seeded_counts_in_text(seeded: dict[str, Any]) -> None:
    text = run("testapp")
    expected = {
        key: (r["encrypted"], r["plaintext"], r["empty"], r["no_value"])
        for key, r in EXPECTED.items()
    }
    assert table_counts(text) == expected
    assert "(no key id): 3, old: 1" in text
    total = next(line for line in text.splitlines() if line.startswith("Total"))
    assert total.split()[3:7] == ["14", "9", "5", "17"]


def test_counts_without_any_key(seeded: dict[str, Any]) -> None:
    """The default run only reads prefixes, so it needs no key (and none of its ids)."""
    with override_settings(ENCRYPTION_KEY=None, ENCRYPTION_KEY_FALLBACKS=None):
        report = run_json("testapp")
    assert counts(report) == EXPECTED
    assert report["key"] == {
        "configured": False,
        "key_id": None,
        "fallbacks": 0,
        "fingerprints": [],
        "errors": [],
        "envelope": {"provider": "local", "key_id": None},
        "active_label": None,
    }


def test_streamed_counts_equal_sql_counts(seeded: dict[str, Any], monkeypatch: Any) -> None:
    """A backend without a dialect is counted by streaming: the two definitions agree."""
    in_sql = counts(run_json("testapp", batch_size=2))
    monkeypatch.setattr(dialects, "DIALECTS", {})
    assert counts(run_json("testapp", batch_size=2)) == in_sql == EXPECTED


@KEYS
@pytest.mark.parametrize("group_codes", [False, True])
def test_both_ways_of_counting_the_codes(
    seeded: dict[str, Any], monkeypatch: Any, group_codes: bool
) -> None:
    """FILTER counts or GROUP BY (MariaDB's way): the same numbers on every backend."""
    base = dialects.DIALECTS[connection.vendor]
    dialect = type("Dialect", (base,), {"group_codes": group_codes})
    monkeypatch.setitem(dialects.DIALECTS, connection.vendor, dialect)
    assert counts(run_json("testapp")) == EXPECTED


@KEYS
def test_one_aggregate_query_per_model(seeded: dict[str, Any]) -> None:
    """Fixed paths and scalar fields: one query each model; no query per row or per field."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        run("testapp.Secret", "testapp.Connection")
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(selects) == 2


@KEYS
def test_key_status_shows_fingerprints_never_keys(seeded: dict[str, Any]) -> None:
    text = run("testapp.Secret")
    report = run_json("testapp.Secret")
    assert report["key"] == {
        "configured": True,
        "key_id": None,
        "fallbacks": 2,
        "fingerprints": [
            {"role": "active", "key_id": None, "fingerprint": ACTIVE.fingerprint},
            {"role": "fallback", "key_id": "old", "fingerprint": OLD.fingerprint},
            {"role": "fallback", "key_id": None, "fingerprint": UNTAGGED_OLD.fingerprint},
        ],
        "errors": [],
        "envelope": {"provider": "local", "key_id": NO_KEY_ID},
        "active_label": NO_KEY_ID,
    }
    assert ACTIVE.fingerprint == fingerprint(base64.b64decode(KEY_A))
    for key in (ACTIVE, OLD, UNTAGGED_OLD):
        assert key.fingerprint in text
    for secret in (KEY_A, KEY_B, KEY_C):
        assert secret not in text
        assert secret not in json.dumps(report)
    assert "2 fallback key(s)" in text


@KEYS
def test_guidance_when_plaintext_remains(seeded: dict[str, Any]) -> None:
    text = run("testapp.Secret")
    assert "4 values are still stored as plaintext" in text  # the two "" included
    assert "manage.py encryption_migrate" in text


@KEYS
def test_no_guidance_without_plaintext() -> None:
    insert(Secret, 1, label="a", token=under_active("t"), notes=None)
    assert "encryption_migrate" not in run("testapp.Secret")


def test_malformed_key_is_reported_not_raised(seeded: dict[str, Any]) -> None:
    with override_settings(ENCRYPTION_KEY="not base64!", ENCRYPTION_KEY_FALLBACKS=["x:y:z"]):
        report = run_json("testapp")
        text = run("testapp")
    assert counts(report) == EXPECTED
    assert report["key"]["configured"] is False
    errors = report["key"]["errors"]
    assert any("authhero_encrypt.E001" in e for e in errors)
    assert any("authhero_encrypt.E003" in e for e in errors)
    assert "the key settings are invalid" in text
    assert "not base64!" not in text
    assert "Fix the key settings above first" in text


def test_runs_from_the_command_line_despite_failing_checks(
    seeded: dict[str, Any], capsys: Any, monkeypatch: Any
) -> None:
    """manage.py runs the system checks first (call_command does not); these settings fail
    them (E001), and the command must still run to report the problem."""
    from django.db import connections

    monkeypatch.setattr(connections, "close_all", lambda: None)  # keep the test's transaction
    with override_settings(ENCRYPTION_KEY="not base64!"):
        encryption_status.Command().run_from_argv(["manage.py", "encryption_status", "testapp"])
    assert "the key settings are invalid" in capsys.readouterr().out


def test_no_key_guidance(seeded: dict[str, Any]) -> None:
    with override_settings(ENCRYPTION_KEY=None):
        text = run("testapp.Secret")
    assert "ENCRYPTION_KEY is not set" in text
    assert "manage.py encryption_migrate" in text


# --check -------------------------------------------------------------------------------------


@KEYS
def test_check_exits_1_when_plaintext_remains(seeded: dict[str, Any]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("testapp.Secret", check=True)
    assert exit_info.value.code == 1


@KEYS
def test_check_passes_when_everything_is_encrypted(seeded: dict[str, Any]) -> None:
    # MigrationSource holds no plaintext, but its ghost value is malformed: no key reads it,
    # which its prefix shows, so --check fails without --verify.
    with pytest.raises(SystemExit) as exit_info:
        run("testapp.MigrationSource", check=True)
    assert exit_info.value.code == 1
    MigrationSource.objects.filter(name="ghost").delete()
    assert run("testapp.MigrationSource", check=True)


@KEYS
def test_check_with_verify_exits_1_on_a_value_that_fails(seeded: dict[str, Any]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("testapp.MigrationSource", check=True, verify=True)
    assert exit_info.value.code == 1


@KEYS
def test_check_is_silent_at_verbosity_0(seeded: dict[str, Any]) -> None:
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("encryption_status", "testapp", check=True, verbosity=0, stdout=out)
    assert out.getvalue() == ""


# --verify ------------------------------------------------------------------------------------


@KEYS
def test_verify_finds_tampered_and_unknown_values(seeded: dict[str, Any]) -> None:
    report = run_json("testapp", verify=True, batch_size=2)
    fields = {(f["model"], f["field"], f["path"]): f for f in report["fields"]}
    notes = fields["testapp.Secret", "notes", None]["verify"]
    assert (notes["checked"], notes["failed"], notes["failed_pks"]) == (2, 1, [5])
    assert "does not authenticate" in notes["first_error"]
    provider = fields["testapp.EmailProvider", "credentials", "*"]["verify"]
    assert (provider["checked"], provider["failed"], provider["failed_pks"]) == (4, 1, [3])
    ghost = fields["testapp.MigrationSource", "credentials", "client_secret"]["verify"]
    assert (ghost["failed"], ghost["failed_pks"]) == (1, [2])
    token = fields["testapp.Secret", "token", None]["verify"]
    assert token["failed"] == 0
    # Which key opens the untagged values: two under the active key, one under the fallback.
    assert token["untagged_keys"] == {ACTIVE.fingerprint: 2, UNTAGGED_OLD.fingerprint: 1}
    assert report["totals"]["verify"] == {"checked": 14, "failed": 3}
    # Verifying leaves the counts as they were.
    assert counts(report) == EXPECTED


@KEYS
def test_verify_text_names_rows_and_keys(seeded: dict[str, Any]) -> None:
    text = run("testapp", verify=True)
    assert "decrypted 14 encrypted value(s); 3 failed" in text
    assert "testapp.Secret.notes: 1 failed (primary keys 5)" in text
    assert "testapp.EmailProvider.credentials [*]: 1 failed (primary keys 3)" in text
    assert f"active key {ACTIVE.fingerprint}: " in text
    assert f"fallback key {UNTAGGED_OLD.fingerprint}: " in text
    assert "wrecked" not in text


@KEYS
def test_verify_caps_the_primary_keys_named(seeded: dict[str, Any]) -> None:
    bad = tampered(under_active("x"))
    for pk in range(10, 20):
        insert(Secret, pk, label="bad", token=bad, notes=None)
    token = run_json("testapp.Secret", verify=True)["fields"][0]["verify"]
    assert token["failed"] == 10
    assert token["failed_pks"] == [10, 11, 12, 13, 14]


def test_verify_without_a_key_is_refused(seeded: dict[str, Any]) -> None:
    with override_settings(ENCRYPTION_KEY=None), pytest.raises(CommandError, match="needs the key"):
        run("testapp", verify=True)


def test_verify_with_a_malformed_key_is_refused(seeded: dict[str, Any]) -> None:
    with (
        override_settings(ENCRYPTION_KEY="short"),
        pytest.raises(CommandError, match=r"key settings are invalid.*E001"),
    ):
        run("testapp", verify=True)


def test_verify_with_fallbacks_only_works() -> None:
    insert(Secret, 1, label="a", token=under_untagged_fallback("t"), notes=None)
    with override_settings(ENCRYPTION_KEY=None, ENCRYPTION_KEY_FALLBACKS=[KEY_C]):
        token = run_json("testapp.Secret", verify=True)["fields"][0]["verify"]
    assert (token["checked"], token["failed"]) == (1, 0)


# Selection -----------------------------------------------------------------------------------


def test_model_filter() -> None:
    report = run_json("testapp.Secret")
    assert {f["model"] for f in report["fields"]} == {"testapp.Secret"}
    assert [f["field"] for f in report["fields"]] == ["token", "notes"]


def test_app_filter_lists_only_models_with_encrypted_fields() -> None:
    models = {f["model"] for f in run_json("testapp")["fields"]}
    assert models == {
        "testapp.Secret",
        "testapp.Swapped",
        "testapp.Connection",
        "testapp.EmailProvider",
        "testapp.MigrationSource",
        "testapp.TenantCredential",
        "testapp.UnmanagedClient",  # unmanaged, with a table (UnmanagedGhost has none)
        "testapp.PrivateKey",  # envelope fields
        "testapp.GuardAccount",
        "testapp.GuardPremiumAccount",
        "testapp.GuardVaultItem",
    }


def test_models_without_encrypted_fields_are_not_listed() -> None:
    assert run_json("auth")["fields"] == []
    assert "No encrypted fields found" in run("auth")
    everything = {f["model"] for f in run_json()["fields"]}
    assert "auth.User" not in everything
    assert "testapp.Secret" in everything


@pytest.mark.parametrize(
    ("selector", "message"),
    [("nope", "No installed app with label 'nope'"), ("testapp.Nope", "has no model 'Nope'")],
)
def test_unknown_selector(selector: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(selector)


def test_missing_table_is_named(monkeypatch: Any) -> None:
    from tests.testapp.models import Swapped

    monkeypatch.setattr(Swapped._meta, "db_table", "testapp_not_migrated")
    with pytest.raises(CommandError, match=r"Cannot read testapp\.Swapped .*migrate"):
        run("testapp.Swapped")


def test_unknown_database() -> None:
    with pytest.raises(CommandError, match="Unknown database alias 'elsewhere'"):
        run(database="elsewhere")


def test_bad_batch_size() -> None:
    with pytest.raises(CommandError, match="--batch-size"):
        run(batch_size=0)


# JSON schema ---------------------------------------------------------------------------------


@KEYS
def test_json_schema(seeded: dict[str, Any]) -> None:
    report = run_json("testapp")
    assert list(report) == [
        "key",
        "fields",
        "totals",
        "check",
        "excluded",
        "indexes",
        "index_totals",
    ]
    assert list(report["key"]) == [
        "configured",
        "key_id",
        "fallbacks",
        "fingerprints",
        "errors",
        "envelope",
        "active_label",
    ]
    for entry in report["fields"]:
        assert list(entry) == [
            "model",
            "field",
            "path",
            "format",
            "encrypted",
            "plaintext",
            "empty",
            "no_value",
            "by_key",
        ]
    assert list(report["totals"]) == [
        "fields",
        "encrypted",
        "plaintext",
        "empty",
        "no_value",
        "by_key",
        "unreadable",
        "not_under_active_key",
    ]
    verified = run_json("testapp", verify=True)
    assert list(verified["fields"][0]["verify"]) == [
        "checked",
        "failed",
        "failed_pks",
        "first_error",
        "untagged_keys",
    ]
    assert list(verified["totals"]["verify"]) == ["checked", "failed"]


@KEYS
def test_key_id_split_uses_configured_and_stored_ids() -> None:
    """Tagged values: configured ids are counted in the aggregate, others named by GROUP BY."""
    new = Key.from_secret("2026-11", base64.b64decode(KEY_A))
    insert(Secret, 1, label="a", token=encrypt_with(new, "a", prefix="enc:v1:2026-11:"))
    insert(Secret, 2, label="b", token=encrypt_with(new, "b", prefix="enc:v1:2026-11:"))
    insert(Secret, 3, label="c", token=f"enc:v1:other_id:{PAYLOAD}")
    insert(Secret, 4, label="d", token="enc:v1::AAAA")  # empty id: read as untagged
    insert(Secret, 5, label="e", token="ENC:V1:AAAA")  # the prefix is case-sensitive
    insert(Secret, 6, label="f", token=" ")  # not empty
    expected = row(4, 2, 0, 0, untagged=1, other_id=1, **{"2026-11": 2})
    with override_settings(ENCRYPTION_KEY_ID="2026-11"):
        assert counts(run_json("testapp.Secret"))["testapp.Secret", "token", None] == expected
    with override_settings(ENCRYPTION_KEY=None):
        assert counts(run_json("testapp.Secret"))["testapp.Secret", "token", None] == expected


# SQL and Python agree on any document ---------------------------------------------------------

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(
        [
            "",
            " ",
            "plain",
            "enc:v1:",
            "enc:v1:AAAA",
            "enc:v1::AAAA",
            "enc:v1:k1:AAAA",
            "enc:v1:k2:",
            "enc:v1:k1",
            "enc:v1::a:b",
            "ENC:v1:AAAA",
            "enc:v1",
            "énc:v1:x",
            "{}",
        ]
    ),
)
DOCUMENTS = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["client_secret", "app_secret", "configuration", "other"]),
        st.one_of(
            LEAVES,
            st.lists(LEAVES, max_size=2),
            st.dictionaries(st.sampled_from(["client_secret", "x"]), LEAVES, max_size=2),
        ),
        max_size=4,
    ),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(documents=st.lists(DOCUMENTS, min_size=1, max_size=6), tokens=st.lists(LEAVES, max_size=6))
def test_sql_counts_match_the_python_definition(
    documents: list[Any], tokens: list[Any], monkeypatch: Any
) -> None:
    clear(Connection)
    clear(Secret)
    for pk, document in enumerate(documents, start=1):
        insert(Connection, pk, name="c", options=None if document is None else json.dumps(document))
    for pk, token in enumerate(tokens, start=1):
        insert(Secret, pk, label="s", token=token if isinstance(token, str) else None)
    with override_settings(ENCRYPTION_KEY_ID="k1"):
        in_sql = counts(run_json("testapp.Connection", "testapp.Secret"))
        with monkeypatch.context() as patch:
            patch.setattr(dialects, "DIALECTS", {})
            streamed = counts(run_json("testapp.Connection", "testapp.Secret"))
    assert in_sql == streamed


@override_settings(
    ENCRYPTION_KEY_ID="2026-11",
    ENCRYPTION_KEY_FALLBACKS=[f"ab:{KEY_B}", f"cd:{KEY_C}", f"longer-id:{KEY_C}"],
)
def test_configured_key_ids_are_split_in_the_one_query() -> None:
    from django.test.utils import CaptureQueriesContext

    tokens = {
        "2026-11": 3,
        "ab": 2,
        "cd": 1,
        "longer-id": 1,
    }
    pk = 0
    for key_id, n in tokens.items():
        for _ in range(n):
            pk += 1
            insert(Secret, pk, label="x", token=f"enc:v1:{key_id}:AAAA")
    insert(Secret, pk + 1, label="x", token="enc:v1:AAAA")
    # Shares a prefix with "ab"; well-formed, so its id is shown though it is not configured.
    insert(Secret, pk + 2, label="x", token=f"enc:v1:abc:{PAYLOAD}")
    with CaptureQueriesContext(connection) as queries:
        report = run_json("testapp.Secret")
    token = counts(report)["testapp.Secret", "token", None]
    assert token == row(9, 0, 0, 0, untagged=1, abc=1, **tokens)
    # "abc" is not configured: named by one GROUP BY query after the aggregate.
    assert len([q for q in queries.captured_queries if q["sql"].startswith("SELECT")]) == 2


@KEYS
def test_progress_at_verbosity_2(seeded: dict[str, Any]) -> None:
    err = StringIO()
    call_command("encryption_status", "testapp.Secret", verbosity=2, stdout=StringIO(), stderr=err)
    assert "testapp.Secret: 1 aggregate query" in err.getvalue()


# Key labels never echo stored text -----------------------------------------------------------

LEAK = "Str0ng-Passw0rd_LEAKME"
# Prefixed values whose text after enc:v1: is not a key id of a well-formed value: a payload too
# short or not base64url, an id with characters no key id has, a truncated payload (27 bytes).
MALFORMED_VALUES = [
    f"enc:v1:{LEAK}:x",
    f"enc:v1:{LEAK}:",
    f"enc:v1:{LEAK} and more:{PAYLOAD}",
    f"enc:v1:{LEAK}:{PAYLOAD[:36]}",
    f"enc:v1:{LEAK}:{'A' * 37}B",  # its last character carries stray bits: not canonical
]


def _all_outputs(*args: str, **options: Any) -> str:
    return run(*args, **options) + run(*args, format="json", **options)


@pytest.mark.parametrize("streamed", [False, True])
def test_malformed_key_ids_are_counted_never_shown(streamed: bool, monkeypatch: Any) -> None:
    if streamed:
        monkeypatch.setattr(dialects, "DIALECTS", {})
    for pk, value in enumerate(MALFORMED_VALUES, start=1):
        insert(Secret, pk, label="x", token=value, notes=None)
        insert(Connection, pk, name="c", options={"client_secret": value})
        insert(EmailProvider, pk, name="e", credentials={"k": value})
    n = len(MALFORMED_VALUES)
    for keys in ({}, {"ENCRYPTION_KEY": None}, {"ENCRYPTION_KEY": "not base64!"}):
        with override_settings(**keys):
            output = _all_outputs("testapp.Secret", "testapp.Connection", "testapp.EmailProvider")
            report = counts(run_json("testapp"))
        assert LEAK not in output
        assert "LEAKME" not in output
        assert report["testapp.Secret", "token", None]["by_key"] == {MALFORMED: n}
        assert report["testapp.Connection", "options", "client_secret"]["by_key"] == {MALFORMED: n}
        assert report["testapp.EmailProvider", "credentials", "*"]["by_key"] == {MALFORMED: n}
    with KEYS:
        assert "LEAKME" not in _all_outputs("testapp", verify=True)


@KEYS
def test_well_formed_values_under_other_ids_are_named() -> None:
    """An id that is not configured is shown when the whole value is well-formed: what the
    operator needs to know to add that key to the fallbacks."""
    insert(Secret, 1, label="x", token=under_old("secret"))
    insert(Secret, 2, label="y", token=f"enc:v1:2027:{PAYLOAD}")
    with override_settings(ENCRYPTION_KEY_FALLBACKS=None):
        assert counts(run_json("testapp.Secret"))["testapp.Secret", "token", None]["by_key"] == {
            "old": 1,
            "2027": 1,
        }


@KEYS
def test_configured_ids_are_shown_whatever_the_payload() -> None:
    """A configured id comes from the settings, not from the row: it is shown as it is (the
    aggregate query tests the prefix only). --verify reports the value as failing."""
    insert(Secret, 1, label="x", token="enc:v1:old:not a payload")
    report = run_json("testapp.Secret", verify=True)
    token = counts(report)["testapp.Secret", "token", None]
    assert token["by_key"] == {"old": 1}
    assert report["fields"][0]["verify"]["failed"] == 1


# --check fails a deployment that cannot read what it stores ----------------------------------


def _check(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("encryption_status", *args, check=True, stdout=out, stderr=StringIO())
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def _encrypted_only() -> None:
    insert(Secret, 1, label="a", token=under_active("t1"), notes=under_old("n1"))
    insert(Secret, 2, label="b", token=under_untagged_fallback("t2"), notes=None)


@KEYS
def test_check_passes_when_the_keys_read_everything() -> None:
    _encrypted_only()
    status, text = _check("testapp.Secret")
    assert status == 0
    assert "cannot be read" not in text


@pytest.mark.parametrize(
    "keys",
    [
        {"ENCRYPTION_KEY": None, "ENCRYPTION_KEY_FALLBACKS": None},
        {"ENCRYPTION_KEY": "", "ENCRYPTION_KEY_FALLBACKS": []},
        {"ENCRYPTION_KEY": "not a key"},
        {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_FALLBACKS": ["x:y:z"]},
    ],
)
def test_check_fails_when_no_key_can_read_the_values(keys: dict[str, Any]) -> None:
    _encrypted_only()
    with override_settings(**keys):
        status, text = _check("testapp.Secret")
        report = run_json("testapp.Secret")
    assert status == 1
    assert "3 encrypted value(s) cannot be read" in text  # the report is printed first
    assert report["totals"]["unreadable"] == 3


@pytest.mark.parametrize("keys", [{"ENCRYPTION_KEY": None}, {"ENCRYPTION_KEY": "not a key"}])
def test_check_fails_on_invalid_key_settings_even_without_values(keys: dict[str, Any]) -> None:
    with override_settings(**keys):
        status, _text = _check("testapp.Secret")
    assert status == (1 if keys["ENCRYPTION_KEY"] else 0)


@KEYS
def test_unreadable_counts_ids_that_are_not_configured() -> None:
    _encrypted_only()
    insert(Secret, 3, label="c", token=f"enc:v1:gone:{PAYLOAD}", notes=f"enc:v1:{LEAK}:x")
    report = run_json("testapp.Secret")
    assert report["totals"]["unreadable"] == 2  # the unknown id and the malformed value
    assert "2 encrypted value(s) cannot be read" in run("testapp.Secret")


@KEYS
def test_empty_strings_are_plaintext_for_status_and_migrate() -> None:
    """AuthHero and the field encrypt "", so a stored "" is legacy plaintext: status counts it
    as such (and --check fails on it), migrate encrypts it, and status then agrees."""
    insert(Secret, 1, label="a", token="", notes=None)
    insert(Connection, 1, name="c", options={"client_secret": ""})
    before = counts(run_json("testapp.Secret", "testapp.Connection"))
    assert before["testapp.Secret", "token", None] == row(0, 0, 1, 0)
    assert before["testapp.Connection", "options", "client_secret"] == row(0, 0, 1, 0)
    assert _check("testapp.Secret")[0] == 1
    migrated = json.loads(
        _call("encryption_migrate", "testapp.Secret", "testapp.Connection", format="json")
    )
    assert migrated["totals"]["values"]["encrypted"] == 2
    after = counts(run_json("testapp.Secret", "testapp.Connection"))
    assert after["testapp.Secret", "token", None]["plaintext"] == 0
    assert after["testapp.Connection", "options", "client_secret"]["plaintext"] == 0
    assert _check("testapp.Secret")[0] == 0


def _call(name: str, *args: str, **options: Any) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


# Composite primary keys and unmanaged models --------------------------------------------------


def _insert_into(table: str, **columns: Any) -> None:
    values = [json.dumps(v) if isinstance(v, dict) else v for v in columns.values()]
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    marks = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(table)} ({names}) VALUES ({marks})", values
        )


@KEYS
@pytest.mark.parametrize("row_values", [True, False])
def test_verify_pages_through_a_composite_primary_key(monkeypatch: Any, row_values: bool) -> None:
    from authhero_encrypt.inventory import PrimaryKey
    from tests.testapp.models import TenantCredential

    if not row_values:
        monkeypatch.setattr(PrimaryKey, "ROW_VALUE_VENDORS", frozenset())
    table = TenantCredential._meta.db_table
    rows = [("t1", "a"), ("t1", "b"), ("t2", "a"), ("t2", "b"), ("t3", "a")]
    for tenant, name in rows:
        bad = (tenant, name) == ("t2", "b")
        secret = tampered(under_active("x")) if bad else under_active(f"{tenant}{name}")
        _insert_into(table, tenant=tenant, name=name, secret=secret, options={"client_secret": ""})
    report = run_json("testapp.TenantCredential", verify=True, batch_size=2)
    secret = next(f for f in report["fields"] if f["field"] == "secret")
    assert secret["verify"]["checked"] == 5
    assert secret["verify"]["failed"] == 1
    assert secret["verify"]["failed_pks"] == [["t2", "b"]]
    text = run("testapp.TenantCredential", verify=True, batch_size=2)
    assert "primary keys ('t2', 'b')" in text


@KEYS
def test_unmanaged_models_are_counted_and_tableless_ones_named() -> None:
    _insert_into("testapp_unmanaged_client", id=1, client_secret=under_active("x"))
    _insert_into("testapp_unmanaged_client", id=2, client_secret="legacy")
    report = run_json("testapp.UnmanagedClient", "testapp.UnmanagedGhost")
    assert counts(report) == {
        ("testapp.UnmanagedClient", "client_secret", None): row(1, 1, 0, 0, untagged=1)
    }
    reason = "unmanaged, and its table 'testapp_no_such_table' does not exist in database 'default'"
    assert report["excluded"] == [{"model": "testapp.UnmanagedGhost", "reason": reason}]
    assert f"Left out testapp.UnmanagedGhost: {reason}." in run("testapp")
