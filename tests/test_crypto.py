from __future__ import annotations

import base64
import json
import math
import string
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from authhero_encrypt.crypto import (
    PREFIX,
    decrypt_value,
    decrypt_with,
    encrypt_value,
    encrypt_with,
    is_encrypted,
    parse_stored,
    stored_key_id,
)
from authhero_encrypt.exceptions import (
    DecryptionError,
    EncryptionError,
    InvalidKeyError,
    MissingKeyError,
)
from authhero_encrypt.keys import Key, KeyRing, build_keyring
from tests.keys import KEY_A, KEY_B, KEY_C

VECTORS_DIR = Path(__file__).parent / "vectors"
VECTORS = json.loads((VECTORS_DIR / "authhero-v1-vectors.json").read_text("utf-8"))
FIXED_IV_VECTORS = json.loads(
    (VECTORS_DIR / "authhero-v1-vectors-fixed-iv.json").read_text("utf-8")
)
ALL_VECTORS = VECTORS + FIXED_IV_VECTORS

BYTES_A = bytes(range(32))
KEY_OBJ_A = Key.from_secret(None, BYTES_A)
RING_A = build_keyring(KEY_A)
SAMPLE = "s3cr3t-Client_Secret.123"
URLSAFE = string.ascii_letters + string.digits + "-_"


def vector_id(vector: dict[str, str]) -> str:
    return ascii(vector["plaintext"][:16])


def payload_of(stored: str) -> str:
    return stored.rsplit(":", 1)[1]


def raw_of(stored: str) -> bytes:
    payload = payload_of(stored)
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


def encode(raw: bytes, prefix: str = PREFIX) -> str:
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forbidden_texts(*plaintexts: str) -> list[str]:
    """Text no error message may contain: the plaintexts (when long enough to mean something) and
    every spelling of the test keys."""
    texts = [p for p in plaintexts if len(p) >= 4]
    for key in (KEY_A, KEY_B, KEY_C):
        secret = base64.b64decode(key)
        texts += [key, key.rstrip("="), base64.urlsafe_b64encode(secret).decode().rstrip("=")]
        texts += [secret.hex(), repr(secret)]
    return texts


def decrypt_error(ring: KeyRing, stored: str, *plaintexts: str) -> DecryptionError:
    with pytest.raises(DecryptionError) as info:
        decrypt_with(ring, stored)
    message = str(info.value)
    for text in forbidden_texts(*plaintexts):
        assert text not in message
    payload = stored[len(PREFIX) :]
    if len(payload) >= 8:
        assert payload not in message
    return info.value


# Known-answer vectors, made by AuthHero's own code


def test_vector_files_are_the_expected_ones():
    assert len(VECTORS) == 6
    assert len(FIXED_IV_VECTORS) == 6
    for vector in ALL_VECTORS:
        assert vector["ciphertext"].startswith(PREFIX)
        assert "=" not in vector["ciphertext"]


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=vector_id)
def test_decrypt_vector(vector):
    assert decrypt_with(RING_A, vector["ciphertext"]) == vector["plaintext"]


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=vector_id)
def test_decrypt_vector_through_settings(vector):
    # tests/settings.py sets ENCRYPTION_KEY to the vectors' key.
    assert decrypt_value(vector["ciphertext"]) == vector["plaintext"]


@pytest.mark.parametrize("vector", FIXED_IV_VECTORS, ids=vector_id)
def test_encrypt_fixed_iv_vector_byte_for_byte(vector):
    iv = bytes.fromhex(vector["iv_hex"])
    assert encrypt_with(KEY_OBJ_A, vector["plaintext"], iv=iv) == vector["ciphertext"]


@pytest.mark.parametrize("vector", FIXED_IV_VECTORS, ids=vector_id)
def test_fixed_iv_vector_layout(vector):
    raw = raw_of(vector["ciphertext"])
    assert raw[:12] == bytes.fromhex(vector["iv_hex"])
    assert len(raw) == 12 + len(vector["plaintext"].encode("utf-8")) + 16


