"""System checks E301-E309 and W302 for the envelope settings, one test per bad input."""

from __future__ import annotations

import importlib.util

import pytest
from django.test import override_settings

from authhero_encrypt.deprecation import RemovedInAuthheroEncrypt1Warning
from authhero_encrypt.envelope.checks import check_envelope_settings
from authhero_encrypt.envelope.registry import AWS_KMS_BACKEND, VAULT_BACKEND, provider_entries

ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CUSTOM = "tests.testapp.key_providers.InMemoryKeyProvider"


def ids(**settings: object) -> list[str]:
    with override_settings(**settings):
        return [message.id for message in check_envelope_settings()]


def aws(**options: object) -> dict[str, object]:
    return {"aws-kms": {"BACKEND": AWS_KMS_BACKEND, "OPTIONS": {"key_id": ARN, **options}}}


def test_the_defaults_pass():
    assert ids() == []


def test_a_complete_aws_configuration_passes():
    providers = aws(region="eu-west-1", endpoint_url="https://kms.eu-west-1.amazonaws.com")
    assert (
        ids(ENCRYPTION_ENVELOPE_PROVIDER="aws-kms", ENCRYPTION_ENVELOPE_PROVIDERS=providers) == []
    )


@pytest.mark.parametrize("value", ["aws", "LOCAL", "", None, 1, ["local"], "vault"])
def test_e301_a_provider_no_entry_names(value):
    assert ids(ENCRYPTION_ENVELOPE_PROVIDER=value) == ["authhero_encrypt.E301"]


def test_e302_boto3_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "boto3" else real(name)
    )
    found = ids(ENCRYPTION_ENVELOPE_PROVIDER="aws-kms", ENCRYPTION_ENVELOPE_PROVIDERS=aws())
    assert found == ["authhero_encrypt.E302"]


def test_boto3_is_not_needed_for_local(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert ids(ENCRYPTION_ENVELOPE_PROVIDER="local") == []


@pytest.mark.parametrize("value", [None, "", " alias/x", 42])
def test_e303_a_missing_or_malformed_kms_key_id(value):
    providers = aws(key_id=value)
    assert ids(ENCRYPTION_ENVELOPE_PROVIDER="aws-kms", ENCRYPTION_ENVELOPE_PROVIDERS=providers) == [
        "authhero_encrypt.E303"
    ]


def test_a_kms_provider_kept_for_reading_needs_no_key_id():
    assert ids(ENCRYPTION_ENVELOPE_PROVIDERS=aws(key_id=None)) == []


@pytest.mark.parametrize(
    "options",
    [
        {"region": ""},
        {"region": 5},
        {"endpoint_url": "localhost:4566"},
        {"timeout": 0},
        {"timeout": "5"},
        {"max_attempts": 0},
        {"max_attempts": True},
    ],
)
def test_e304_malformed_kms_options(options):
    providers = aws(**options)
    found = ids(ENCRYPTION_ENVELOPE_PROVIDER="aws-kms", ENCRYPTION_ENVELOPE_PROVIDERS=providers)
    assert found == ["authhero_encrypt.E304"]


@pytest.mark.parametrize(
    "settings",
    [
        {"ENCRYPTION_ENVELOPE_CACHE_SIZE": -1},
        {"ENCRYPTION_ENVELOPE_CACHE_SIZE": 1.5},
        {"ENCRYPTION_ENVELOPE_CACHE_SIZE": True},
        {"ENCRYPTION_ENVELOPE_CACHE_TTL": -0.1},
        {"ENCRYPTION_ENVELOPE_CACHE_TTL": "300"},
    ],
)
def test_e305_malformed_cache_settings(settings):
    assert ids(**settings) == ["authhero_encrypt.E305"]


@pytest.mark.parametrize(
    "providers",
    [
        ["local"],
        {"Vault": {"BACKEND": CUSTOM}},
        {"my:kms": {"BACKEND": CUSTOM}},
        {"a" * 33: {"BACKEND": CUSTOM}},
        {"custom": CUSTOM},
        {"custom": {"OPTIONS": {}}},
        {"custom": {"BACKEND": CUSTOM, "LOCATION": "x"}},
        {"custom": {"BACKEND": CUSTOM, "OPTIONS": ["x"]}},
    ],
)
def test_e306_a_malformed_providers_setting(providers):
    assert ids(ENCRYPTION_ENVELOPE_PROVIDERS=providers) == ["authhero_encrypt.E306"]


@pytest.mark.parametrize(
    "backend",
    ["tests.testapp.nowhere.Provider", "tests.testapp.key_providers.nothing", "json.dumps"],
)
def test_e307_a_backend_that_does_not_load(backend):
    assert ids(ENCRYPTION_ENVELOPE_PROVIDERS={"custom": {"BACKEND": backend}}) == [
        "authhero_encrypt.E307"
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {"BACKEND": CUSTOM, "OPTIONS": {"keys": {"k1": "x" * 44}, "colour": "red"}},
        {"BACKEND": CUSTOM, "OPTIONS": {"keys": "not a dict"}},
        {"BACKEND": VAULT_BACKEND, "OPTIONS": {"url": "127.0.0.1:8200", "key": "authhero"}},
        {"BACKEND": VAULT_BACKEND, "OPTIONS": {"url": "http://x", "key": "a b"}},
        {"BACKEND": VAULT_BACKEND, "OPTIONS": {"url": "http://x", "token": "t", "approle": {}}},
        {
            "BACKEND": "authhero_encrypt.envelope.backends.local.LocalKeyProvider",
            "OPTIONS": {"x": 1},
        },
    ],
)
def test_e308_options_a_backend_refuses(entry):
    assert ids(ENCRYPTION_ENVELOPE_PROVIDERS={"custom": entry}) == ["authhero_encrypt.E308"]


