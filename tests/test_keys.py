from __future__ import annotations

import base64
import re
import secrets

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.test import override_settings

from authhero_encrypt import keys
from authhero_encrypt.crypto import decrypt_with, encrypt_value, encrypt_with
from authhero_encrypt.exceptions import EncryptionError, InvalidKeyError
from authhero_encrypt.keys import (
    KEY_ID_MAX_LENGTH,
    Key,
    KeyRing,
    build_keyring,
    fallback_entries,
    fingerprint,
    get_keyring,
    load_encryption_key,
    parse_fallback,
    parse_key_id,
)
from tests.keys import KEY_A, KEY_B, KEY_C

BYTES_A = bytes(range(32))
BYTES_B = bytes(range(32, 64))
BYTES_C = bytes(range(64, 96))
GENERATE_HINT = "Generate one with: openssl rand -base64 32"


def key_spellings(secret: bytes) -> list[str]:
    """Every way the key text could leak into a message."""
    standard = base64.b64encode(secret).decode()
    urlsafe = base64.urlsafe_b64encode(secret).decode()
    return [
        standard,
        standard.rstrip("="),
        urlsafe,
        urlsafe.rstrip("="),
        secret.hex(),
        repr(secret),
    ]


def refusal(text: object, **kwargs: str) -> str:
    with pytest.raises(InvalidKeyError) as info:
        load_encryption_key(text, **kwargs)
    return str(info.value)


# load_encryption_key: accepted spellings


def test_load_standard_padded():
    assert KEY_A.endswith("=")
    assert load_encryption_key(KEY_A) == BYTES_A


def test_load_standard_unpadded():
    assert load_encryption_key(KEY_A.rstrip("=")) == BYTES_A


@pytest.mark.parametrize("text", [f" {KEY_A}", f"{KEY_A}\n", f"\t {KEY_A} \r\n", f"\n{KEY_A}  "])
def test_load_strips_surrounding_whitespace(text):
    assert load_encryption_key(text) == BYTES_A


def test_load_unpadded_with_whitespace():
    assert load_encryption_key(f"  {KEY_B.rstrip('=')}\n") == BYTES_B


def test_load_standard_alphabet_with_plus_and_slash():
    # 0xfb 0xff ... encodes to text full of '+' and '/', the characters url-safe base64 replaces.
    secret = bytes([0xFB, 0xFF, 0xBF] * 10 + [0xFB, 0xFF])
    text = base64.b64encode(secret).decode()
    assert "+" in text
    assert "/" in text
    assert load_encryption_key(text) == secret


def test_load_urlsafe_alphabet():
    secret = bytes([0xFB, 0xFF, 0xBF] * 10 + [0xFB, 0xFF])
    text = base64.urlsafe_b64encode(secret).decode()
    assert "-" in text
    assert "_" in text
    assert load_encryption_key(text) == secret
    assert load_encryption_key(text.rstrip("=")) == secret


def test_load_fernet_generated_key():
    text = Fernet.generate_key().decode()
    assert load_encryption_key(text) == base64.urlsafe_b64decode(text)


def test_load_token_urlsafe_key():
    for _ in range(20):
        text = secrets.token_urlsafe(32)
        assert len(text) == 43
        assert load_encryption_key(text) == base64.urlsafe_b64decode(text + "=")


def test_load_random_openssl_style_keys():
    for _ in range(20):
        secret = secrets.token_bytes(32)
        assert load_encryption_key(base64.b64encode(secret).decode()) == secret


# load_encryption_key: refusals


@pytest.mark.parametrize("size", [16, 24, 31, 33, 48, 64])
def test_wrong_length_is_refused_with_the_byte_count(size):
    text = base64.b64encode(bytes(range(size))).decode()
    message = refusal(text)
    assert f"ENCRYPTION_KEY must decode to 32 bytes (got {size})." in message
    assert GENERATE_HINT in message
    assert text not in message
    assert text.rstrip("=") not in message


def test_wrong_length_message_is_exact():
    text = base64.b64encode(bytes(range(48))).decode()
    assert refusal(text) == (
        "ENCRYPTION_KEY must decode to 32 bytes (got 48). "
        "Generate one with: openssl rand -base64 32"
    )


