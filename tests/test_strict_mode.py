"""Strict mode: stored plaintext is refused on read, and the tools that get you there still work.

Plaintext is planted with raw SQL, as a writer around the application would plant it; what is at
rest is read with a cursor. Runs on SQLite, PostgreSQL and MariaDB (TEST_DATABASE).
"""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core import checks
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from authhero_encrypt.checks import check_reject_plaintext_deploy, check_reject_plaintext_setting
from authhero_encrypt.crypto import is_encrypted
from authhero_encrypt.exceptions import DecryptionError
from authhero_encrypt.fields import (
    EncryptedCharField,
    EncryptedTextField,
    EnvelopeEncryptedTextField,
    JSONPathEncryptedField,
)
from authhero_encrypt.fields.strict import plaintext_tolerated
from authhero_encrypt.inventory import load_json
from example_project.authhero import models as demo
from tests.admin_helpers import EDITABLE_ROWS, assert_saved, form_data, obj_of, stored_columns, url
from tests.testapp.models import Connection, EmailProvider, PrivateKey, Secret

pytestmark = pytest.mark.django_db

STRICT = override_settings(ENCRYPTION_REJECT_PLAINTEXT=True)
PLANTED = "planted-by-attacker-77"


def write_raw(model: type, pk: Any, column: str, value: Any) -> None:
    qn = connection.ops.quote_name
    if isinstance(value, dict):
        value = json.dumps(value)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(model._meta.db_table)} SET {qn(column)} = %s "
            f"WHERE {qn(model._meta.pk.column)} = %s",
            [value, pk],
        )


SCALARS = [(Secret, "token"), (Secret, "notes"), (PrivateKey, "pem")]


def planted_row(model: type, column: str, value: Any) -> Any:
    row = model._default_manager.create(**{"token" if model is Secret else "pem": "fine-value"})
    write_raw(model, row.pk, column, value)
    return row


# Reads -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "column"), SCALARS)
@pytest.mark.parametrize("value", [PLANTED, "", " enc:v1:AAAA", "ENC:v1:AAAA", "env:v2:x"])
def test_stored_plaintext_is_refused_naming_model_field_and_pk(model, column, value):
    row = planted_row(model, column, value)
    assert model._default_manager.get(pk=row.pk).__dict__[column] == value  # AuthHero's rule
    with STRICT, pytest.raises(DecryptionError) as info:
        model._default_manager.get(pk=row.pk)
    message = str(info.value)
    assert f"{model._meta.label}.{column}" in message
    assert f"primary key {row.pk!r}" in message
    assert "ENCRYPTION_REJECT_PLAINTEXT" in message
    if value:
        assert value not in message
    with STRICT, pytest.raises(DecryptionError):
        list(model._default_manager.filter(pk=row.pk).values_list(column, flat=True))


@pytest.mark.parametrize(("model", "column"), SCALARS)
def test_ciphertext_and_null_still_read_in_strict_mode(model, column):
    with STRICT:
        row = model._default_manager.create(**{column: "sealed-value"})
        assert model._default_manager.get(pk=row.pk).__dict__[column] == "sealed-value"
        write_raw(model, row.pk, column, None)
        assert model._default_manager.get(pk=row.pk).__dict__[column] is None


def test_an_enc_v1_value_in_an_envelope_field_still_reads(raw_column):
    secret = Secret.objects.create(notes="moved-over")
    row = PrivateKey.objects.create(name="k", pem="x")
    write_raw(PrivateKey, row.pk, "pem", raw_column(Secret, secret.pk, "notes"))
    with STRICT:
        assert PrivateKey.objects.get(pk=row.pk).pem == "moved-over"


def test_a_json_secret_leaf_in_plaintext_is_refused_and_plain_keys_are_not():
    row = Connection.objects.create(name="c", options={"client_id": "id-1", "client_secret": "s"})
    document = {
        "client_id": "id-1",  # a plaintext key: read as it is
        "app_secret": 7,  # not a string: AuthHero never encrypts it
        "configuration": {"client_secret": PLANTED},
    }
    write_raw(Connection, row.pk, "options", document)
    with STRICT, pytest.raises(DecryptionError) as info:
        Connection.objects.get(pk=row.pk)
    message = str(info.value)
    assert "testapp.Connection.options path 'configuration.client_secret'" in message
    assert f"primary key {row.pk!r}" in message
    assert PLANTED not in message
    with STRICT:
        assert list(Connection.objects.filter(pk=row.pk).values_list("options__client_id")) == [
            ("id-1",)
        ]
        write_raw(Connection, row.pk, "options", {"client_id": "id-1", "app_secret": 7})
        assert Connection.objects.get(pk=row.pk).options["app_secret"] == 7


def test_an_empty_json_leaf_is_plaintext_too():
    row = EmailProvider.objects.create(name="smtp", credentials={"password": "p"})
    write_raw(EmailProvider, row.pk, "credentials", {"password": ""})
    assert EmailProvider.objects.get(pk=row.pk).credentials == {"password": ""}
    with STRICT, pytest.raises(DecryptionError, match="path 'password'"):
        EmailProvider.objects.get(pk=row.pk)


def test_plaintext_tolerated_reads_as_authhero_does():
    row = planted_row(Secret, "token", PLANTED)
    with STRICT, plaintext_tolerated():
        assert Secret.objects.get(pk=row.pk).token == PLANTED
    with STRICT, pytest.raises(DecryptionError):
        Secret.objects.get(pk=row.pk)


