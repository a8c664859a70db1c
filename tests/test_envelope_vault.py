"""The Vault / OpenBao Transit provider against a real ``bao server -dev`` on 127.0.0.1.

hvac talks HTTP to the server (session fixture ``bao`` in conftest.py); each test gets its own
derived Transit key, so rotations and policies never leak between tests.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from authhero_encrypt.envelope.backends.vault import VaultTransitKeyProvider
from authhero_encrypt.envelope.checks import check_envelope_settings
from authhero_encrypt.envelope.config import provider_named, reset_envelope
from authhero_encrypt.envelope.format import parse
from authhero_encrypt.exceptions import KeyProviderError
from authhero_encrypt.migrate import migrate
from authhero_encrypt.rotation import Outcome
from tests.envelope_rows import raw
from tests.keys import SAMPLE_PEM
from tests.kms_server import free_port
from tests.testapp.models import PrivateKey
from tests.vault_server import BaoServer

pytestmark = pytest.mark.django_db

TABLE = PrivateKey._meta.db_table
_names = itertools.count()


def vault_settings(server: BaoServer, key: str | None, **options: Any) -> override_settings:
    return override_settings(
        ENCRYPTION_ENVELOPE_PROVIDER="vault",
        ENCRYPTION_ENVELOPE_PROVIDERS=server.providers(key, **options),
    )


@pytest.fixture
def key(bao: BaoServer) -> str:
    return bao.create_key(f"authhero-{next(_names)}")


@pytest.fixture
def vault(bao: BaoServer, key: str) -> Iterator[str]:
    with vault_settings(bao, key):
        yield key


def test_a_pem_is_wrapped_by_the_transit_key(vault):
    row = PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
    stored = raw(row.pk)
    assert stored.startswith(f"env:v1:vault:{vault}:v1:")
    assert "BEGIN PRIVATE KEY" not in stored
    assert len(parse(stored).wrapped) == 60  # Transit's nonce, the 32-byte key, its tag
    reset_envelope()
    assert PrivateKey.objects.get(pk=row.pk).pem == SAMPLE_PEM


def test_approle_authentication(bao, key):
    with vault_settings(bao, key, approle=bao.approle(key)):
        row = PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
        reset_envelope()
        assert PrivateKey.objects.get(pk=row.pk).pem == SAMPLE_PEM


def test_a_wrong_approle_secret_is_refused(bao, key):
    credentials = {**bao.approle(key), "secret_id": "00000000-0000-0000-0000-000000000000"}
    with (
        vault_settings(bao, key, approle=credentials),
        pytest.raises(KeyProviderError, match="AppRole login") as caught,
        transaction.atomic(),
    ):
        PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
    assert "00000000-0000" not in str(caught.value)
    assert PrivateKey.objects.count() == 0


def test_rotation_rewraps_server_side_and_the_data_key_never_enters_the_process(
    bao, vault, monkeypatch
):
    rows = [PrivateKey.objects.create(name=str(n), pem=f"pem {n}") for n in range(3)]
    before = {row.pk: parse(raw(row.pk)) for row in rows}
    bao.rotate(vault)
    reset_envelope()

    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("rotation unwrapped a data key in this process")

    monkeypatch.setattr(VaultTransitKeyProvider, "unwrap", refuse)
    report = migrate(["testapp.PrivateKey"])
    monkeypatch.undo()
    assert report.ok
    pem = next(f for f in report.fields if f.label.endswith(".pem"))
    assert pem.total(Outcome.REWRAPPED) == 3
    assert report.envelope == ("vault", f"{vault}:v2")
    for row in rows:
        after = parse(raw(row.pk))
        assert after.key_id == f"{vault}:v2"
        assert after.payload == before[row.pk].payload
        assert after.wrapped != before[row.pk].wrapped
    reset_envelope()
    assert [PrivateKey.objects.get(pk=row.pk).pem for row in rows] == ["pem 0", "pem 1", "pem 2"]
    again = migrate(["testapp.PrivateKey"])
    assert next(f for f in again.fields if f.label.endswith(".pem")).total(Outcome.REWRAPPED) == 0


def test_status_counts_values_per_key_version(bao, vault):
    PrivateKey.objects.create(name="a", pem="a")
    bao.rotate(vault)
    reset_envelope()
    PrivateKey.objects.create(name="b", pem="b")
    PrivateKey.objects.create(name="c", pem="c")
    out = StringIO()
    call_command("encryption_status", "testapp.PrivateKey", format="json", stdout=out)
    report = json.loads(out.getvalue())
    pem = next(f for f in report["fields"] if f["field"] == "pem")
    assert pem["by_key"] == {f"vault:{vault}:v1": 1, f"vault:{vault}:v2": 2}
    assert report["key"]["envelope"] == {"provider": "vault", "key_id": vault}


def test_min_decryption_version_refusals_name_the_row_and_write_nothing(bao, vault):
    row = PrivateKey.objects.create(name="old", pem=SAMPLE_PEM)
    stored = raw(row.pk)
    bao.rotate(vault)
    bao.client().secrets.transit.update_key_configuration(
        vault, min_decryption_version=2, mount_point="transit"
    )
    reset_envelope()
    with pytest.raises(KeyProviderError) as caught:
        PrivateKey.objects.get(pk=row.pk)
    assert caught.value.code == "MinDecryptionVersion"
    assert f"testapp.PrivateKey.pem (primary key {row.pk})" in str(caught.value)
    report = migrate(["testapp.PrivateKey"])
    assert not report.ok
    assert raw(row.pk) == stored


def test_a_sealed_server_refuses_reads_and_writes_and_nothing_is_written(bao, vault):
    row = PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
    reset_envelope()
    bao.seal()
    try:
        with pytest.raises(KeyProviderError) as read:
            PrivateKey.objects.get(pk=row.pk)
        with pytest.raises(KeyProviderError) as write, transaction.atomic():
            PrivateKey.objects.create(name="other", pem=SAMPLE_PEM)
    finally:
        bao.unseal()
    assert read.value.code == write.value.code == "Sealed"
    assert f"(primary key {row.pk})" in str(read.value)
    assert "nothing was written" in str(write.value)
    assert PrivateKey.objects.count() == 1


def test_an_unreachable_server_refuses_writes(bao, key):
    with (
        override_settings(
            ENCRYPTION_ENVELOPE_PROVIDER="vault",
            ENCRYPTION_ENVELOPE_PROVIDERS=bao.providers(key, url=f"http://127.0.0.1:{free_port()}"),
        ),
        pytest.raises(KeyProviderError, match="Vault is unreachable") as caught,
        transaction.atomic(),
    ):
        PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
    assert caught.value.code is None
    assert PrivateKey.objects.count() == 0


def test_a_key_that_is_not_derived_is_refused(bao):
    plain = bao.create_key(f"plain-{next(_names)}", derived=False)
    with (
        vault_settings(bao, plain),
        pytest.raises(KeyProviderError, match="derived=true") as caught,
        transaction.atomic(),
    ):
        PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
    assert caught.value.code == "NotDerived"


def test_batch_unwrap_is_one_call_and_refuses_a_bad_item(vault):
    provider = provider_named("vault")
    items = []
    for context in ("a.b.c", "a.b.d"):
        key_id, wrapped = provider.wrap(bytes(range(32)), context)
        items.append((key_id, wrapped, context))
    assert provider.provider.unwrap_many(items) == [bytes(range(32))] * 2  # type: ignore[attr-defined]
    swapped = [(items[0][0], items[0][1], "a.b.d")]
    with pytest.raises(KeyProviderError) as caught:
        provider.provider.unwrap_many(swapped)  # type: ignore[attr-defined]
    assert "(Vault said" not in str(caught.value)  # a batch answer may hold other keys


def test_a_complete_vault_configuration_passes_the_checks(bao, vault):
    assert check_envelope_settings() == []