def test_wrong_length_unpadded_and_urlsafe():
    text = base64.urlsafe_b64encode(bytes([0xFB] * 20)).decode().rstrip("=")
    assert "(got 20)" in refusal(text)


HEX_KEY = bytes(range(200, 232)).hex()


@pytest.mark.parametrize("hex_text", [HEX_KEY, HEX_KEY.upper()])
def test_hex_key_gets_a_hex_hint(hex_text):
    message = refusal(hex_text)
    assert "(got 48)" in message
    assert "hex" in message
    assert GENERATE_HINT in message
    assert hex_text not in message
    assert hex_text.lower() not in message


def test_hex_hint_survives_surrounding_whitespace():
    hex_text = secrets.token_hex(32)
    assert "hex" in refusal(f"  {hex_text}\n")


def test_non_hex_48_bytes_gets_no_hex_hint():
    assert "hex" not in refusal(base64.b64encode(bytes(range(48))).decode())


def test_hex_of_wrong_length_gets_no_hex_hint():
    # 62 hex digits are not "32 bytes written as hex", so the hint would mislead.
    message = refusal(secrets.token_hex(31))
    assert "(got 46)" in message
    assert "hex" not in message


@pytest.mark.parametrize(
    "text",
    [
        "not a key",
        "!!!!" + KEY_A,
        KEY_A[:20] + " " + KEY_A[20:],
        KEY_A[:-2] + "$=",
        KEY_A.replace("A", "é", 1),
        "A" * 45,  # 45 characters: 1 mod 4, which no base64 text can be
        "abc=def" + KEY_A[7:],
        "enc:v1:" + KEY_A,
    ],
)
def test_non_base64_is_refused(text):
    message = refusal(text)
    assert message == f"ENCRYPTION_KEY is not valid base64 text. {GENERATE_HINT}"
    assert text.strip() not in message


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "=", "===="])
def test_empty_is_refused(text):
    assert refusal(text) == f"ENCRYPTION_KEY is empty. {GENERATE_HINT}"


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (BYTES_A, "bytes"),
        (KEY_A.encode(), "bytes"),
        (None, "NoneType"),
        (42, "int"),
        ([KEY_A], "list"),
    ],
)
def test_non_string_is_refused(value, type_name):
    message = refusal(value)
    assert message.startswith("ENCRYPTION_KEY must be a string")
    assert f"not {type_name}." in message
    assert GENERATE_HINT in message
    for spelling in key_spellings(BYTES_A):
        assert spelling not in message


def test_refusal_names_the_setting_it_was_given():
    message = refusal(base64.b64encode(bytes(16)).decode(), setting="MY_KEY")
    assert message.startswith("MY_KEY must decode to 32 bytes (got 16).")


def test_invalid_key_error_is_a_value_error_and_an_encryption_error():
    with pytest.raises(ValueError, match="got 16"):
        load_encryption_key(base64.b64encode(bytes(16)).decode())
    assert issubclass(InvalidKeyError, EncryptionError)


def test_no_refusal_ever_contains_the_key_text():
    secret = secrets.token_bytes(48)
    candidates = [
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        secret.hex(),
        base64.b64encode(secret[:31]).decode(),
        base64.b64encode(secret[:33]).decode(),
        base64.b64encode(secret[:32]).decode() + "!",
        " " + base64.b64encode(secret[:32]).decode()[:-3] + "\n",
    ]
    for text in candidates:
        message = refusal(text)
        assert text.strip() not in message
        assert text.strip().rstrip("=") not in message
        for spelling in key_spellings(secret[:32]):
            assert spelling.rstrip("=") not in message


# parse_key_id


@pytest.mark.parametrize("value", [None, ""])
def test_key_id_absent(value):
    assert parse_key_id(value) is None


