"""The aws-kms provider against a real KMS API endpoint: moto in server mode, over HTTP.

A real boto3 client talks to ``moto_server`` on 127.0.0.1 (started once for the session); the
failures moto does not simulate (a disabled key, a key pending deletion, throttling) come from
``StubKms``, a local HTTP server answering in KMS's own error shape. boto3 is never patched.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.views.debug import ExceptionReporter

from authhero_encrypt.envelope.codec import open_value
from authhero_encrypt.envelope.config import provider_named, reset_envelope
from authhero_encrypt.envelope.format import parse
from authhero_encrypt.envelope.rotation import rewrap
from authhero_encrypt.exceptions import DecryptionError, KeyProviderError, MissingKeyError
from authhero_encrypt.migrate import migrate
from authhero_encrypt.rotation import Outcome
from tests.envelope_rows import raw, write_raw
from tests.keys import SAMPLE_PEM
from tests.kms_server import (
    DUMMY_CREDENTIALS,
    REGION,
    MotoServer,
    StubKms,
    kms_providers,
    require,
)
from tests.testapp.models import PrivateKey

pytestmark = pytest.mark.django_db

PEM = SAMPLE_PEM
TABLE = PrivateKey._meta.db_table


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    # Never a developer's real profile or credentials.
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def kms_key(moto: MotoServer, aws_env: None) -> str:
    """The ARN of a fresh symmetric key."""
    return str(moto.client().create_key()["KeyMetadata"]["Arn"])


def kms_settings(endpoint: str, key_id: str | None, **extra: Any) -> override_settings:
    providers = kms_providers(endpoint, key_id, max_attempts=extra.pop("attempts", 1))
    return override_settings(
        ENCRYPTION_ENVELOPE_PROVIDER="aws-kms", ENCRYPTION_ENVELOPE_PROVIDERS=providers, **extra
    )


@pytest.fixture
def aws(moto: MotoServer, kms_key: str) -> Iterator[str]:
    with kms_settings(moto.url, kms_key):
        yield kms_key


def count_calls(operation: str) -> list[str]:
    """Record each ``operation`` the active aws-kms client sends (a botocore event hook)."""
    calls: list[str] = []
    client = provider_named("aws-kms").provider.client("")  # type: ignore[attr-defined]
    client.meta.events.register(f"before-call.kms.{operation}", lambda **_: calls.append(operation))
    return calls


def test_a_pem_is_wrapped_by_the_kms_key(aws):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    stored = raw(row.pk)
    envelope = parse(stored)
    assert envelope.provider == "aws-kms"
    assert envelope.key_id == aws
    assert stored.startswith(f"env:v1:aws-kms:{aws}:")
    assert "BEGIN PRIVATE KEY" not in stored
    reset_envelope()  # no cached data key: the read must call Decrypt
    assert PrivateKey.objects.get(pk=row.pk).pem == PEM


def test_a_thousand_reads_call_kms_once(aws):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    reset_envelope()
    decrypts = count_calls("Decrypt")
    for _ in range(1000):
        assert PrivateKey.objects.get(pk=row.pk).pem == PEM
    assert decrypts == ["Decrypt"]


def test_a_write_costs_one_encrypt_and_a_read_after_it_none(aws):
    encrypts, decrypts = count_calls("Encrypt"), count_calls("Decrypt")
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    assert PrivateKey.objects.get(pk=row.pk).pem == PEM
    assert (encrypts, decrypts) == (["Encrypt"], [])


def test_the_cache_is_dropped_when_a_setting_changes(aws):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    with override_settings(ENCRYPTION_ENVELOPE_CACHE_TTL=60):
        decrypts = count_calls("Decrypt")
        PrivateKey.objects.get(pk=row.pk)
        assert decrypts == ["Decrypt"]


@override_settings(ENCRYPTION_ENVELOPE_CACHE_SIZE=0)
def test_without_the_cache_every_read_calls_kms(aws):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    decrypts = count_calls("Decrypt")
    for _ in range(3):
        PrivateKey.objects.get(pk=row.pk)
    assert len(decrypts) == 3


def test_a_wrapped_key_copied_to_another_column_fails_to_open(aws):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    write_raw(row.pk, "bundle", raw(row.pk))
    reset_envelope()
    with pytest.raises(KeyProviderError) as caught:
        PrivateKey.objects.get(pk=row.pk)
    error = caught.value
    assert error.code == "InvalidCiphertextException"
    assert f"Cannot read testapp.PrivateKey.bundle (primary key {row.pk})" in str(error)
    assert "copied from another field" in str(error)


def test_a_wrong_configured_key_id_refuses_writes_and_writes_nothing(moto, aws_env):
    missing = f"arn:aws:kms:{REGION}:123456789012:key/00000000-0000-0000-0000-000000000000"
    with (
        kms_settings(moto.url, missing),
        pytest.raises(KeyProviderError) as caught,
        transaction.atomic(),
    ):
        PrivateKey.objects.create(name="signing", pem=PEM)
    assert caught.value.code == "NotFoundException"
    assert "Cannot store testapp.PrivateKey.pem (nothing was written)" in str(caught.value)
    assert "check the key_id and region OPTIONS" in str(caught.value)
    assert PrivateKey.objects.count() == 0


def test_a_value_naming_another_key_is_denied_on_read(aws, moto):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    other = moto.client().create_key()["KeyMetadata"]["Arn"]
    write_raw(row.pk, "pem", raw(row.pk).replace(aws, other))
    reset_envelope()
    with pytest.raises(KeyProviderError) as caught:
        PrivateKey.objects.get(pk=row.pk)
    assert caught.value.code in ("AccessDeniedException", "IncorrectKeyException")
    assert f"testapp.PrivateKey.pem (primary key {row.pk})" in str(caught.value)


def test_missing_key_id_refuses_writes_but_reads_still_work(aws, moto):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    with kms_settings(moto.url, None):
        assert PrivateKey.objects.get(pk=row.pk).pem == PEM
        with (
            pytest.raises(MissingKeyError, match="has no key_id in its OPTIONS"),
            transaction.atomic(),
        ):
            PrivateKey.objects.create(name="other", pem=PEM)
    assert PrivateKey.objects.count() == 1


def test_a_stopped_server_fails_reads_and_writes_clearly(aws_env):
    server = MotoServer().start()
    try:
        key = server.client().create_key()["KeyMetadata"]["Arn"]
        with kms_settings(server.url, key):
            row = PrivateKey.objects.create(name="signing", pem=PEM)
            stored = raw(row.pk)
            server.stop()
            reset_envelope()
            with pytest.raises(KeyProviderError) as caught:
                PrivateKey.objects.get(pk=row.pk)
            assert caught.value.code is None
            assert "KMS is unreachable" in str(caught.value)
            assert f"primary key {row.pk}" in str(caught.value)
            row.pem = PEM + "changed!"
            with pytest.raises(KeyProviderError, match="nothing was written"), transaction.atomic():
                row.save()
            with pytest.raises(KeyProviderError), transaction.atomic():
                PrivateKey.objects.create(name="second", pem=PEM)
        assert raw(row.pk) == stored
        assert PrivateKey.objects.count() == 1
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        ("DisabledException", "the KMS key is disabled: enable it"),
        ("KMSInvalidStateException", "pending deletion"),
        ("AccessDeniedException", "KMS denied the call"),
        ("ThrottlingException", "KMS throttled the call"),
    ],
)
def test_kms_refusals_fail_reads_and_writes_and_write_nothing(aws, code, advice):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    stored = raw(row.pk)
    with StubKms(code, message="refused by the stub") as stub, kms_settings(stub.url, aws):
        with pytest.raises(KeyProviderError) as read:
            PrivateKey.objects.get(pk=row.pk)
        assert read.value.code == code
        assert advice in str(read.value)
        assert f"Cannot read testapp.PrivateKey.pem (primary key {row.pk})" in str(read.value)
        assert "KMS said: refused by the stub" in str(read.value)
        row.pem = "replacement!"
        with pytest.raises(KeyProviderError, match="nothing was written"), transaction.atomic():
            row.save()
        with pytest.raises(KeyProviderError), transaction.atomic():
            PrivateKey.objects.create(name="second", pem=PEM)
        assert [target.rsplit(".", 1)[1] for target in stub.requests] == [
            "Decrypt",
            "Encrypt",
            "Encrypt",
        ]
    assert raw(row.pk) == stored
    assert PrivateKey.objects.count() == 1


def test_throttling_is_retried_up_to_max_attempts_then_raised(aws):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    with (
        StubKms("ThrottlingException", "Rate exceeded") as stub,
        kms_settings(stub.url, aws, attempts=2),
        pytest.raises(KeyProviderError, match="KMS throttled the call") as caught,
    ):
        PrivateKey.objects.get(pk=row.pk)
    assert caught.value.code == "ThrottlingException"
    assert len(stub.requests) == 2


def test_a_failed_write_report_drops_the_frames_that_hold_the_data_key(aws_env):
    """The codec and provider frames (data key, plaintext) are cut from the report.

    Django's own frames above the field (``create(**kwargs)``, the insert compiler) still show
    the value being saved, as for every field: that is outside what a field can change.
    """
    with (
        StubKms("DisabledException") as stub,
        kms_settings(stub.url, "alias/app"),
        override_settings(DEBUG=False),
        pytest.raises(KeyProviderError) as caught,
        transaction.atomic(),
    ):
        PrivateKey.objects.create(name="signing", pem=PEM)
    exc = caught.value
    report = html.unescape(
        ExceptionReporter(None, type(exc), exc, exc.__traceback__).get_traceback_html()
    )
    assert "DisabledException" in report
    files: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        tb = current.__traceback__
        while tb is not None:
            files.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    assert any(name.endswith("fields/envelope.py") for name in files)
    assert not [name for name in files if "/envelope/" in name or "botocore" in name]


def test_rewrap_moves_a_local_value_to_kms_leaving_the_payload(aws):
    with override_settings(ENCRYPTION_ENVELOPE_PROVIDER="local"):
        row = PrivateKey.objects.create(name="signing", pem=PEM)
    stored = raw(row.pk)
    context = PrivateKey._meta.get_field("pem").context
    moved = rewrap(stored, context, resolve=provider_named, target=provider_named("aws-kms"))
    assert parse(moved).provider == "aws-kms"
    assert parse(moved).key_id == aws
    assert moved.rsplit(":", 1)[1] == stored.rsplit(":", 1)[1]
    write_raw(row.pk, "pem", moved)
    reset_envelope()
    assert PrivateKey.objects.get(pk=row.pk).pem == PEM
    again = rewrap(moved, context, resolve=provider_named, target=provider_named("aws-kms"))
    assert again is moved


def test_rewrap_between_kms_keys_and_its_failure_is_clear(aws, moto):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    stored = raw(row.pk)
    context = PrivateKey._meta.get_field("pem").context
    new_key = moto.client().create_key()["KeyMetadata"]["Arn"]
    with kms_settings(moto.url, new_key):
        moved = rewrap(stored, context, resolve=provider_named, target=provider_named("aws-kms"))
    assert parse(moved).key_id == new_key
    assert moved.rsplit(":", 1)[1] == stored.rsplit(":", 1)[1]
    with pytest.raises(DecryptionError, match="InvalidCiphertextException"):
        rewrap(
            stored,
            "testapp.privatekey.bundle",
            resolve=provider_named,
            target=provider_named("local"),
        )


def test_a_missing_kms_dependency_fails_under_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and no_such_module_x"):
        require("no_such_module_x", "aws")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"pip install -e '\.\[aws\]'"):
        require("no_such_module_x", "aws")


def test_without_boto3_a_kms_value_fails_to_read_naming_the_row(aws, monkeypatch):
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    reset_envelope()
    monkeypatch.setitem(sys.modules, "boto3", None)  # what `import boto3` meets when absent
    with pytest.raises(KeyProviderError) as caught:
        PrivateKey.objects.get(pk=row.pk)
    assert caught.value.code == "Boto3Missing"
    assert f"Cannot read testapp.PrivateKey.pem (primary key {row.pk})" in str(caught.value)
    assert "pip install boto3" in str(caught.value)


def test_a_flipped_bit_in_any_field_of_a_kms_value_raises(aws):
    """One character of each field, all 8 bits (a full sweep is in test_envelope_format)."""
    row = PrivateKey.objects.create(name="signing", pem=PEM)
    stored = raw(row.pk)
    key_end = stored.rindex(":", 0, stored.rindex(":"))
    positions = {
        "provider": len("env:v1:") + 1,
        "key id": len("env:v1:aws-kms:") + len(aws) - 5,
        "wrapped key": key_end + 10,
        "payload": len(stored) - 10,
    }
    context = PrivateKey._meta.get_field("pem").context
    opened = []
    for field, index in positions.items():
        for bit in range(8):
            flipped = stored[:index] + chr(ord(stored[index]) ^ (1 << bit)) + stored[index + 1 :]
            reset_envelope()
            try:
                open_value(provider_named, flipped, context)
            except DecryptionError:
                continue
            opened.append((field, bit))
    assert opened == []


# Rotation through the migrate engine (encryption_migrate) ----------------------------------------


def test_migrate_moves_local_values_to_kms_rewrapping_only_the_data_key(aws):
    with override_settings(ENCRYPTION_ENVELOPE_PROVIDER="local"):
        row = PrivateKey.objects.create(name="signing", pem=PEM)
    stored = raw(row.pk)
    report = migrate(["testapp.PrivateKey"])
    moved = raw(row.pk)
    assert (parse(moved).provider, parse(moved).key_id) == ("aws-kms", aws)
    assert moved.rsplit(":", 1)[1] == stored.rsplit(":", 1)[1]
    assert report.envelope == ("aws-kms", aws)
    assert report.fields[0].total(Outcome.REWRAPPED) == 1
    reset_envelope()
    with override_settings(ENCRYPTION_KEY=None):  # the ring key is no longer needed to read it
        assert PrivateKey.objects.get(pk=row.pk).pem == PEM
    assert migrate(["testapp.PrivateKey"]).fields[0].total(Outcome.UNCHANGED) == 1
    assert raw(row.pk) == moved


def test_migrate_moves_values_to_another_kms_key_and_reports_what_does_not_open(aws, moto):
    row = PrivateKey.objects.create(name="signing", pem=PEM, bundle="bundle!")
    copied = PrivateKey.objects.create(name="copied")
    stored, bundle = raw(row.pk), raw(row.pk, "bundle")
    write_raw(copied.pk, "pem", bundle)  # bound to the bundle column: never opens as a pem
    new_key = moto.client().create_key()["KeyMetadata"]["Arn"]
    with kms_settings(moto.url, new_key):
        report = migrate(["testapp.PrivateKey"])
    pem = report.fields[0]
    assert (pem.total(Outcome.REWRAPPED), pem.total(Outcome.FAILED)) == (1, 1)
    assert [pk for pk, _path, _reason in pem.failures] == [copied.pk]
    assert "InvalidCiphertextException" in pem.failures[0][2]
    assert raw(copied.pk) == bundle  # left as it was
    moved = raw(row.pk)
    assert parse(moved).key_id == new_key
    assert moved.rsplit(":", 1)[1] == stored.rsplit(":", 1)[1]
    assert parse(raw(row.pk, "bundle")).key_id == new_key
    assert not report.ok


def test_migrate_with_kms_unreachable_stops_before_reading_anything(aws_env):
    with override_settings(ENCRYPTION_ENVELOPE_PROVIDER="local"):
        row = PrivateKey.objects.create(name="signing", pem=PEM)
    stored = raw(row.pk)
    with (
        kms_settings("http://127.0.0.1:9", "alias/authhero"),
        pytest.raises(KeyProviderError, match="unreachable"),
    ):
        migrate(["testapp.PrivateKey"])  # the alias is resolved first: DescribeKey fails
    assert raw(row.pk) == stored