@pytest.mark.parametrize("vector", FIXED_IV_VECTORS, ids=vector_id)
def test_encrypt_fixed_iv_vector_keyed(vector):
    iv = bytes.fromhex(vector["iv_hex"])
    stored = encrypt_with(KEY_OBJ_A, vector["plaintext"], iv=iv, prefix="enc:v1:k1:")
    assert stored == "enc:v1:k1:" + vector["ciphertext"][len(PREFIX) :]


def test_encrypt_with_rejects_a_wrong_iv_length():
    for size in (0, 11, 13, 16):
        with pytest.raises(ValueError, match=f"iv must be 12 bytes, got {size}"):
            encrypt_with(KEY_OBJ_A, "x", iv=bytes(size))


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=vector_id)
def test_decrypt_padded_vector(vector):
    stored = vector["ciphertext"]
    padded = stored + "=" * (-len(payload_of(stored)) % 4)
    assert decrypt_with(RING_A, padded) == vector["plaintext"]


def test_some_vectors_need_padding():
    # Otherwise the padded test above would prove nothing.
    assert any(len(payload_of(v["ciphertext"])) % 4 for v in ALL_VECTORS)


@pytest.mark.parametrize("extra", ["=", "===", "===="])
def test_excess_padding_is_refused(extra):
    stored = FIXED_IV_VECTORS[0]["ciphertext"]
    padded = stored + "=" * (-len(payload_of(stored)) % 4)
    decrypt_error(RING_A, padded + extra, SAMPLE)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=vector_id)
def test_decrypt_keyed_vector(vector):
    keyed = "enc:v1:k1:" + vector["ciphertext"][len(PREFIX) :]
    ring = build_keyring(KEY_A, "k1")
    assert decrypt_with(ring, keyed) == vector["plaintext"]
    assert stored_key_id(keyed) == "k1"


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=vector_id)
def test_decrypt_empty_key_id_reads_as_untagged(vector):
    stored = "enc:v1::" + vector["ciphertext"][len(PREFIX) :]
    assert stored_key_id(stored) is None
    assert decrypt_with(RING_A, stored) == vector["plaintext"]
    # Untagged, so it is tried against fallbacks too.
    ring = build_keyring(KEY_B, "b", [f"a:{KEY_A}"])
    assert decrypt_with(ring, stored) == vector["plaintext"]


# Legacy plaintext


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain secret",
        "Enc:v1:" + VECTORS[0]["ciphertext"][len(PREFIX) :],
        "ENC:V1:" + VECTORS[0]["ciphertext"][len(PREFIX) :],
        "enc:v2:" + VECTORS[0]["ciphertext"][len(PREFIX) :],
        "enc:v1" + VECTORS[0]["ciphertext"][len(PREFIX) :],
        " " + VECTORS[0]["ciphertext"],
        "prefix-enc:v1:-suffix",
        "enc:",
        "k1:" + KEY_A,
        "before\x00after",
        "🔐 秘密",
    ],
)
def test_legacy_plaintext_is_returned_unchanged(value):
    assert decrypt_with(RING_A, value) == value
    assert decrypt_value(value) == value
    assert decrypt_with(build_keyring(None), value) == value
    assert not is_encrypted(value)


# Which keys open which values


def test_untagged_value_tries_active_then_each_fallback():
    stored = VECTORS[0]["ciphertext"]
    for fallbacks in ([KEY_A], [KEY_C, KEY_A], [KEY_C, f"old:{KEY_A}"], [f"x:{KEY_C}", KEY_A]):
        ring = build_keyring(KEY_B, None, fallbacks)
        assert decrypt_with(ring, stored) == SAMPLE
    assert decrypt_with(build_keyring(KEY_B, "b", [KEY_A]), stored) == SAMPLE


def test_untagged_value_opens_with_fallbacks_only():
    assert (
        decrypt_with(build_keyring(None, None, [KEY_C, KEY_A]), VECTORS[0]["ciphertext"]) == SAMPLE
    )