@pytest.mark.parametrize(
    "value", ["a", "2026-11", "prod_key-1", "ABC_xyz-09", "0", "-", "_", "k" * KEY_ID_MAX_LENGTH]
)
def test_key_id_valid(value):
    assert parse_key_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "a b",
        "a:b",
        "key.1",
        "clé",
        "k1\n",
        " k1",
        "k/1",
        "k+1",
        "k" * (KEY_ID_MAX_LENGTH + 1),
    ],
)
def test_key_id_invalid(value):
    with pytest.raises(InvalidKeyError) as info:
        parse_key_id(value)
    message = str(info.value)
    assert message.startswith("ENCRYPTION_KEY_ID must be 1 to 64 characters of A-Z, a-z, 0-9")
    assert f"(got {len(value)} characters" in message


def test_key_id_too_long_says_why_and_where_a_long_id_goes():
    with pytest.raises(InvalidKeyError) as info:
        parse_key_id("k" * 65)
    message = str(info.value)
    assert "columns of EncryptedCharField are sized for ids of up to 64 characters" in message
    assert "ENCRYPTION_KEY_FALLBACKS" in message


@pytest.mark.parametrize("length", [65, 300])
def test_fallback_key_id_of_any_length_is_accepted(length):
    # AuthHero writes ids of any length; a fallback is only read with.
    key_id = "k" * length
    assert parse_fallback(f"{key_id}:{KEY_B}", 0) == (key_id, BYTES_B)
    assert parse_key_id(key_id, max_length=None) == key_id
    with pytest.raises(InvalidKeyError, match=r"must be 1 or more characters of A-Z"):
        parse_key_id(key_id + "!", max_length=None)


def test_key_id_too_long_is_not_said_to_hold_other_characters():
    with pytest.raises(InvalidKeyError) as info:
        parse_key_id("k" * 65)
    assert "with others" not in str(info.value)


@pytest.mark.parametrize(("value", "type_name"), [(5, "int"), (b"k1", "bytes"), (["k1"], "list")])
def test_key_id_not_a_string(value, type_name):
    with pytest.raises(
        InvalidKeyError, match=f"^ENCRYPTION_KEY_ID must be a string, not {type_name}"
    ):
        parse_key_id(value)


def test_key_id_error_names_the_given_setting():
    with pytest.raises(InvalidKeyError, match=r"^OTHER_SETTING must be"):
        parse_key_id("a b", setting="OTHER_SETTING")


# parse_fallback


def test_fallback_untagged():
    assert parse_fallback(KEY_B, 0) == (None, BYTES_B)


def test_fallback_untagged_unpadded_with_whitespace():
    assert parse_fallback(f" {KEY_B.rstrip('=')}\n", 0) == (None, BYTES_B)


def test_fallback_tagged():
    assert parse_fallback(f"2025-01:{KEY_B}", 0) == ("2025-01", BYTES_B)


def test_fallback_tagged_urlsafe_key():
    text = Fernet.generate_key().decode()
    assert parse_fallback(f"old:{text}", 3) == ("old", base64.urlsafe_b64decode(text))


def test_fallback_tagged_id_whitespace_is_stripped():
    assert parse_fallback(f" old :{KEY_C}", 0) == ("old", BYTES_C)


def test_fallback_empty_key_id_is_refused():
    with pytest.raises(InvalidKeyError) as info:
        parse_fallback(f":{KEY_B}", 2)
    message = str(info.value)
    assert message.startswith("ENCRYPTION_KEY_FALLBACKS[2] has an empty key id")
    assert KEY_B.rstrip("=") not in message


def test_fallback_bad_key_id_is_refused():
    with pytest.raises(InvalidKeyError) as info:
        parse_fallback(f"bad id:{KEY_B}", 1)
    message = str(info.value)
    assert "the key id of ENCRYPTION_KEY_FALLBACKS[1]" in message
    assert KEY_B.rstrip("=") not in message


@pytest.mark.parametrize("tag", ["", "k1:"])
def test_fallback_bad_key_names_the_index(tag):
    short = base64.b64encode(bytes(range(24))).decode()
    with pytest.raises(InvalidKeyError) as info:
        parse_fallback(f"{tag}{short}", 4)
    message = str(info.value)
    assert message.startswith("ENCRYPTION_KEY_FALLBACKS[4] must decode to 32 bytes (got 24).")
    assert short.rstrip("=") not in message


