"""The env:v1 format: known-answer vectors, strict parsing, and every bit flip refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from authhero_encrypt.crypto import PREFIX as ENC_V1_PREFIX
from authhero_encrypt.envelope.backends.local import LocalKeyProvider
from authhero_encrypt.envelope.codec import open_value, seal
from authhero_encrypt.envelope.format import (
    PREFIX,
    Envelope,
    compose,
    is_envelope,
    parse,
)
from authhero_encrypt.exceptions import DecryptionError, EncryptionError, MissingKeyError
from authhero_encrypt.keys import build_keyring
from tests.keys import KEY_A, KEY_B

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "envelope-v1-vectors.json").read_text("utf-8")
)
RING_A = build_keyring(KEY_A, "k1")
CONTEXT = "testapp.privatekey.pem"


def vector_ring(vector: dict[str, str]):
    return build_keyring(vector["kek_base64"], vector["kek_id"] or None)


def resolver(ring):
    provider = LocalKeyProvider(ring=ring)
    return lambda name: provider


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["kek_id"] or "untagged")
def test_vectors_seal_byte_for_byte_through_the_seam(vector):
    wrap_iv = bytes.fromhex(vector["wrap_iv_hex"])
    provider = LocalKeyProvider(ring=vector_ring(vector), random_bytes=lambda n: wrap_iv)
    stored = seal(
        provider,
        vector["plaintext"],
        vector["context"],
        dek=bytes.fromhex(vector["dek_hex"]),
        iv=bytes.fromhex(vector["iv_hex"]),
    )
    assert stored == vector["stored"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["kek_id"] or "untagged")
def test_vectors_match_the_documented_construction(vector):
    """Rebuilt from docs/envelope.md with bare AES-GCM, without any code of the package."""
    kek = base64.b64decode(vector["kek_base64"])
    dek = bytes.fromhex(vector["dek_hex"])
    wrap_iv, iv = bytes.fromhex(vector["wrap_iv_hex"]), bytes.fromhex(vector["iv_hex"])
    context = vector["context"].encode()
    wrap_aad = (
        b"authhero_encrypt env:v1 local wrap\x00" + vector["kek_id"].encode() + b"\x00" + context
    )
    wrapped = wrap_iv + AESGCM(kek).encrypt(wrap_iv, dek, wrap_aad)
    payload_aad = b"authhero_encrypt env:v1 payload\x00" + context
    payload = iv + AESGCM(dek).encrypt(iv, vector["plaintext"].encode(), payload_aad)
    expected = f"env:v1:local:{vector['kek_id']}:{b64url(wrapped)}:{b64url(payload)}"
    assert vector["stored"] == expected


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["kek_id"] or "untagged")
def test_vectors_open(vector):
    assert (
        open_value(resolver(vector_ring(vector)), vector["stored"], vector["context"])
        == (vector["plaintext"])
    )


def flips(text: str):
    """Every text one flipped bit away from ``text`` (the 8 bits of each ASCII character)."""
    for index, char in enumerate(text):
        for bit in range(8):
            yield index, text[:index] + chr(ord(char) ^ (1 << bit)) + text[index + 1 :]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["kek_id"] or "untagged")
def test_every_single_bit_flip_raises(vector):
    resolve = resolver(vector_ring(vector))
    checked = 0
    for index, flipped in flips(vector["stored"]):
        with pytest.raises(DecryptionError) as caught:
            open_value(resolve, flipped, vector["context"])
        assert flipped not in str(caught.value), index
        checked += 1
    assert checked == 8 * len(vector["stored"])


def test_another_context_does_not_open():
    vector = VECTORS[0]
    with pytest.raises(DecryptionError, match="copied from another field"):
        open_value(resolver(vector_ring(vector)), vector["stored"], "testapp.other.pem")


def test_a_payload_moved_under_another_wrapped_key_does_not_open():
    provider = LocalKeyProvider(ring=RING_A)
    first = parse(seal(provider, "first secret!", CONTEXT))
    second = parse(seal(provider, "second secret!", CONTEXT))
    swapped = compose(Envelope("local", "k1", first.wrapped, second.payload))
    with pytest.raises(DecryptionError, match="payload does not authenticate"):
        open_value(resolver(RING_A), swapped, CONTEXT)


def test_each_value_gets_its_own_data_key_and_ivs():
    provider = LocalKeyProvider(ring=RING_A)
    one, two = (parse(seal(provider, "same secret!", CONTEXT)) for _ in range(2))
    assert one.wrapped != two.wrapped
    assert one.payload != two.payload


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("env:v1:", "provider"),
        ("env:v1:Gcp-kms:k1:AAAA:AAAA", "provider name"),
        ("env:v1:gcp kms:k1:AAAA:AAAA", "provider name"),
        ("env:v1:" + "a" * 33 + ":k1:AAAA:AAAA", "provider name"),
        ("env:v1:vault:k 1:AAAA:AAAA", "key id"),
        ("env:v1:local:k1:AAAA", "lacks a field"),
        ("env:v1:local:k!:AAAA:AAAA", "key id"),
        ("env:v1:local:k:1:AAAA:AAAA", "key id"),
        ("env:v1:aws-kms::AAAA:AAAA", "key id"),
        ("env:v1:local:k1::AAAA", "wrapped data key is not canonical"),
        ("env:v1:local:k1:AAAA:", "payload is not canonical"),
        ("env:v1:local:k1:AAAA:AAA=", "payload is not canonical"),
        ("env:v1:local:k1:AAAA:AAAAA", "payload is not canonical"),
        ("env:v1:local:k1:AAAA:AAB", "payload is not canonical"),
        ("env:v1:local:k1:AAAA:AA+A", "payload is not canonical"),
        ("env:v1:local:k1:AAAA:AAAA", "is not 60 bytes"),
        ("env:v1:aws-kms:arn:aws:kms:eu-west-1:1:key/x:AAAA:AAAA", "truncated"),
        ("env:v1:aws-kms:k:" + "A" * 8196 + ":" + "A" * 40, "longer than 6144"),
    ],
)
def test_malformed_values_are_refused_without_echo(text, reason):
    with pytest.raises(DecryptionError, match=reason) as caught:
        parse(text)
    assert len(text) == 7 or text[7:] not in str(caught.value)


def test_a_value_without_the_prefix_is_not_parsed():
    with pytest.raises(DecryptionError, match="not an envelope"):
        parse("enc:v1:AAAA")


def test_the_prefix_is_never_confusable_with_enc_v1():
    assert not PREFIX.startswith(ENC_V1_PREFIX)
    assert not ENC_V1_PREFIX.startswith(PREFIX)
    stored = seal(LocalKeyProvider(ring=RING_A), "x", CONTEXT)
    assert is_envelope(stored)
    assert not stored.startswith(ENC_V1_PREFIX)
    assert not is_envelope("enc:v1:k1:AAAA")
    assert not is_envelope(None)


def test_the_repr_names_no_bytes():
    envelope = parse(VECTORS[0]["stored"])
    assert repr(envelope) == "Envelope(provider='local', key_id='k1')"


def test_a_provider_of_another_name_parses_with_the_generic_key_id_alphabet():
    envelope = parse("env:v1:vault:authhero:v3:" + "A" * 80 + ":" + "A" * 40)
    assert (envelope.provider, envelope.key_id) == ("vault", "authhero:v3")


def test_compose_refuses_what_parse_would_refuse():
    with pytest.raises(ValueError, match="cannot be stored as a provider name"):
        compose(Envelope("Vault", "k", b"x", b"y"))
    with pytest.raises(ValueError, match="cannot be stored"):
        compose(Envelope("vault", "k 1", b"x", b"y"))
    with pytest.raises(ValueError, match="cannot be stored"):
        compose(Envelope("local", "k:1", b"x", b"y"))


@pytest.mark.parametrize("context", ["", "a\x00b"])
def test_a_bad_context_is_a_value_error(context):
    with pytest.raises(ValueError, match="non-empty string without NUL"):
        seal(LocalKeyProvider(ring=RING_A), "x", context)


def test_bad_seams_are_value_errors():
    provider = LocalKeyProvider(ring=RING_A)
    with pytest.raises(ValueError, match="32 bytes"):
        seal(provider, "x", CONTEXT, dek=b"short")
    with pytest.raises(ValueError, match="12 bytes"):
        seal(provider, "x", CONTEXT, iv=b"short")


def test_a_lone_surrogate_cannot_be_sealed():
    with pytest.raises(EncryptionError, match="lone surrogate"):
        seal(LocalKeyProvider(ring=RING_A), "\ud800", CONTEXT)


def test_sealing_without_a_key_is_a_missing_key_error():
    with pytest.raises(MissingKeyError, match="ENCRYPTION_KEY is not set"):
        seal(LocalKeyProvider(ring=build_keyring(None)), "x", CONTEXT)


@given(plaintext=st.text(st.characters(blacklist_categories=["Cs"])))
def test_round_trip(plaintext):
    stored = seal(LocalKeyProvider(ring=RING_A), plaintext, CONTEXT)
    assert parse(stored) == parse(compose(parse(stored)))
    assert compose(parse(stored)) == stored
    assert open_value(resolver(RING_A), stored, CONTEXT) == plaintext


def test_a_key_from_another_ring_does_not_open():
    stored = seal(LocalKeyProvider(ring=RING_A), "x", CONTEXT)
    with pytest.raises(DecryptionError, match="does not open under ring key id 'k1'"):
        open_value(resolver(build_keyring(KEY_B, "k1")), stored, CONTEXT)


DOC = (Path(__file__).parent.parent / "docs" / "envelope.md").read_text("utf-8")


def test_the_documented_vector_is_the_first_vector():
    line = next(line for line in DOC.splitlines() if line.startswith("env:v1:local:k1:"))
    assert VECTORS[0]["stored"].startswith(line.rstrip("…"))
    assert len(line.rstrip("…")) > 100


def test_the_documented_defaults_are_the_defaults(settings):
    from authhero_encrypt.conf import ENVELOPE_SETTINGS, conf

    for name in ENVELOPE_SETTINGS:
        if hasattr(settings, name):
            delattr(settings, name)
        row = next(line for line in DOC.splitlines() if line.startswith(f"| `{name}` |"))
        documented = row.split("|")[2].strip().strip("`")
        assert documented == repr(getattr(conf, name)).replace("'", '"'), name