def test_untagged_value_with_no_matching_key():
    error = decrypt_error(build_keyring(KEY_B, None, [KEY_C]), VECTORS[0]["ciphertext"], SAMPLE)
    assert type(error) is DecryptionError
    assert error.key_id is None
    assert "2 configured key(s)" in str(error)
    assert isinstance(error.__cause__, InvalidTag)


def test_tagged_value_uses_its_own_key():
    key_a = Key.from_secret("a", BYTES_A)
    stored = encrypt_with(key_a, "hello", prefix="enc:v1:a:")
    ring = build_keyring(KEY_B, "b", [KEY_C, f"a:{KEY_A}"])
    assert decrypt_with(ring, stored) == "hello"


def test_tagged_value_does_not_try_other_keys():
    # Written by key A but tagged "b": key A is configured (active and untagged fallback) yet must
    # not be tried, because the tag says which key the value belongs to.
    stored = "enc:v1:b:" + VECTORS[0]["ciphertext"][len(PREFIX) :]
    ring = build_keyring(KEY_A, None, [f"b:{KEY_B}"])
    error = decrypt_error(ring, stored, SAMPLE)
    assert error.key_id == "b"
    assert "'b'" in str(error)
    assert isinstance(error.__cause__, InvalidTag)
    ring = build_keyring(KEY_A, "a", [f"b:{KEY_B}"])
    assert decrypt_error(ring, stored, SAMPLE).key_id == "b"


def test_untagged_key_does_not_open_a_value_tagged_with_an_unknown_id():
    stored = "enc:v1:2024-q3:" + VECTORS[0]["ciphertext"][len(PREFIX) :]
    error = decrypt_error(RING_A, stored, SAMPLE)
    assert not isinstance(error, MissingKeyError)
    assert error.key_id == "2024-q3"
    assert "'2024-q3'" in str(error)
    assert "ENCRYPTION_KEY_FALLBACKS" in str(error)


def test_unknown_key_id_with_other_ids_configured():
    stored = "enc:v1:gone:" + VECTORS[0]["ciphertext"][len(PREFIX) :]
    error = decrypt_error(build_keyring(KEY_A, "a", [f"b:{KEY_B}"]), stored, SAMPLE)
    assert error.key_id == "gone"
    assert "'gone'" in str(error)


def test_wrong_key():
    error = decrypt_error(build_keyring(KEY_B), VECTORS[0]["ciphertext"], SAMPLE)
    assert error.key_id is None
    assert isinstance(error.__cause__, InvalidTag)


def test_wrong_key_tagged():
    stored = "enc:v1:k:" + VECTORS[0]["ciphertext"][len(PREFIX) :]
    error = decrypt_error(build_keyring(KEY_B, "k"), stored, SAMPLE)
    assert error.key_id == "k"
    assert "'k'" in str(error)
    assert isinstance(error.__cause__, InvalidTag)


@pytest.mark.parametrize("key", [None, ""])
def test_key_unset_needs_a_key(key):
    ring = build_keyring(key)
    error = decrypt_error(ring, VECTORS[0]["ciphertext"], SAMPLE)
    assert isinstance(error, MissingKeyError)
    assert error.key_id is None
    assert "ENCRYPTION_KEY is not set" in str(error)
    with pytest.raises(MissingKeyError, match="ENCRYPTION_KEY is not set"):
        encrypt_value("x", ring)


def test_key_unset_tagged_value_names_its_key_id():
    stored = "enc:v1:k7:" + VECTORS[0]["ciphertext"][len(PREFIX) :]
    error = decrypt_error(build_keyring(None), stored, SAMPLE)
    assert isinstance(error, MissingKeyError)
    assert error.key_id == "k7"
    assert "'k7'" in str(error)


@override_settings(ENCRYPTION_KEY=None)
def test_key_unset_in_settings():
    with pytest.raises(MissingKeyError, match="ENCRYPTION_KEY is not set"):
        decrypt_value(VECTORS[0]["ciphertext"])
    with pytest.raises(MissingKeyError, match="ENCRYPTION_KEY is not set"):
        encrypt_value(SAMPLE)
    assert decrypt_value("legacy") == "legacy"


