"""Bounded data-key reuse on writes: the three limits, the derived-key payload, KMS call counts."""

from __future__ import annotations

import pytest
from django.test import override_settings

from authhero_encrypt.envelope.backends.local import LocalKeyProvider
from authhero_encrypt.envelope.backends.vault import VaultTransitKeyProvider
from authhero_encrypt.envelope.checks import check_envelope_settings
from authhero_encrypt.envelope.codec import open_value, seal
from authhero_encrypt.envelope.config import provider_named, reset_envelope
from authhero_encrypt.envelope.format import DERIVED_MARK, compose, parse
from authhero_encrypt.envelope.write_cache import WriteKeyCache
from authhero_encrypt.exceptions import DecryptionError
from authhero_encrypt.keys import build_keyring
from authhero_encrypt.migrate import migrate
from authhero_encrypt.rotation import Outcome
from tests.envelope_rows import raw
from tests.keys import KEY_A, RING_K1, RING_K2
from tests.kms_server import DUMMY_CREDENTIALS, kms_providers
from tests.test_envelope_format import flips
from tests.testapp.models import PrivateKey

CONTEXT = "testapp.privatekey.pem"
LIMITS = {"MAX_AGE": 300, "MAX_VALUES": 50, "MAX_BYTES": 1_000_000}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_reused_within_the_three_limits():
    clock = Clock()
    cache = WriteKeyCache(10, 3, 100, clock=clock)
    cache.put("p", "c", b"k" * 32, "id", b"w", 10)
    assert cache.take("p", "c", 10) is not None
    assert cache.take("p", "c", 10) is not None
    assert cache.take("p", "c", 10) is None  # a fourth value: past MAX_VALUES
    cache.put("p", "c", b"k" * 32, "id", b"w", 60)
    assert cache.take("p", "c", 41) is None  # 101 bytes: past MAX_BYTES
    cache.put("p", "c", b"k" * 32, "id", b"w", 1)
    clock.now = 10
    assert cache.take("p", "c", 1) is None  # 10 seconds old: past MAX_AGE
    assert cache.take("p", "other context", 1) is None


def test_each_value_has_its_own_derived_key_and_round_trips():
    provider = LocalKeyProvider(ring=build_keyring(KEY_A, "k1"))
    cache = WriteKeyCache(300, 50, 10**6)
    one, two = (seal(provider, text, CONTEXT, write_cache=cache) for text in ("one", "two"))
    a, b = parse(one), parse(two)
    assert a.wrapped == b.wrapped  # one wrap for both
    assert a.salt != b.salt
    assert one.split(":")[-1].startswith(DERIVED_MARK)
    assert compose(a) == one
    resolve = lambda name: provider  # noqa: E731
    assert open_value(resolve, one, CONTEXT) == "one"
    assert open_value(resolve, two, CONTEXT) == "two"
    with pytest.raises(DecryptionError):
        open_value(resolve, one, "testapp.other.pem")
    for index, flipped in flips(one):
        with pytest.raises(DecryptionError):
            open_value(resolve, flipped, CONTEXT)
        assert index >= 0


@pytest.mark.django_db
def test_rotation_keeps_a_derived_payload_byte_for_byte():
    with override_settings(**RING_K1, ENCRYPTION_ENVELOPE_WRITE_CACHE=LIMITS):
        rows = [PrivateKey.objects.create(name=str(n), pem=f"pem {n}") for n in range(3)]
    before = {row.pk: parse(raw(row.pk)) for row in rows}
    with override_settings(**RING_K2):
        report = migrate(["testapp.PrivateKey"])
        assert report.fields[0].total(Outcome.REWRAPPED) == 3
        for row in rows:
            after = parse(raw(row.pk))
            assert (after.key_id, after.payload, after.salt) == (
                "k2",
                before[row.pk].payload,
                before[row.pk].salt,
            )
        reset_envelope()
        assert sorted(PrivateKey.objects.values_list("pem", flat=True)) == [
            "pem 0",
            "pem 1",
            "pem 2",
        ]


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"MAX_AGE": 1, "MAX_VALUES": 1},
        {**LIMITS, "MAX_VALUES": 0},
        {**LIMITS, "MAX_BYTES": 1.5},
        5,
    ],
)
def test_e305_a_malformed_write_cache(value):
    with override_settings(ENCRYPTION_ENVELOPE_WRITE_CACHE=value):
        assert [m.id for m in check_envelope_settings()] == ["authhero_encrypt.E305"]


@pytest.mark.django_db
@pytest.mark.parametrize("limits", [None, LIMITS], ids=["off", "on"])
def test_kms_encrypt_calls_for_200_writes(moto, monkeypatch, limits):
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    key = moto.client().create_key()["KeyMetadata"]["Arn"]
    with override_settings(
        ENCRYPTION_ENVELOPE_PROVIDER="aws-kms",
        ENCRYPTION_ENVELOPE_PROVIDERS=kms_providers(moto.url, key),
        ENCRYPTION_ENVELOPE_WRITE_CACHE=limits,
    ):
        client = provider_named("aws-kms").provider.client("")  # type: ignore[attr-defined]
        calls: list[str] = []
        client.meta.events.register("before-call.kms.Encrypt", lambda **_: calls.append("x"))
        rows = [PrivateKey.objects.create(name=str(n), pem=f"pem {n}") for n in range(200)]
        assert len(calls) == (200 if limits is None else 4)
        reset_envelope()
        assert [PrivateKey.objects.get(pk=row.pk).pem for row in rows[:3]] == [
            "pem 0",
            "pem 1",
            "pem 2",
        ]


@pytest.mark.django_db
@pytest.mark.parametrize("limits", [None, LIMITS], ids=["off", "on"])
def test_vault_encrypt_calls_for_100_writes(bao, monkeypatch, limits):
    key = bao.create_key(f"write-cache-{'on' if limits else 'off'}")
    wraps: list[str] = []
    original = VaultTransitKeyProvider.wrap

    def counting(self, dek, context):
        wraps.append(context)
        return original(self, dek, context)

    monkeypatch.setattr(VaultTransitKeyProvider, "wrap", counting)
    with override_settings(
        ENCRYPTION_ENVELOPE_PROVIDER="vault",
        ENCRYPTION_ENVELOPE_PROVIDERS=bao.providers(key),
        ENCRYPTION_ENVELOPE_WRITE_CACHE=limits,
    ):
        rows = [PrivateKey.objects.create(name=str(n), pem=f"pem {n}") for n in range(100)]
        assert len(wraps) == (100 if limits is None else 2)
        reset_envelope()
        assert PrivateKey.objects.get(pk=rows[-1].pk).pem == "pem 99"
