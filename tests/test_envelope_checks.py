"""System checks E301-E305 for the envelope settings, one test per bad input."""

from __future__ import annotations

import pytest
from django.test import override_settings

from authhero_encrypt.envelope import checks as envelope_checks
from authhero_encrypt.envelope.checks import check_envelope_settings

ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def ids(**settings: object) -> list[str]:
    with override_settings(**settings):
        return [message.id for message in check_envelope_settings()]


def test_the_defaults_pass():
    assert ids() == []


def test_a_complete_aws_configuration_passes():
    assert (
        ids(
            ENCRYPTION_ENVELOPE_PROVIDER="aws-kms",
            ENCRYPTION_KMS_KEY_ID=ARN,
            ENCRYPTION_KMS_REGION="eu-west-1",
            ENCRYPTION_KMS_ENDPOINT_URL="https://kms.eu-west-1.amazonaws.com",
        )
        == []
    )


@pytest.mark.parametrize("value", ["aws", "LOCAL", "", None, 1, ["local"]])
def test_e301_a_malformed_provider(value):
    assert ids(ENCRYPTION_ENVELOPE_PROVIDER=value) == ["authhero_encrypt.E301"]


def test_e302_boto3_missing(monkeypatch):
    monkeypatch.setattr(envelope_checks, "_boto3_installed", lambda: False)
    found = ids(ENCRYPTION_ENVELOPE_PROVIDER="aws-kms", ENCRYPTION_KMS_KEY_ID=ARN)
    assert found == ["authhero_encrypt.E302"]


def test_boto3_is_not_needed_for_local(monkeypatch):
    monkeypatch.setattr(envelope_checks, "_boto3_installed", lambda: False)
    assert ids(ENCRYPTION_ENVELOPE_PROVIDER="local") == []


@pytest.mark.parametrize("value", [None, "", " alias/x", 42])
def test_e303_a_missing_or_malformed_kms_key_id(value):
    assert ids(ENCRYPTION_ENVELOPE_PROVIDER="aws-kms", ENCRYPTION_KMS_KEY_ID=value) == [
        "authhero_encrypt.E303"
    ]


@pytest.mark.parametrize(
    "settings",
    [
        {"ENCRYPTION_KMS_REGION": ""},
        {"ENCRYPTION_KMS_REGION": 5},
        {"ENCRYPTION_KMS_ENDPOINT_URL": "localhost:4566"},
        {"ENCRYPTION_KMS_TIMEOUT": 0},
        {"ENCRYPTION_KMS_TIMEOUT": "5"},
        {"ENCRYPTION_KMS_MAX_ATTEMPTS": 0},
        {"ENCRYPTION_KMS_MAX_ATTEMPTS": True},
    ],
)
def test_e304_malformed_kms_options(settings):
    found = ids(ENCRYPTION_ENVELOPE_PROVIDER="aws-kms", ENCRYPTION_KMS_KEY_ID=ARN, **settings)
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


def test_the_checks_are_registered():
    from django.core import checks

    assert check_envelope_settings in checks.registry.registry.get_checks()
