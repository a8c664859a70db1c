"""The provider contract: every KEK backend passes the same suite through the model field.

Run against a backend defined in the test app (``tests/testapp/key_providers.py``, as a user
would write one), ``local``, ``aws-kms`` (a real boto3 client against moto in server mode) and
Vault Transit (hvac against a real ``bao server -dev``). Each kit says how to configure its
provider, how to move it to a new KEK and how to make its KEK unavailable.
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

from authhero_encrypt.envelope.config import reset_envelope
from authhero_encrypt.envelope.format import parse
from authhero_encrypt.exceptions import DecryptionError, KeyProviderError
from authhero_encrypt.migrate import migrate
from authhero_encrypt.rotation import Outcome
from tests.envelope_rows import raw, write_raw
from tests.keys import KEY_A, KEY_B, KEY_C, SAMPLE_PEM
from tests.kms_server import DUMMY_CREDENTIALS, free_port, kms_providers
from tests.testapp import key_providers
from tests.testapp.models import PrivateKey

pytestmark = pytest.mark.django_db

TABLE = PrivateKey._meta.db_table
CUSTOM = "tests.testapp.key_providers.InMemoryKeyProvider"
_names = itertools.count()


class Kit:
    """One provider under test: ``settings()`` for its current KEK, ``rotate()`` to a new one,
    ``down()`` with its KEK unavailable. ``remote``: whether writes need a service too."""

    name = ""
    remote = True

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def rotate(self) -> None:
        raise NotImplementedError

    def down(self) -> dict[str, Any]:
        raise NotImplementedError


class CustomKit(Kit):
    name = "inmemory"

    def __init__(self) -> None:
        self.kids = ["kek1"]

    def entry(self, **extra: Any) -> dict[str, Any]:
        options = key_providers.options(*self.kids, **extra)
        return {"inmemory": {"BACKEND": CUSTOM, "OPTIONS": options}}

    def settings(self) -> dict[str, Any]:
        return {
            "ENCRYPTION_ENVELOPE_PROVIDER": "inmemory",
            "ENCRYPTION_ENVELOPE_PROVIDERS": self.entry(),
        }

    def rotate(self) -> None:
        self.kids.append("kek2")

    def down(self) -> dict[str, Any]:
        return {**self.settings(), "ENCRYPTION_ENVELOPE_PROVIDERS": self.entry(unavailable=True)}


class LocalKit(Kit):
    name = "local"
    remote = False  # the ring is in the process: only reads can lose their key

    def __init__(self) -> None:
        self.ring: dict[str, Any] = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "k1"}

    def settings(self) -> dict[str, Any]:
        return {
            "ENCRYPTION_ENVELOPE_PROVIDER": "local",
            "ENCRYPTION_KEY_FALLBACKS": [],
            **self.ring,
        }

    def rotate(self) -> None:
        self.ring = {
            "ENCRYPTION_KEY": KEY_B,
            "ENCRYPTION_KEY_ID": "k2",
            "ENCRYPTION_KEY_FALLBACKS": [f"k1:{KEY_A}"],
        }

    def down(self) -> dict[str, Any]:
        return {
            **self.settings(),
            "ENCRYPTION_KEY": KEY_C,
            "ENCRYPTION_KEY_ID": "k9",
            "ENCRYPTION_KEY_FALLBACKS": [],
        }


class AwsKit(Kit):
    name = "aws-kms"

    def __init__(self, server: Any) -> None:
        self.server = server
        self.key = self.new_key()

    def new_key(self) -> str:
        return str(self.server.client().create_key()["KeyMetadata"]["Arn"])

    def settings(self, url: str | None = None) -> dict[str, Any]:
        return {
            "ENCRYPTION_ENVELOPE_PROVIDER": "aws-kms",
            "ENCRYPTION_ENVELOPE_PROVIDERS": kms_providers(url or self.server.url, self.key),
        }

    def rotate(self) -> None:
        self.key = self.new_key()

    def down(self) -> dict[str, Any]:
        return self.settings(f"http://127.0.0.1:{free_port()}")


class VaultKit(Kit):
    name = "vault"

    def __init__(self, server: Any) -> None:
        self.server = server
        self.key = server.create_key(f"contract-{next(_names)}")

    def settings(self, **options: Any) -> dict[str, Any]:
        return {
            "ENCRYPTION_ENVELOPE_PROVIDER": "vault",
            "ENCRYPTION_ENVELOPE_PROVIDERS": self.server.providers(self.key, **options),
        }

    def rotate(self) -> None:
        self.server.rotate(self.key)

    def down(self) -> dict[str, Any]:
        return self.settings(url=f"http://127.0.0.1:{free_port()}")


@pytest.fixture(params=["custom", "local", "aws-kms", "vault"])
def kit(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    if request.param == "custom":
        made: Kit = CustomKit()
    elif request.param == "local":
        made = LocalKit()
    elif request.param == "aws-kms":
        for name, value in DUMMY_CREDENTIALS.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        made = AwsKit(request.getfixturevalue("moto"))
    else:
        made = VaultKit(request.getfixturevalue("bao"))
    reset_envelope()
    yield made
    reset_envelope()


def test_round_trip(kit):
    with override_settings(**kit.settings()):
        row = PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
        stored = raw(row.pk)
        assert stored.startswith(f"env:v1:{kit.name}:")
        assert "PRIVATE KEY" not in stored
        reset_envelope()
        assert PrivateKey.objects.get(pk=row.pk).pem == SAMPLE_PEM


def test_rotation_by_encryption_migrate(kit):
    with override_settings(**kit.settings()):
        rows = [PrivateKey.objects.create(name=str(n), pem=f"pem {n}") for n in range(3)]
    before = {row.pk: parse(raw(row.pk)) for row in rows}
    kit.rotate()
    reset_envelope()
    with override_settings(**kit.settings()):
        report = migrate(["testapp.PrivateKey"])
        assert report.ok, report.problems()
        pem = next(f for f in report.fields if f.label.endswith(".pem"))
        assert pem.total(Outcome.REWRAPPED) == 3
        for row in rows:
            after = parse(raw(row.pk))
            assert after.provider == kit.name
            assert after.key_id != before[row.pk].key_id
            assert after.payload == before[row.pk].payload
        reset_envelope()
        assert {PrivateKey.objects.get(pk=row.pk).pem for row in rows} == {
            "pem 0",
            "pem 1",
            "pem 2",
        }
        again = migrate(["testapp.PrivateKey"])
        assert (
            next(f for f in again.fields if f.label.endswith(".pem")).total(Outcome.REWRAPPED) == 0
        )


def test_wrong_context_refused(kit):
    with override_settings(**kit.settings()):
        row = PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
        write_raw(row.pk, "bundle", raw(row.pk))
        reset_envelope()
        with pytest.raises(DecryptionError) as caught:
            PrivateKey.objects.get(pk=row.pk)
    assert f"testapp.PrivateKey.bundle (primary key {row.pk})" in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_server_failures(kit):
    with override_settings(**kit.settings()):
        row = PrivateKey.objects.create(name="signing", pem=SAMPLE_PEM)
        stored = raw(row.pk)
    reset_envelope()
    with override_settings(**kit.down()):
        with pytest.raises(DecryptionError) as read:
            PrivateKey.objects.get(pk=row.pk)
        assert f"testapp.PrivateKey.pem (primary key {row.pk})" in str(read.value)
        if kit.remote:
            assert isinstance(read.value, KeyProviderError)
            with pytest.raises(KeyProviderError) as write, transaction.atomic():
                PrivateKey.objects.create(name="other", pem=SAMPLE_PEM)
            assert "nothing was written" in str(write.value)
    kit.rotate()
    reset_envelope()
    with override_settings(**kit.down()):
        # A rotation during the outage stops before any row (the active KEK cannot be asked
        # for) or reports each row it could not rewrap; either way nothing is written.
        try:
            report = migrate(["testapp.PrivateKey"])
        except KeyProviderError:
            pass
        else:
            assert not report.ok
    assert PrivateKey.objects.count() == 1
    assert raw(row.pk) == stored


def test_status_counts(kit):
    with override_settings(**kit.settings()):
        for n in range(2):
            PrivateKey.objects.create(name=str(n), pem=f"pem {n}")
        key_id = parse(raw(PrivateKey.objects.first().pk)).key_id
        out = StringIO()
        call_command("encryption_status", "testapp.PrivateKey", format="json", stdout=out)
    report = json.loads(out.getvalue())
    pem = next(f for f in report["fields"] if f["field"] == "pem")
    assert pem["by_key"] == {f"{kit.name}:{key_id}": 2}
    assert pem["encrypted"] == 2
    assert report["key"]["envelope"]["provider"] == kit.name
