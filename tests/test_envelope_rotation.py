"""rewrap and classify: the rotation primitives, with the local provider (no database)."""

from __future__ import annotations

import pytest

from authhero_encrypt.envelope.backends.local import LocalKeyProvider
from authhero_encrypt.envelope.codec import open_value, seal
from authhero_encrypt.envelope.format import parse
from authhero_encrypt.envelope.rotation import Kind, StoredStatus, classify, rewrap
from authhero_encrypt.exceptions import DecryptionError, MissingKeyError
from authhero_encrypt.keys import build_keyring
from tests.keys import KEY_A, KEY_B, KEY_C, SAMPLE_PEM

CONTEXT = "testapp.privatekey.pem"
OLD = build_keyring(KEY_A, "old")
NEW = build_keyring(KEY_B, "new", [f"old:{KEY_A}"])


def resolver(ring):
    provider = LocalKeyProvider(ring=ring)
    return lambda name: provider


def test_rewrap_changes_only_the_key_id_and_wrapped_key():
    stored = seal(LocalKeyProvider(ring=OLD), SAMPLE_PEM, CONTEXT)
    moved = rewrap(stored, CONTEXT, resolve=resolver(NEW), target=LocalKeyProvider(ring=NEW))
    before, after = parse(stored), parse(moved)
    assert (after.provider, after.key_id) == ("local", "new")
    assert after.payload == before.payload
    assert moved.rsplit(":", 1)[1] == stored.rsplit(":", 1)[1]
    assert after.wrapped != before.wrapped
    assert open_value(resolver(build_keyring(KEY_B, "new")), moved, CONTEXT) == SAMPLE_PEM


def test_rewrap_leaves_a_value_under_the_active_key_as_the_same_object():
    stored = seal(LocalKeyProvider(ring=NEW), SAMPLE_PEM, CONTEXT)
    assert (
        rewrap(stored, CONTEXT, resolve=resolver(NEW), target=LocalKeyProvider(ring=NEW)) is stored
    )


def test_rewrap_tells_id_less_keys_apart_by_opening():
    old_ring = build_keyring(KEY_A)
    new_ring = build_keyring(KEY_B, None, [KEY_A])
    stored = seal(LocalKeyProvider(ring=old_ring), SAMPLE_PEM, CONTEXT)
    moved = rewrap(
        stored, CONTEXT, resolve=resolver(new_ring), target=LocalKeyProvider(ring=new_ring)
    )
    assert moved is not stored
    assert parse(moved).key_id == ""
    assert open_value(resolver(build_keyring(KEY_B)), moved, CONTEXT) == SAMPLE_PEM
    assert rewrap(
        moved, CONTEXT, resolve=resolver(new_ring), target=LocalKeyProvider(ring=new_ring)
    ) is (moved)


def test_rewrap_refuses_a_damaged_payload_when_verifying():
    stored = seal(LocalKeyProvider(ring=OLD), SAMPLE_PEM, CONTEXT)
    head, payload = stored.rsplit(":", 1)
    flipped = "B" if payload[20] == "A" else "A"
    damaged = f"{head}:{payload[:20]}{flipped}{payload[21:]}"
    with pytest.raises(DecryptionError, match="payload does not authenticate"):
        rewrap(damaged, CONTEXT, resolve=resolver(NEW), target=LocalKeyProvider(ring=NEW))
    moved = rewrap(
        damaged, CONTEXT, resolve=resolver(NEW), target=LocalKeyProvider(ring=NEW), verify=False
    )
    assert parse(moved).key_id == "new"


def test_rewrap_fails_clearly_without_the_old_key():
    stored = seal(LocalKeyProvider(ring=OLD), SAMPLE_PEM, CONTEXT)
    ring = build_keyring(KEY_B, "new")
    with pytest.raises(MissingKeyError, match="ring key id 'old'"):
        rewrap(stored, CONTEXT, resolve=resolver(ring), target=LocalKeyProvider(ring=ring))


@pytest.mark.parametrize("verify", [True, False])
def test_rewrap_in_another_context_fails(verify):
    # Without verifying the payload, only the wrapped key's binding to its context can refuse.
    stored = seal(LocalKeyProvider(ring=OLD), SAMPLE_PEM, CONTEXT)
    with pytest.raises(DecryptionError, match="wrapped data key does not open"):
        rewrap(
            stored,
            "testapp.other.pem",
            resolve=resolver(NEW),
            target=LocalKeyProvider(ring=NEW),
            verify=verify,
        )


def test_rewrap_refuses_what_is_not_an_envelope():
    with pytest.raises(DecryptionError, match="not an envelope"):
        rewrap("plain text!", CONTEXT, resolve=resolver(NEW), target=LocalKeyProvider(ring=NEW))


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, StoredStatus(Kind.NULL)),
        ("", StoredStatus(Kind.PLAINTEXT)),
        ("-----BEGIN PRIVATE KEY-----", StoredStatus(Kind.PLAINTEXT)),
        ("enc:v1:AAAA", StoredStatus(Kind.ENC_V1)),
        ("Env:v1:local::AAAA:AAAA", StoredStatus(Kind.PLAINTEXT)),
    ],
)
def test_classify_without_keys(stored, expected):
    assert classify(stored) == expected


def test_classify_names_provider_and_key_id():
    stored = seal(LocalKeyProvider(ring=NEW), "x", CONTEXT)
    assert classify(stored) == StoredStatus(Kind.ENVELOPE, "local", "new")
    untagged = seal(LocalKeyProvider(ring=build_keyring(KEY_C)), "x", CONTEXT)
    assert classify(untagged) == StoredStatus(Kind.ENVELOPE, "local", "")


@pytest.mark.parametrize(
    "stored",
    [
        "env:v1:local:my secret password!:AAAA:AAAA",
        "env:v1:gcp:my secret password!",
        "env:v1:local:k1:AAAA:my secret password!",
    ],
)
def test_classify_never_echoes_a_malformed_value(stored):
    status = classify(stored)
    assert status.kind is Kind.MALFORMED
    assert status.provider is None
    assert status.key_id is None
    assert status.reason
    assert "secret" not in status.reason
    assert "password" not in repr(status)