def test_missing_key_error_is_a_decryption_error():
    assert issubclass(MissingKeyError, DecryptionError)
    assert issubclass(DecryptionError, EncryptionError)


# Tampering


def test_every_bit_flip_of_the_payload_is_refused():
    stored = encrypt_with(KEY_OBJ_A, SAMPLE)
    raw = raw_of(stored)
    assert len(raw) == 12 + len(SAMPLE) + 16
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            error = decrypt_error(RING_A, encode(bytes(flipped)), SAMPLE)
            assert isinstance(error.__cause__, InvalidTag)


def test_every_bit_flip_of_a_keyed_payload_is_refused():
    ring = build_keyring(KEY_A, "k1", [KEY_B])
    stored = encrypt_value(SAMPLE, ring)
    assert stored.startswith("enc:v1:k1:")
    raw = raw_of(stored)
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            assert decrypt_error(ring, encode(bytes(flipped), "enc:v1:k1:"), SAMPLE).key_id == "k1"


def test_every_character_substitution_in_the_payload_is_refused():
    # Includes the last character, whose unused low bits a lenient decoder would ignore.
    stored = encrypt_with(KEY_OBJ_A, SAMPLE)
    start = len(PREFIX)
    assert (len(stored) - start) % 4 != 0
    for index in range(start, len(stored)):
        for char in URLSAFE:
            if char == stored[index]:
                continue
            decrypt_error(RING_A, stored[:index] + char + stored[index + 1 :], SAMPLE)


def test_every_bit_flip_of_a_payload_character_is_refused():
    stored = encrypt_with(KEY_OBJ_A, SAMPLE)
    for index in range(len(PREFIX), len(stored)):
        for bit in range(7):
            char = chr(ord(stored[index]) ^ (1 << bit))
            decrypt_error(RING_A, stored[:index] + char + stored[index + 1 :], SAMPLE)


def test_bit_flips_in_the_prefix_give_back_the_stored_text():
    # A damaged prefix makes the value legacy plaintext: the stored text comes back as is, which
    # is never the secret.
    stored = encrypt_with(KEY_OBJ_A, SAMPLE)
    for index in range(len(PREFIX)):
        for bit in range(7):
            tampered = stored[:index] + chr(ord(stored[index]) ^ (1 << bit)) + stored[index + 1 :]
            assert decrypt_with(RING_A, tampered) == tampered
            assert SAMPLE not in tampered


def test_swapped_iv_is_refused():
    one, two = encrypt_with(KEY_OBJ_A, SAMPLE), encrypt_with(KEY_OBJ_A, SAMPLE)
    raw_one, raw_two = raw_of(one), raw_of(two)
    decrypt_error(RING_A, encode(raw_two[:12] + raw_one[12:]), SAMPLE)


def test_every_truncation_of_the_decoded_payload_is_refused():
    raw = raw_of(encrypt_with(KEY_OBJ_A, SAMPLE))
    for size in range(len(raw)):
        error = decrypt_error(RING_A, encode(raw[:size]), SAMPLE)
        if size < 28:
            assert "truncated" in str(error)
            assert f"{size} bytes" in str(error)


def test_every_truncation_of_the_text_is_refused():
    stored = encrypt_with(KEY_OBJ_A, SAMPLE)
    for end in range(len(PREFIX), len(stored)):
        decrypt_error(RING_A, stored[:end], SAMPLE)


def test_extended_payload_is_refused():
    stored = encrypt_with(KEY_OBJ_A, SAMPLE)
    decrypt_error(RING_A, encode(raw_of(stored) + b"\x00"), SAMPLE)
    for char in "AAAA", "Zm9v":
        decrypt_error(RING_A, stored + char, SAMPLE)


@pytest.mark.parametrize("length", [1, 5, 41, 65, 69])
def test_payload_of_length_one_mod_four(length):
    payload = payload_of(encrypt_with(KEY_OBJ_A, SAMPLE))
    assert len(payload) >= length
    error = decrypt_error(RING_A, PREFIX + payload[:length], SAMPLE)
    assert "base64url" in str(error)


