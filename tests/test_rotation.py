"""The rotation rules, against key rings alone: what each kind of stored value becomes."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authhero_encrypt.crypto import PREFIX, decrypt_with, encrypt_with, stored_key_id
from authhero_encrypt.exceptions import MissingKeyError
from authhero_encrypt.json_paths import PathTrie, parse_paths
from authhero_encrypt.keys import Key, KeyRing
from authhero_encrypt.rotation import Outcome, Rotation
from tests.keys import KEY_A, KEY_B, KEY_C

OLD = Key.from_secret(None, base64.b64decode(KEY_A))  # the previous key, which wrote untagged
NEW = Key.from_secret("new", base64.b64decode(KEY_B))
OLDER = Key.from_secret("old", base64.b64decode(KEY_C))  # an older key that wrote "enc:v1:old:"
STRANGER = Key.from_secret(None, bytes(range(96, 128)))

RING = KeyRing.from_keys(NEW, [OLD, OLDER])
ONLY_NEW = KeyRing.from_keys(NEW, ())
ROTATION = Rotation(RING)


def under(key: Key, plaintext: str, tag: str | None = None) -> str:
    return encrypt_with(key, plaintext, prefix=PREFIX if tag is None else f"{PREFIX}{tag}:")


def assert_under_new(stored: str, plaintext: str) -> None:
    assert stored.startswith("enc:v1:new:")
    assert decrypt_with(ONLY_NEW, stored) == plaintext


@pytest.mark.parametrize("plaintext", ["s3cr3t value!", "", "ünïcødé €", "enc:v2:not ours"])
def test_legacy_plaintext_is_encrypted_with_the_active_key_id(plaintext):
    outcome, stored, reason = ROTATION.value(plaintext)
    assert (outcome, reason) == (Outcome.ENCRYPTED, None)
    assert_under_new(stored, plaintext)


def test_value_under_the_active_key_is_kept_byte_for_byte():
    stored = under(NEW, "s3cr3t!", "new")
    assert ROTATION.value(stored) == (Outcome.UNCHANGED, stored, None)


def test_padded_value_under_the_active_key_is_kept():
    # AuthHero reads (and older writers produced) padded payloads; they are valid, not rewritten.
    stored = under(NEW, "s3cr3t!", "new")
    padded = stored + "=" * (-len(stored.rsplit(":", 1)[1]) % 4)
    assert padded != stored
    assert ROTATION.value(padded) == (Outcome.UNCHANGED, padded, None)


def test_untagged_ring_keeps_untagged_values_of_the_active_key():
    ring = KeyRing.from_keys(OLD, [NEW])
    stored = under(OLD, "s3cr3t!")
    assert Rotation(ring).value(stored) == (Outcome.UNCHANGED, stored, None)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(under(OLD, "s3cr3t!"), id="fallback-untagged"),
        pytest.param(under(OLDER, "s3cr3t!", "old"), id="fallback-tagged"),
        pytest.param(under(NEW, "s3cr3t!"), id="active-key-without-its-id"),
    ],
)
def test_values_under_other_keys_or_ids_are_reencrypted(stored):
    outcome, new, reason = ROTATION.value(stored)
    assert (outcome, reason) == (Outcome.REENCRYPTED, None)
    assert_under_new(new, "s3cr3t!")


def test_untagged_ring_reencrypts_fallback_values_untagged():
    ring = KeyRing.from_keys(OLD, [NEW])
    outcome, new, _ = Rotation(ring).value(under(NEW, "s3cr3t!", "new"))
    assert outcome is Outcome.REENCRYPTED
    assert stored_key_id(new) is None
    assert decrypt_with(KeyRing.from_keys(OLD, ()), new) == "s3cr3t!"


def tampered(stored: str) -> str:
    last = stored[-2]
    return stored[:-2] + ("A" if last != "A" else "B") + stored[-1]


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(tampered(under(NEW, "s3cr3t!", "new")), id="tampered-active"),
        pytest.param(under(OLD, "s3cr3t!", "new"), id="active-id-wrong-key"),
        pytest.param(under(OLDER, "s3cr3t!", "gone"), id="unknown-key-id"),
        pytest.param(under(STRANGER, "s3cr3t!"), id="unknown-untagged-key"),
        pytest.param("enc:v1:!!not base64!!", id="garbage"),
        pytest.param("enc:v1:bad id:AAAA", id="malformed-key-id"),
    ],
)
def test_undecryptable_values_are_kept_and_explained(stored):
    outcome, kept, reason = ROTATION.value(stored)
    assert (outcome, kept) == (Outcome.FAILED, stored)
    assert reason
    assert "s3cr3t" not in reason


def test_a_ring_without_an_active_key_is_refused():
    with pytest.raises(MissingKeyError, match="ENCRYPTION_KEY is not set"):
        Rotation(KeyRing.from_keys(None, [OLD]))


@given(
    # Legacy text that starts with the prefix is ciphertext by the storage rule, not plaintext
    # (and hypothesis draws the constants of the code it tests, "enc:v1:" among them).
    plaintext=st.text(alphabet=st.characters(exclude_categories=["Cs"])).filter(
        lambda text: not text.startswith(PREFIX)
    ),
    writer=st.sampled_from(["legacy", "new", "new-untagged", "old", "older"]),
)
def test_every_value_ends_under_the_active_key_and_a_second_pass_keeps_it(plaintext, writer):
    stored = {
        "legacy": lambda: plaintext,
        "new": lambda: under(NEW, plaintext, "new"),
        "new-untagged": lambda: under(NEW, plaintext),
        "old": lambda: under(OLD, plaintext),
        "older": lambda: under(OLDER, plaintext, "old"),
    }[writer]()
    outcome, rotated, _ = ROTATION.value(stored)
    assert outcome is not Outcome.FAILED
    assert (rotated == stored) is (outcome is Outcome.UNCHANGED)
    assert_under_new(rotated, plaintext)
    assert ROTATION.value(rotated) == (Outcome.UNCHANGED, rotated, None)


# Documents ------------------------------------------------------------------------------------

CONNECTION_PATHS = parse_paths(["client_secret", "app_secret", "configuration.client_secret"])
CONNECTION_TRIE = PathTrie.build(CONNECTION_PATHS)
STAR_PATHS = parse_paths(["*", "api_key"])
STAR_TRIE = PathTrie.build(STAR_PATHS)


def test_document_rewrites_only_secret_leaves():
    document = {
        "client_id": "public",
        "client_secret": "legacy secret!",
        "app_secret": 42,
        "configuration": {"client_secret": under(OLDER, "deep!", "old"), "scope": "openid"},
        "twilio_token": "not declared here",
    }
    rewrite = ROTATION.document(CONNECTION_TRIE, CONNECTION_PATHS, document)
    assert rewrite.changed
    new = rewrite.document
    assert new is not document
    assert document["client_secret"] == "legacy secret!"  # the caller's document is not changed
    assert_under_new(new["client_secret"], "legacy secret!")
    assert_under_new(new["configuration"]["client_secret"], "deep!")
    assert {k: v for k, v in new.items() if k not in ("client_secret", "configuration")} == {
        "client_id": "public",
        "app_secret": 42,
        "twilio_token": "not declared here",
    }
    assert new["configuration"]["scope"] == "openid"
    assert dict(rewrite.counts) == {
        (("client_secret",), Outcome.ENCRYPTED): 1,
        (("configuration", "client_secret"), Outcome.REENCRYPTED): 1,
    }


@pytest.mark.parametrize(
    "document",
    [None, [], "text", 3, {}, {"client_id": "x"}, {"configuration": "not an object"}],
)
def test_documents_without_secret_strings_are_left_alone(document):
    rewrite = ROTATION.document(CONNECTION_TRIE, CONNECTION_PATHS, document)
    assert rewrite.document is document
    assert not rewrite.changed
    assert not rewrite.counts


def test_unchanged_document_is_the_same_object():
    document = {"client_secret": under(NEW, "s!", "new"), "client_id": "x"}
    rewrite = ROTATION.document(CONNECTION_TRIE, CONNECTION_PATHS, document)
    assert rewrite.document is document
    assert not rewrite.changed
    assert dict(rewrite.counts) == {(("client_secret",), Outcome.UNCHANGED): 1}


def test_wildcard_leaves_are_counted_under_the_wildcard_path():
    document = {"api_key": "k!", "user": under(OLD, "u!"), "port": 25, "smtp": {"password": "p"}}
    rewrite = ROTATION.document(STAR_TRIE, STAR_PATHS, document)
    assert dict(rewrite.counts) == {
        (("api_key",), Outcome.ENCRYPTED): 1,
        (("*",), Outcome.REENCRYPTED): 1,
    }
    assert_under_new(rewrite.document["api_key"], "k!")
    assert_under_new(rewrite.document["user"], "u!")
    assert rewrite.document["smtp"] == {"password": "p"}  # '*' does not recurse
    assert rewrite.document["port"] == 25


def test_one_failed_leaf_keeps_the_whole_document():
    bad = under(STRANGER, "lost!")
    document = {"client_secret": "legacy!", "configuration": {"client_secret": bad}}
    rewrite = ROTATION.document(CONNECTION_TRIE, CONNECTION_PATHS, document)
    assert rewrite.document is document
    assert not rewrite.changed
    assert document == {"client_secret": "legacy!", "configuration": {"client_secret": bad}}
    assert [path for path, _reason in rewrite.failures] == [("configuration", "client_secret")]
    assert dict(rewrite.counts) == {
        (("client_secret",), Outcome.SKIPPED): 1,
        (("configuration", "client_secret"), Outcome.FAILED): 1,
    }


# Batches of rows ------------------------------------------------------------------------------


def iv_of(stored: str) -> bytes:
    payload = stored.rsplit(":", 1)[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))[:12]


def test_rows_sorts_a_batch_into_changes_unchanged_and_failures():
    active = under(NEW, "kept!", "new")
    rows = [
        (1, "legacy!"),
        (2, None),
        (3, active),
        (4, under(OLDER, "older!", "old")),
        (5, under(STRANGER, "lost!")),
        (6, ""),
    ]
    batch = ROTATION.rows(rows)
    assert [(pk, old, outcome) for pk, old, _new, outcome in batch.changes] == [
        (1, "legacy!", Outcome.ENCRYPTED),
        (4, rows[3][1], Outcome.REENCRYPTED),
        (6, "", Outcome.ENCRYPTED),
    ]
    for (_pk, _old, new, _outcome), plaintext in zip(
        batch.changes, ["legacy!", "older!", ""], strict=True
    ):
        assert_under_new(new, plaintext)
    assert batch.unchanged == 1
    assert [pk for pk, _reason in batch.failures] == [5]


def test_rows_gives_every_value_its_own_iv():
    batch = ROTATION.rows([(i, "same plaintext!") for i in range(500)])
    ivs = {iv_of(new) for _pk, _old, new, _outcome in batch.changes}
    assert len(ivs) == 500
    assert len({new for _pk, _old, new, _outcome in batch.changes}) == 500


def test_rows_reports_text_that_cannot_be_encrypted():
    batch = ROTATION.rows([(1, "lone \ud800 surrogate"), (2, "fine!")])
    assert [pk for pk, _reason in batch.failures] == [1]
    assert [pk for pk, *_ in batch.changes] == [2]


def test_a_padding_ring_writes_padded_values():
    # ENCRYPTION_PAD_PAYLOAD: what the migration writes must be readable by AuthHero < 8.22.1.
    ring = KeyRing.from_keys(NEW, [OLD, OLDER], pad_payload=True)
    rotation = Rotation(ring)
    # 7 + 28 bytes = 35, not a multiple of 3: the payload needs padding.
    legacy, older = "legacy!", under(OLDER, "older!", "old")
    for stored, plaintext in ((legacy, "legacy!"), (older, "older!")):
        _outcome, text, _reason = rotation.value(stored)
        assert text.endswith("=")
        assert_under_new(text, plaintext)
    batch = rotation.rows([(1, legacy), (2, older)])
    assert all(new.endswith("=") for _pk, _old, new, _outcome in batch.changes)
    assert len(batch.changes) == 2