def test_fallback_hex_key_gets_the_hex_hint():
    hex_text = secrets.token_hex(32)
    with pytest.raises(InvalidKeyError) as info:
        parse_fallback(f"k:{hex_text}", 0)
    assert "hex" in str(info.value)
    assert hex_text not in str(info.value)


@pytest.mark.parametrize(
    ("entry", "type_name"), [(BYTES_B, "bytes"), (None, "NoneType"), (7, "int")]
)
def test_fallback_not_a_string(entry, type_name):
    with pytest.raises(InvalidKeyError) as info:
        parse_fallback(entry, 5)
    message = str(info.value)
    assert message.startswith("ENCRYPTION_KEY_FALLBACKS[5] must be a string")
    assert f"not {type_name}." in message
    for spelling in key_spellings(BYTES_B):
        assert spelling not in message


def test_fallback_empty_entry():
    with pytest.raises(InvalidKeyError, match=r"^ENCRYPTION_KEY_FALLBACKS\[0\] is empty"):
        parse_fallback("", 0)


# fallback_entries


def test_fallback_entries_none_is_empty():
    assert fallback_entries(None) == []


def test_fallback_entries_list_and_tuple():
    assert fallback_entries([KEY_B, f"c:{KEY_C}"]) == [KEY_B, f"c:{KEY_C}"]
    assert fallback_entries((KEY_B,)) == [KEY_B]
    assert fallback_entries([]) == []


def test_fallback_entries_returns_a_copy():
    entries = [KEY_B]
    result = fallback_entries(entries)
    result.append(KEY_C)
    assert entries == [KEY_B]


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (KEY_B, "str"),
        ({KEY_B}, "set"),
        ({"k": KEY_B}, "dict"),
        (KEY_B.encode(), "bytes"),
        (3, "int"),
    ],
)
def test_fallback_entries_refuses_non_lists(value, type_name):
    with pytest.raises(InvalidKeyError) as info:
        fallback_entries(value)
    message = str(info.value)
    assert message.startswith(
        f"ENCRYPTION_KEY_FALLBACKS must be a list of strings, not {type_name}."
    )
    assert KEY_B.rstrip("=") not in message


# fingerprint


def test_fingerprint_is_eight_hex_digits():
    for secret in (BYTES_A, BYTES_B, secrets.token_bytes(32)):
        assert re.fullmatch(r"[0-9a-f]{8}", fingerprint(secret))


def test_fingerprint_is_stable():
    # Pinned: a fingerprint that changed between releases would make logs and reprs disagree.
    assert fingerprint(BYTES_A) == "97e61cc7"
    assert fingerprint(BYTES_A) == fingerprint(bytes(range(32)))


def test_fingerprint_tells_keys_apart():
    prints = {fingerprint(s) for s in (BYTES_A, BYTES_B, BYTES_C)}
    assert len(prints) == 3


def test_fingerprint_reveals_nothing_obvious_about_the_key():
    print_a = fingerprint(BYTES_A)
    assert print_a not in BYTES_A.hex()
    assert print_a not in KEY_A


# Key and KeyRing


def test_key_from_secret():
    key = Key.from_secret("k1", BYTES_A)
    assert key.id == "k1"
    assert key.fingerprint == fingerprint(BYTES_A)
    assert isinstance(key.aead, AESGCM)


def assert_no_key_material(text: str) -> None:
    for secret in (BYTES_A, BYTES_B, BYTES_C):
        for spelling in key_spellings(secret):
            assert spelling not in text
    assert "AESGCM" not in text


def test_key_repr_hides_the_key():
    key = Key.from_secret("k1", BYTES_A)
    text = repr(key)
    assert text == f"Key(id='k1', fingerprint='{fingerprint(BYTES_A)}')"
    assert_no_key_material(text)
    assert_no_key_material(str(key))


def test_keyring_repr_hides_the_keys():
    ring = build_keyring(KEY_A, "a", [f"b:{KEY_B}", KEY_C])
    text = repr(ring)
    assert fingerprint(BYTES_A) in text
    assert fingerprint(BYTES_C) in text
    assert_no_key_material(text)
    assert_no_key_material(str(ring))