def test_payload_of_length_one_mod_four_keyed():
    payload = payload_of(encrypt_with(KEY_OBJ_A, SAMPLE))[:65]
    assert decrypt_error(build_keyring(KEY_A, "k"), f"enc:v1:k:{payload}", SAMPLE).key_id == "k"


@pytest.mark.parametrize("stored", ["enc:v1:", "enc:v1::", "enc:v1:k1:"])
def test_bare_prefix_is_refused(stored):
    error = decrypt_error(RING_A, stored)
    assert "truncated" in str(error)
    assert "0 bytes" in str(error)


@pytest.mark.parametrize("bad", ["+", "/", "!", " ", "\n", ".", "é", "\x00", "=A", "%3D"])
def test_non_base64url_characters_are_refused(bad):
    stored = encrypt_with(KEY_OBJ_A, SAMPLE)
    middle = len(PREFIX) + 10
    error = decrypt_error(RING_A, stored[:middle] + bad + stored[middle:], SAMPLE)
    assert "base64url" in str(error)


def test_standard_alphabet_payload_is_refused():
    # AuthHero writes base64url; a '+' or '/' means the value came from somewhere else.
    for n in range(200):
        stored = encrypt_with(KEY_OBJ_A, f"value {n}")
        payload = payload_of(stored)
        if "-" in payload or "_" in payload:
            standard = PREFIX + payload.replace("-", "+").replace("_", "/")
            assert "base64url" in str(decrypt_error(RING_A, standard))
            return
    pytest.fail("no payload held '-' or '_'")


@pytest.mark.parametrize(
    "stored",
    [
        "enc:v1:a:b:" + VECTORS[0]["ciphertext"][len(PREFIX) :],
        "enc:v1:k1:" + VECTORS[0]["ciphertext"][len(PREFIX) :] + ":",
    ],
)
def test_extra_colons_are_refused(stored):
    # Both ids name the key that wrote the payload, so only the format can refuse it.
    decrypt_error(build_keyring(KEY_A, "a", [f"k1:{KEY_A}"]), stored, SAMPLE)


@pytest.mark.parametrize("key_id", ["my secret password", "k.1", "clé", "a\nb", "hunter2!"])
def test_malformed_stored_key_id_is_refused_without_echo(key_id):
    stored = f"enc:v1:{key_id}:" + VECTORS[0]["ciphertext"][len(PREFIX) :]
    for ring in (RING_A, build_keyring(None)):
        error = decrypt_error(ring, stored, SAMPLE)
        assert key_id not in str(error)
        assert error.key_id is None


def test_non_utf8_plaintext_is_refused():
    iv = bytes(12)
    stored = encode(iv + AESGCM(BYTES_A).encrypt(iv, b"\xff\xfe secret", None))
    error = decrypt_error(RING_A, stored, "secret")
    assert "UTF-8" in str(error)
    assert isinstance(error.__cause__, UnicodeDecodeError)


def test_associated_data_is_not_accepted():
    # AuthHero uses no associated data; a value sealed with some must not open.
    iv = bytes(12)
    stored = encode(iv + AESGCM(BYTES_A).encrypt(iv, SAMPLE.encode(), b"enc:v1:"))
    decrypt_error(RING_A, stored, SAMPLE)


# Messages


def test_no_error_message_contains_the_plaintext_or_a_key():
    plaintext = "TOP-SECRET-client-secret-value"
    stored = encrypt_with(KEY_OBJ_A, plaintext)
    raw = raw_of(stored)
    cases = [
        (build_keyring(KEY_B, None, [KEY_C]), stored),
        (build_keyring(KEY_B, "b"), "enc:v1:b:" + payload_of(stored)),
        (RING_A, "enc:v1:zz:" + payload_of(stored)),
        (build_keyring(None), stored),
        (RING_A, encode(raw[:-1])),
        (RING_A, encode(raw[:20])),
        (RING_A, stored + "!"),
        (RING_A, stored[:-1] + ("A" if stored[-1] != "A" else "B")),
    ]
    for ring, value in cases:
        error = decrypt_error(ring, value, plaintext)
        text = f"{error!s} {error!r} {error.args!r}"
        for forbidden in forbidden_texts(plaintext):
            assert forbidden not in text


