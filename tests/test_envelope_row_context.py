"""Per-row envelope contexts: a tenant's value is bound to its tenant id."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from authhero_encrypt.envelope.config import reset_envelope
from authhero_encrypt.envelope.format import parse
from authhero_encrypt.exceptions import DecryptionError, EncryptionError, KeyProviderError
from authhero_encrypt.migrate import migrate
from authhero_encrypt.rotation import Outcome
from tests.keys import RING_K1, RING_K2, SAMPLE_PEM
from tests.rowapp.models import TenantKey

pytestmark = pytest.mark.django_db

TABLE = TenantKey._meta.db_table


def raw(pk: object) -> Any:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('pem')} FROM {qn(TABLE)} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def copy_raw(source: object, target: object) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(TABLE)} SET {qn('pem')} = %s WHERE id = %s", [raw(source), target]
        )


def test_a_value_round_trips_bound_to_its_tenant():
    key = TenantKey.objects.create(tenant_id=7, pem=SAMPLE_PEM)
    assert key.pem == SAMPLE_PEM
    stored = raw(key.pk)
    assert stored.startswith("env:v1:local:")
    assert "PRIVATE KEY" not in stored
    reset_envelope()
    assert TenantKey.objects.get(pk=key.pk).pem == SAMPLE_PEM
    field = TenantKey._meta.get_field("pem")
    assert field.context_for(key) == "rowapp.tenantkey.pem@tenant:7"


def test_a_value_copied_to_another_tenants_row_does_not_open():
    a = TenantKey.objects.create(tenant_id=1, pem="tenant one key")
    b = TenantKey.objects.create(tenant_id=2, pem="tenant two key")
    copy_raw(a.pk, b.pk)
    reset_envelope()
    loaded = TenantKey.objects.get(pk=b.pk)  # the value opens on first access
    with pytest.raises(DecryptionError) as caught:
        loaded.pem  # noqa: B018
    assert f"rowapp.TenantKey.pem (primary key {b.pk})" in str(caught.value)
    assert "tenant one key" not in str(caught.value)
    assert TenantKey.objects.get(pk=a.pk).pem == "tenant one key"


def test_moving_a_row_to_another_tenant_without_resealing_is_refused():
    key = TenantKey.objects.create(tenant_id=1, pem="k")
    loaded = TenantKey.objects.get(pk=key.pk)
    loaded.tenant_id = 2
    with pytest.raises(EncryptionError, match="nothing was written"), transaction.atomic():
        loaded.save()
    again = TenantKey.objects.get(pk=key.pk)
    assert again.pem == "k"  # opened while the row is still tenant 1's
    again.tenant_id = 2
    again.save()  # the plaintext is sealed again, for tenant 2
    reset_envelope()
    assert TenantKey.objects.get(pk=key.pk).pem == "k"


def test_queryset_update_is_refused_since_it_has_no_row():
    TenantKey.objects.create(tenant_id=1, pem="k")
    with pytest.raises(EncryptionError, match="bound to their row"):
        TenantKey.objects.update(pem="other")


def test_bulk_create_seals_each_row_for_its_tenant():
    rows = TenantKey.objects.bulk_create([TenantKey(tenant_id=n, pem=f"k{n}") for n in (1, 2)])
    reset_envelope()
    assert sorted(TenantKey.objects.values_list("tenant_id", flat=True)) == [1, 2]
    assert {k.tenant_id: k.pem for k in TenantKey.objects.all()} == {1: "k1", 2: "k2"}
    assert rows


def test_migrate_rewraps_with_each_rows_context():
    with override_settings(**RING_K1):
        keys = [TenantKey.objects.create(tenant_id=n, pem=f"k{n}") for n in (1, 2, 3)]
    before = {k.pk: parse(raw(k.pk)) for k in keys}
    with override_settings(**RING_K2):
        report = migrate(["rowapp.TenantKey"])
        assert report.ok, report.problems()
        assert report.fields[0].total(Outcome.REWRAPPED) == 3
        for k in keys:
            after = parse(raw(k.pk))
            assert after.key_id == "k2"
            assert after.payload == before[k.pk].payload
        reset_envelope()
        assert {k.tenant_id: k.pem for k in TenantKey.objects.all()} == {1: "k1", 2: "k2", 3: "k3"}


def test_migrate_reports_a_value_copied_across_tenants_and_keeps_it():
    with override_settings(**RING_K1):
        a = TenantKey.objects.create(tenant_id=1, pem="a")
        b = TenantKey.objects.create(tenant_id=2, pem="b")
    copy_raw(a.pk, b.pk)
    copied = raw(b.pk)
    with override_settings(**RING_K2):
        report = migrate(["rowapp.TenantKey"])
    assert not report.ok
    assert report.fields[0].total(Outcome.FAILED) == 1
    assert report.fields[0].failures[0][0] == b.pk
    assert raw(b.pk) == copied


def test_status_verify_opens_each_value_with_its_rows_context():
    a = TenantKey.objects.create(tenant_id=1, pem="a")
    b = TenantKey.objects.create(tenant_id=2, pem="b")
    out = StringIO()
    call_command("encryption_status", "rowapp.TenantKey", "--verify", format="json", stdout=out)
    field = json.loads(out.getvalue())["fields"][0]
    assert field["by_key"] == {"local:": 2} or sum(field["by_key"].values()) == 2
    copy_raw(a.pk, b.pk)
    reset_envelope()
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command(
            "encryption_status",
            "rowapp.TenantKey",
            "--verify",
            "--check",
            format="json",
            stdout=out,
        )


def test_a_vault_wrap_is_bound_to_the_row_too(bao):
    key = bao.create_key("row-context")
    providers = bao.providers(key)
    with override_settings(
        ENCRYPTION_ENVELOPE_PROVIDER="vault", ENCRYPTION_ENVELOPE_PROVIDERS=providers
    ):
        a = TenantKey.objects.create(tenant_id=1, pem="a")
        b = TenantKey.objects.create(tenant_id=2, pem="b")
        assert raw(a.pk).startswith(f"env:v1:vault:{key}:v1:")
        copy_raw(a.pk, b.pk)
        reset_envelope()
        assert TenantKey.objects.get(pk=a.pk).pem == "a"
        with pytest.raises(KeyProviderError, match="authentication failed") as caught:
            TenantKey.objects.get(pk=b.pk).pem  # noqa: B018
    assert f"rowapp.TenantKey.pem (primary key {b.pk})" in str(caught.value)