def test_build_keyring_disabled():
    for key in (None, ""):
        ring = build_keyring(key)
        assert ring.active is None
        assert not ring.enabled
        assert ring.fallbacks == ()
        assert ring.untagged == ()
        assert ring.by_id == {}
        assert ring.write_prefix == "enc:v1:"


def test_build_keyring_active_untagged():
    ring = build_keyring(KEY_A)
    assert ring.enabled
    assert ring.active is not None
    assert ring.active.id is None
    assert ring.active.fingerprint == fingerprint(BYTES_A)
    assert ring.untagged == (ring.active,)
    assert ring.by_id == {}
    assert ring.write_prefix == "enc:v1:"


def test_build_keyring_active_keyed():
    ring = build_keyring(KEY_A, "2026-11")
    assert ring.active is not None
    assert ring.active.id == "2026-11"
    assert ring.by_id == {"2026-11": ring.active}
    assert ring.write_prefix == "enc:v1:2026-11:"


def test_build_keyring_empty_key_id_writes_untagged():
    assert build_keyring(KEY_A, "").write_prefix == "enc:v1:"


def test_build_keyring_untagged_order_is_active_then_fallbacks():
    ring = build_keyring(KEY_A, "a", [KEY_C, f"b:{KEY_B}"])
    assert [k.fingerprint for k in ring.untagged] == [
        fingerprint(BYTES_A),
        fingerprint(BYTES_C),
        fingerprint(BYTES_B),
    ]
    assert [k.id for k in ring.untagged] == ["a", None, "b"]
    assert [k.fingerprint for k in ring.fallbacks] == [fingerprint(BYTES_C), fingerprint(BYTES_B)]
    assert set(ring.by_id) == {"a", "b"}
    assert ring.by_id["b"].fingerprint == fingerprint(BYTES_B)


def test_keyring_opens_untagged_values_with_its_first_untagged_key():
    ring = build_keyring(KEY_A, "a", [KEY_C, f"b:{KEY_B}"])
    assert ring.open_first is not None
    iv = bytes(12)
    sealed = AESGCM(BYTES_A).encrypt(iv, b"value", None)
    assert ring.open_first(iv, sealed, None) == b"value"
    fallbacks_only = build_keyring(None, None, [KEY_C])
    assert fallbacks_only.open_first is not None
    assert fallbacks_only.open_first(iv, AESGCM(BYTES_C).encrypt(iv, b"x", None), None) == b"x"
    assert build_keyring(None).open_first is None


def test_build_keyring_fallbacks_only():
    ring = build_keyring(None, None, [f"old:{KEY_B}", KEY_C])
    assert not ring.enabled
    assert [k.fingerprint for k in ring.untagged] == [fingerprint(BYTES_B), fingerprint(BYTES_C)]
    assert set(ring.by_id) == {"old"}


def test_build_keyring_key_id_without_key_is_ignored_for_writing():
    ring = build_keyring(None, "k1")
    assert ring.write_prefix == "enc:v1:"
    assert ring.by_id == {}


def test_build_keyring_duplicate_active_and_fallback_ids():
    with pytest.raises(InvalidKeyError) as info:
        build_keyring(KEY_A, "same", [f"same:{KEY_B}"])
    message = str(info.value)
    assert "'same'" in message
    assert_no_key_material(message)


def test_build_keyring_duplicate_fallback_ids():
    with pytest.raises(InvalidKeyError, match="'old'"):
        build_keyring(KEY_A, None, [f"old:{KEY_B}", KEY_C, f"old:{KEY_C}"])


def test_build_keyring_allows_several_untagged_keys():
    ring = build_keyring(KEY_A, None, [KEY_B, KEY_C])
    assert len(ring.untagged) == 3


def test_build_keyring_refuses_bad_parts():
    with pytest.raises(InvalidKeyError, match=r"^ENCRYPTION_KEY must decode"):
        build_keyring(base64.b64encode(bytes(16)).decode())
    with pytest.raises(InvalidKeyError, match=r"^ENCRYPTION_KEY_ID must be"):
        build_keyring(KEY_A, "a b")
    with pytest.raises(InvalidKeyError, match=r"^ENCRYPTION_KEY_FALLBACKS\[1\]"):
        build_keyring(KEY_A, None, [KEY_B, "nope"])
    with pytest.raises(InvalidKeyError, match=r"^ENCRYPTION_KEY_FALLBACKS must be a list"):
        build_keyring(KEY_A, None, KEY_B)