def test_lone_surrogate_cannot_be_encrypted():
    for value in ("\ud800", "ok\udfffok", "🔐\udc00"):
        with pytest.raises(EncryptionError) as info:
            encrypt_with(KEY_OBJ_A, value)
        assert not isinstance(info.value, DecryptionError)
        assert "surrogate" in str(info.value)
        assert isinstance(info.value.__cause__, UnicodeEncodeError)
        assert value not in str(info.value)
    with pytest.raises(EncryptionError, match="surrogate"):
        encrypt_value("bad\ud800value")


# Unicode and size


UNICODE_VALUES = [
    "🔐🗝️👩‍👩‍👧‍👦",  # astral emoji, variation selector, ZWJ sequence
    "秘密の鍵 密钥 비밀",
    "e\u0301 n\u0303 Z\u0324\u0354\u0367\u0311",  # combining marks
    "\u00e9 vs e\u0301",  # precomposed and decomposed must both survive unnormalised
    "before\x00after",
    "\x00",
    "\ufeffBOM",
    "مرحبا שלום",
    "\U0010ffff\U00010000",
    "tab\there\r\nnewline",
    "enc:v1:" + VECTORS[0]["ciphertext"][len(PREFIX) :],  # a plaintext that looks encrypted
    "",
]


@pytest.mark.parametrize("value", UNICODE_VALUES, ids=ascii)
def test_unicode_round_trip(value):
    stored = encrypt_with(KEY_OBJ_A, value)
    assert decrypt_with(RING_A, stored) == value
    raw = raw_of(stored)
    assert len(raw) == 12 + len(value.encode("utf-8")) + 16


@pytest.mark.parametrize("value", ["x" * 10_000, "🔐" * 10_000, "é" * 10_000, "秘" * 10_000])
def test_ten_thousand_characters(value):
    stored = encrypt_value(value)
    assert decrypt_value(stored) == value
    size = 12 + len(value.encode("utf-8")) + 16
    assert len(stored) == len(PREFIX) + math.ceil(size * 4 / 3)
    assert value[:50] not in stored


def test_precomposed_and_decomposed_stay_distinct():
    one, two = "\u00e9", "e\u0301"
    assert decrypt_with(RING_A, encrypt_with(KEY_OBJ_A, one)) == one
    assert decrypt_with(RING_A, encrypt_with(KEY_OBJ_A, two)) == two


# Properties


@given(st.text())
def test_round_trip_untagged(value):
    stored = encrypt_value(value, RING_A)
    assert stored.startswith(PREFIX)
    assert stored_key_id(stored) is None
    assert decrypt_with(RING_A, stored) == value


@given(st.text(), st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_round_trip_keyed(value, key_id):
    ring = build_keyring(KEY_A, key_id)
    stored = encrypt_value(value, ring)
    assert stored.startswith(f"enc:v1:{key_id}:")
    assert stored_key_id(stored) == key_id
    assert decrypt_with(ring, stored) == value


@given(st.text(), st.booleans())
def test_round_trip_through_fallbacks(value, tagged):
    old = build_keyring(KEY_A, "old" if tagged else None)
    stored = encrypt_value(value, old)
    new = build_keyring(KEY_B, "new", [KEY_C, f"old:{KEY_A}" if tagged else KEY_A])
    assert decrypt_with(new, stored) == value
    assert decrypt_with(new, encrypt_value(value, new)) == value


@given(st.binary(max_size=200))
def test_random_payloads_never_decrypt(raw):
    with pytest.raises(DecryptionError):
        decrypt_with(RING_A, encode(raw))


@given(st.text(alphabet=URLSAFE + "=+/:!", max_size=120))
def test_random_prefixed_text_never_returns_text(payload):
    with pytest.raises(DecryptionError):
        decrypt_with(RING_A, PREFIX + payload)


# Helpers and the write side


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("enc:v1:", True),
        ("enc:v1:abc", True),
        ("enc:v1:k1:abc", True),
        (VECTORS[0]["ciphertext"], True),
        ("Enc:v1:abc", False),
        ("enc:v1", False),
        (" enc:v1:abc", False),
        ("prefix-enc:v1:-suffix", False),
        ("", False),
        (None, False),
        (b"enc:v1:abc", False),
        (42, False),
    ],
)
def test_is_encrypted(value, expected):
    assert is_encrypted(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("enc:v1:abc", None),
        ("enc:v1::abc", None),
        ("enc:v1:k1:abc", "k1"),
        ("enc:v1:2026-11:", "2026-11"),
        ("legacy:text with colons", None),
        ("abcdefgh:ij", None),
        ("Enc:v1:k1:abc", None),
    ],
)
def test_stored_key_id(value, expected):
    assert stored_key_id(value) == expected