def test_e308_a_vault_provider_that_writes_needs_a_key():
    providers = {"vault": {"BACKEND": VAULT_BACKEND, "OPTIONS": {"url": "http://127.0.0.1:1"}}}
    assert ids(ENCRYPTION_ENVELOPE_PROVIDERS=providers) == []
    assert ids(ENCRYPTION_ENVELOPE_PROVIDERS=providers, ENCRYPTION_ENVELOPE_PROVIDER="vault") == [
        "authhero_encrypt.E308"
    ]


def test_e309_hvac_missing(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "hvac" else real(name)
    )
    providers = {"vault": {"BACKEND": VAULT_BACKEND, "OPTIONS": {"url": "http://x", "key": "k"}}}
    assert ids(ENCRYPTION_ENVELOPE_PROVIDERS=providers) == ["authhero_encrypt.E309"]


def test_w302_the_deprecated_kms_settings_keep_working_and_warn():
    legacy = {
        "ENCRYPTION_ENVELOPE_PROVIDER": "aws-kms",
        "ENCRYPTION_KMS_KEY_ID": ARN,
        "ENCRYPTION_KMS_REGION": "eu-west-1",
    }
    assert ids(**legacy) == ["authhero_encrypt.W302"]
    with (
        override_settings(**legacy),
        pytest.warns(RemovedInAuthheroEncrypt1Warning, match="OPTIONS"),
    ):
        entries = provider_entries()
    assert entries["aws-kms"]["OPTIONS"] == {"key_id": ARN, "region": "eu-west-1"}
    assert ids(ENCRYPTION_KMS_KEY_ID=None) == ["authhero_encrypt.W302"]


def test_w302_deprecated_settings_beside_the_new_one_are_ignored():
    with override_settings(ENCRYPTION_ENVELOPE_PROVIDERS=aws(), ENCRYPTION_KMS_KEY_ID="alias/x"):
        messages = check_envelope_settings()
    assert [message.id for message in messages] == ["authhero_encrypt.W302"]
    assert "ignored" in messages[0].msg


def test_the_checks_are_registered():
    from django.core import checks

    assert check_envelope_settings in checks.registry.registry.get_checks()