def test_keyring_from_keys_directly():
    a = Key.from_secret("a", BYTES_A)
    b = Key.from_secret(None, BYTES_B)
    ring = KeyRing.from_keys(a, [b])
    assert ring.untagged == (a, b)
    assert ring.by_id == {"a": a}
    assert ring.write_prefix == "enc:v1:a:"
    with pytest.raises(InvalidKeyError):
        KeyRing.from_keys(None, [a, Key.from_secret("a", BYTES_C)])


# get_keyring and the settings cache


def test_get_keyring_follows_settings():
    ring = get_keyring()
    assert ring.active is not None
    assert ring.active.fingerprint == fingerprint(BYTES_A)
    assert ring.write_prefix == "enc:v1:"


def test_get_keyring_is_cached():
    ring = get_keyring()
    assert get_keyring() is ring
    assert get_keyring().active is ring.active


def test_aesgcm_is_built_once_per_ring(monkeypatch):
    built: list[bytes] = []

    def counting_aesgcm(key: bytes) -> AESGCM:
        built.append(key)
        return AESGCM(key)

    monkeypatch.setattr(keys, "AESGCM", counting_aesgcm)
    with override_settings(ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_FALLBACKS=[KEY_C]):
        ring = get_keyring()
        for n in range(20):
            assert decrypt_with(get_keyring(), encrypt_value(f"value {n}")) == f"value {n}"
        assert get_keyring() is ring
    assert built == [BYTES_B, BYTES_C]


@pytest.mark.parametrize(
    "changes",
    [
        {"ENCRYPTION_KEY": KEY_B},
        {"ENCRYPTION_KEY_ID": "k9"},
        {"ENCRYPTION_KEY_FALLBACKS": [KEY_C]},
        {"ENCRYPTION_KEY": None},
    ],
)
def test_get_keyring_is_dropped_when_a_key_setting_changes(changes):
    before = get_keyring()
    with override_settings(**changes):
        during = get_keyring()
        assert during is not before
    after = get_keyring()
    assert after is not during
    assert after.active is not None
    assert after.active.fingerprint == fingerprint(BYTES_A)


def test_get_keyring_sees_the_overridden_values():
    with override_settings(
        ENCRYPTION_KEY=KEY_B, ENCRYPTION_KEY_ID="k2", ENCRYPTION_KEY_FALLBACKS=[f"a:{KEY_A}"]
    ):
        ring = get_keyring()
        assert ring.active is not None
        assert ring.active.fingerprint == fingerprint(BYTES_B)
        assert ring.write_prefix == "enc:v1:k2:"
        assert set(ring.by_id) == {"k2", "a"}
    with override_settings(ENCRYPTION_KEY=""):
        assert not get_keyring().enabled


def test_get_keyring_survives_unrelated_setting_changes():
    ring = get_keyring()
    with override_settings(SOME_OTHER_SETTING=1, DEBUG=True):
        assert get_keyring() is ring
    assert get_keyring() is ring


def test_get_keyring_raises_for_a_bad_key_and_recovers():
    with override_settings(ENCRYPTION_KEY="short"), pytest.raises(InvalidKeyError):
        get_keyring()
    ring = get_keyring()
    assert ring.active is not None
    assert ring.active.fingerprint == fingerprint(BYTES_A)


def test_value_written_under_one_setting_fails_under_another():
    # Proves the cache really is rebuilt, not just a fresh object with the old keys.
    stored = encrypt_with(Key.from_secret(None, BYTES_A), "hello")
    assert decrypt_with(get_keyring(), stored) == "hello"
    with override_settings(ENCRYPTION_KEY=KEY_B):
        with pytest.raises(EncryptionError):
            decrypt_with(get_keyring(), stored)
        with override_settings(ENCRYPTION_KEY_FALLBACKS=[KEY_A]):
            assert decrypt_with(get_keyring(), stored) == "hello"