def test_each_encryption_uses_a_fresh_iv():
    values = [encrypt_with(KEY_OBJ_A, SAMPLE) for _ in range(200)]
    assert len(set(values)) == 200
    assert len({raw_of(v)[:12] for v in values}) == 200
    assert encrypt_value(SAMPLE) != encrypt_value(SAMPLE)


def test_ciphertext_does_not_contain_the_plaintext():
    stored = encrypt_value(SAMPLE)
    assert SAMPLE not in stored
    assert base64.urlsafe_b64encode(SAMPLE.encode()).decode()[:16] not in stored


def test_encrypt_value_uses_the_settings():
    with override_settings(ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_ID="k2"):
        stored = encrypt_value(SAMPLE)
        assert stored.startswith("enc:v1:k2:")
        assert decrypt_value(stored) == SAMPLE
    with pytest.raises(DecryptionError, match="'k2'"):
        decrypt_value(stored)
    with override_settings(ENCRYPTION_KEY=KEY_C, ENCRYPTION_KEY_FALLBACKS=[f"k2:{KEY_B}"]):
        assert decrypt_value(stored) == SAMPLE
        assert encrypt_value(SAMPLE).startswith("enc:v1:") is True
        assert stored_key_id(encrypt_value(SAMPLE)) is None


def test_encrypt_value_output_is_readable_by_the_reference_rules():
    # Decode by hand, as AuthHero would: base64url without padding, iv || ciphertext || tag.
    stored = encrypt_value(SAMPLE)
    payload = stored[len(PREFIX) :]
    assert "=" not in payload
    assert set(payload) <= set(URLSAFE)
    raw = raw_of(stored)
    assert AESGCM(BYTES_A).decrypt(raw[:12], raw[12:], None) == SAMPLE.encode()


# Padded payloads (ENCRYPTION_PAD_PAYLOAD), for AuthHero 5.13 to 8.22.0


def padded(stored: str) -> str:
    return stored + "=" * (-len(payload_of(stored)) % 4)


def test_the_fixed_iv_vectors_need_padding():
    # Otherwise the padded tests below would prove nothing.
    assert any(padded(v["ciphertext"]) != v["ciphertext"] for v in FIXED_IV_VECTORS)


@pytest.mark.parametrize("vector", FIXED_IV_VECTORS, ids=vector_id)
@pytest.mark.parametrize("prefix", [PREFIX, "enc:v1:k1:"])
def test_encrypt_fixed_iv_vector_padded(vector, prefix):
    iv = bytes.fromhex(vector["iv_hex"])
    stored = encrypt_with(KEY_OBJ_A, vector["plaintext"], iv=iv, prefix=prefix, pad=True)
    assert stored == padded(prefix + vector["ciphertext"][len(PREFIX) :])
    assert len(payload_of(stored)) % 4 == 0
    assert decrypt_with(RING_A, padded(vector["ciphertext"])) == vector["plaintext"]