# The per-field override --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_setting", "setting", "refused"),
    [
        (True, False, True),
        (False, True, False),
        (None, True, True),
        (None, False, False),
    ],
)
def test_reject_plaintext_overrides_the_setting(monkeypatch, field_setting, setting, refused):
    row = planted_row(Secret, "token", PLANTED)
    monkeypatch.setattr(Secret._meta.get_field("token"), "reject_plaintext", field_setting)
    with override_settings(ENCRYPTION_REJECT_PLAINTEXT=setting):
        if refused:
            with pytest.raises(DecryptionError):
                Secret.objects.get(pk=row.pk)
        else:
            assert Secret.objects.get(pk=row.pk).token == PLANTED


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: EncryptedCharField(max_length=10, **kw),
        lambda **kw: EncryptedTextField(**kw),
        lambda **kw: JSONPathEncryptedField(encrypted_paths=["a"], **kw),
        lambda **kw: EnvelopeEncryptedTextField(**kw),
    ],
)
def test_reject_plaintext_is_checked_and_deconstructed(make):
    assert "reject_plaintext" not in make().deconstruct()[3]
    assert make(reject_plaintext=True).deconstruct()[3]["reject_plaintext"] is True
    assert make(reject_plaintext=False).deconstruct()[3]["reject_plaintext"] is False
    with pytest.raises(ValueError, match="reject_plaintext must be None"):
        make(reject_plaintext="yes")


# Checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["True", 1, None, "false"])
def test_e006_for_a_setting_that_is_not_a_bool(value):
    with override_settings(ENCRYPTION_REJECT_PLAINTEXT=value):
        assert [e.id for e in check_reject_plaintext_setting()] == ["authhero_encrypt.E006"]


@pytest.mark.parametrize("value", [True, False])
def test_no_e006_for_a_bool(value):
    with override_settings(ENCRYPTION_REJECT_PLAINTEXT=value):
        assert check_reject_plaintext_setting() == []


def test_w005_only_under_deploy_while_strict_mode_is_off():
    registered = checks.registry.registry.get_checks(include_deployment_checks=False)
    assert check_reject_plaintext_deploy not in registered
    assert check_reject_plaintext_deploy in checks.registry.registry.get_checks(
        include_deployment_checks=True
    )
    assert [e.id for e in check_reject_plaintext_deploy()] == ["authhero_encrypt.W005"]
    with STRICT:
        assert check_reject_plaintext_deploy() == []
    with override_settings(ENCRYPTION_KEY=None):
        assert check_reject_plaintext_deploy() == []  # W001 says encryption is off


def test_no_w005_when_every_encrypted_field_is_strict_itself(monkeypatch):
    from django.apps import apps

    from authhero_encrypt.inventory import encrypted_fields

    for model in apps.get_models():
        for field in encrypted_fields(model):
            monkeypatch.setattr(field, "reject_plaintext", True)
    assert check_reject_plaintext_deploy() == []
    monkeypatch.setattr(Secret._meta.get_field("notes"), "reject_plaintext", None)
    (warning,) = check_reject_plaintext_deploy()
    assert "1 encrypted field(s)" in warning.msg


# The commands and the admin keep working in strict mode ---------------------------------------


def status_text(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command("encryption_status", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def test_status_classifies_plaintext_in_strict_mode_and_migrate_encrypts_it(raw_column):
    rows = [planted_row(m, c, PLANTED) for m, c in SCALARS]
    conn = Connection.objects.create(name="c", options={"client_secret": "s"})
    write_raw(Connection, conn.pk, "options", {"client_secret": PLANTED})
    with STRICT:
        text = status_text("testapp")
        assert "still stored as plaintext" in text
        assert "Strict mode is on" in text
        with pytest.raises(SystemExit):
            status_text("testapp", check=True)
        call_command("encryption_migrate", "testapp", stdout=StringIO(), stderr=StringIO())
        for row, (model, column) in zip(rows, SCALARS, strict=True):
            assert raw_column(model, row.pk, column) != PLANTED
            assert model._default_manager.get(pk=row.pk).__dict__[column] == PLANTED
        stored = load_json(raw_column(Connection, conn.pk, "options"))
        assert is_encrypted(stored["client_secret"])
        assert Connection.objects.get(pk=conn.pk).options == {"client_secret": PLANTED}
        status_text("testapp", check=True, verify=True)  # green: returns normally


def test_status_says_when_strict_mode_can_go_on():
    Secret.objects.create(token="sealed")
    assert "No plaintext is left" in status_text("testapp")
    with STRICT:
        assert "No plaintext is left" not in status_text("testapp")
    planted_row(Secret, "token", PLANTED)
    assert "No plaintext is left" not in status_text("testapp")


def test_the_admin_works_in_strict_mode_with_plaintext_rows(admin_client, demo_rows):
    legacy = [(row, obj_of(row)) for row in EDITABLE_ROWS if row.legacy]
    assert legacy
    with STRICT:
        with pytest.raises(DecryptionError):
            list(legacy[0][0].model_class._default_manager.all())
        for row, obj in legacy:
            changelist = admin_client.get(url(row.model_class))
            assert changelist.status_code == 200
            assert "legacy plaintext" in changelist.content.decode()
            for action in ("delete", "history"):
                assert admin_client.get(url(row.model_class, action, obj.pk)).status_code == 200
            before = stored_columns(obj)
            page = admin_client.get(url(row.model_class, "change", obj.pk)).content.decode()
            response = admin_client.post(
                url(row.model_class, "change", obj.pk), form_data(page, row.model_class)
            )
            assert response.status_code == 302, response.content.decode()[:2000]
            assert_saved(row, before)  # the untouched legacy secrets are now encrypted
        for row, _obj in legacy:
            list(row.model_class._default_manager.all())  # nothing planted is left to refuse
    assert demo.Client.objects.exists()