@given(st.text(), st.booleans())
def test_padded_round_trip(value, tagged):
    ring = build_keyring(KEY_A, "k1" if tagged else None, pad_payload=True)
    stored = encrypt_value(value, ring)
    payload = payload_of(stored)
    assert len(payload) % 4 == 0
    assert payload.rstrip("=") == base64.urlsafe_b64encode(raw_of(stored)).decode().rstrip("=")
    assert decrypt_with(ring, stored) == value
    # Both forms are read, whatever the setting.
    assert decrypt_with(build_keyring(KEY_A, "k1" if tagged else None), stored) == value


def test_padded_output_is_readable_by_a_decoder_that_requires_padding():
    # AuthHero 5.13 to 8.22.0 decode with atob after swapping the alphabet: '=' is required.
    with override_settings(ENCRYPTION_PAD_PAYLOAD=True):
        stored = encrypt_value(SAMPLE)
    raw = base64.b64decode(payload_of(stored).translate(str.maketrans("-_", "+/")), validate=True)
    assert AESGCM(BYTES_A).decrypt(raw[:12], raw[12:], None) == SAMPLE.encode()


def test_pad_payload_setting_is_read_on_every_change():
    assert "=" not in encrypt_value(SAMPLE)  # SAMPLE's payload needs padding (58 bytes)
    with override_settings(ENCRYPTION_PAD_PAYLOAD=True):
        assert encrypt_value(SAMPLE).endswith("=")
        assert decrypt_value(encrypt_value(SAMPLE)) == SAMPLE
    with override_settings(ENCRYPTION_PAD_PAYLOAD=False):
        assert "=" not in encrypt_value(SAMPLE)
    assert "=" not in encrypt_value(SAMPLE)


@pytest.mark.parametrize("value", ["yes", 1, None, "True"])
def test_pad_payload_setting_must_be_a_bool(value):
    with (
        override_settings(ENCRYPTION_PAD_PAYLOAD=value),
        pytest.raises(InvalidKeyError, match=r"^ENCRYPTION_PAD_PAYLOAD must be True or False"),
    ):
        encrypt_value(SAMPLE)


# Key ids longer than 64 characters, which AuthHero writes


@pytest.mark.parametrize("length", [65, 200, 1000])
def test_long_key_id_written_by_authhero_is_read(length):
    key_id = ("k-" * length)[:length]
    stored = encrypt_with(KEY_OBJ_A, SAMPLE, prefix=f"enc:v1:{key_id}:")
    assert stored_key_id(stored) == key_id
    assert parse_stored(stored) == (key_id, raw_of(stored))
    ring = build_keyring(KEY_B, "new", [f"{key_id}:{KEY_A}"])
    assert decrypt_with(ring, stored) == SAMPLE
    # Not configured: the error names the (well-formed) id to add, as for any other id.
    error = decrypt_error(build_keyring(KEY_B, "new"), stored, SAMPLE)
    assert error.key_id == key_id


# parse_stored


@pytest.mark.parametrize(
    "stored",
    [
        "enc:v1:Str0ng-Passw0rd_LEAKME:x",
        "enc:v1:Str0ng-Passw0rd_LEAKME",
        "enc:v1:my secret:" + VECTORS[0]["ciphertext"][len(PREFIX) :],
        "enc:v1:k1:" + "A" * 36,  # 27 bytes: shorter than an IV and a tag
        "enc:v1:k1:" + VECTORS[0]["ciphertext"][len(PREFIX) :] + "=",
        "enc:v1:",
        "legacy plaintext",
    ],
)
def test_parse_stored_refuses_malformed_values_without_echo(stored):
    with pytest.raises(DecryptionError) as info:
        parse_stored(stored)
    assert "LEAKME" not in str(info.value)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=vector_id)
def test_parse_stored_accepts_what_authhero_writes(vector):
    stored = vector["ciphertext"]
    assert parse_stored(stored) == (None, raw_of(stored))
    assert parse_stored(padded(stored)) == (None, raw_of(stored))
    assert parse_stored("enc:v1::" + stored[len(PREFIX) :]) == (None, raw_of(stored))
    assert parse_stored("enc:v1:2026-11:" + stored[len(PREFIX) :]) == ("2026-11", raw_of(stored))
