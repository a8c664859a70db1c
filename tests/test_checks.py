from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from authhero_encrypt.checks import (
    check_encryption_enabled,
    check_key_for_encrypted_fields,
    check_key_settings,
)
from tests.keys import KEY_A, KEY_B, KEY_C

# Django 6.1's check command passes the databases to model checks, and JSONField's own check
# then asks SQLite whether it supports JSON: a query.
pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
SHORT_KEY = base64.b64encode(bytes(range(100, 148))).decode()  # 48 bytes
HEX_KEY = bytes(range(200, 232)).hex()
ALL_KEY_TEXTS = [KEY_A, KEY_B, KEY_C, SHORT_KEY, HEX_KEY]


def ids(messages: list[CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def assert_no_key_text(messages: list[CheckMessage], *extra: str) -> None:
    for message in messages:
        text = f"{message.msg} {message.hint or ''}"
        for key in (*ALL_KEY_TEXTS, *extra):
            assert key.strip().rstrip("=") not in text


def run_key_checks() -> list[CheckMessage]:
    messages = check_key_settings()
    assert_no_key_text(messages)
    return messages


def run_check_command(**options: object) -> str:
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err, **options)
    return out.getvalue() + err.getvalue()


# A valid configuration


def test_test_settings_are_clean():
    assert check_key_settings() == []
    assert check_encryption_enabled() == []
    assert check_key_for_encrypted_fields() == []


@pytest.mark.parametrize(
    "config",
    [
        {"ENCRYPTION_KEY": KEY_A},
        {"ENCRYPTION_KEY": f"  {KEY_A.rstrip('=')}\n"},
        {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "2026-11"},
        {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": ""},
        {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_FALLBACKS": []},
        {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_FALLBACKS": (KEY_B,)},
        {
            "ENCRYPTION_KEY": KEY_A,
            "ENCRYPTION_KEY_ID": "new",
            "ENCRYPTION_KEY_FALLBACKS": [f"old:{KEY_B}", KEY_C],
        },
        {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_FALLBACKS": [KEY_B, KEY_C]},
        {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_PAD_PAYLOAD": True},
        {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_PAD_PAYLOAD": False},
    ],
)
def test_valid_config_gives_no_messages(config):
    with override_settings(**config):
        assert check_key_settings() == []
        output = run_check_command()
    assert "authhero_encrypt" not in output
    assert "no issues" in output


def test_valid_config_with_deploy_gives_no_authhero_messages():
    # A deployment that is done migrating runs strict mode (W005 otherwise).
    with override_settings(ENCRYPTION_REJECT_PLAINTEXT=True):
        output = run_check_command(deploy=True)
    assert "authhero_encrypt" not in output


def test_checks_are_registered():
    registered = checks.registry.registry.get_checks(include_deployment_checks=True)
    assert check_key_settings in registered
    assert check_encryption_enabled in registered
    assert check_encryption_enabled not in checks.registry.registry.get_checks()
    assert check_key_for_encrypted_fields in checks.registry.registry.get_checks()


# E001: ENCRYPTION_KEY


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        (SHORT_KEY, "(got 48)"),
        (base64.b64encode(bytes(16)).decode(), "(got 16)"),
        (HEX_KEY, "hex"),
        ("not base64 at all!", "not valid base64"),
        ("   ", "is empty"),
        (KEY_A.encode(), "not bytes"),
        (12345, "not int"),
    ],
)
def test_e001_malformed_key(key, fragment):
    with override_settings(ENCRYPTION_KEY=key):
        messages = run_key_checks()
    assert ids(messages) == ["authhero_encrypt.E001"]
    assert messages[0].level == checks.ERROR
    assert messages[0].msg.startswith("ENCRYPTION_KEY ")
    assert fragment in messages[0].msg
    assert "openssl rand -base64 32" in (messages[0].hint or "")
    if isinstance(key, str) and key.strip():
        assert_no_key_text(messages, key)


def test_e001_fails_the_check_command():
    with override_settings(ENCRYPTION_KEY=SHORT_KEY), pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    text = str(info.value)
    assert "authhero_encrypt.E001" in text
    assert SHORT_KEY.rstrip("=") not in text


# E002: ENCRYPTION_KEY_ID


@pytest.mark.parametrize("key_id", ["has space", "k.1", "k:1", "k" * 65, 7, b"k1"])
def test_e002_malformed_key_id(key_id):
    with override_settings(ENCRYPTION_KEY=KEY_A, ENCRYPTION_KEY_ID=key_id):
        messages = run_key_checks()
    assert ids(messages) == ["authhero_encrypt.E002"]
    assert messages[0].level == checks.ERROR
    assert messages[0].msg.startswith("ENCRYPTION_KEY_ID must be")


def test_e001_and_e002_together():
    with override_settings(ENCRYPTION_KEY=SHORT_KEY, ENCRYPTION_KEY_ID="a b"):
        assert sorted(ids(run_key_checks())) == ["authhero_encrypt.E001", "authhero_encrypt.E002"]


# E003: ENCRYPTION_KEY_FALLBACKS


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (SHORT_KEY, "ENCRYPTION_KEY_FALLBACKS[1] must decode to 32 bytes (got 48)"),
        (f"old:{SHORT_KEY}", "ENCRYPTION_KEY_FALLBACKS[1] must decode to 32 bytes (got 48)"),
        (f"bad id:{KEY_C}", "the key id of ENCRYPTION_KEY_FALLBACKS[1]"),
        (f":{KEY_C}", "ENCRYPTION_KEY_FALLBACKS[1] has an empty key id"),
        ("", "ENCRYPTION_KEY_FALLBACKS[1] is empty"),
        (HEX_KEY, "hex"),
        (KEY_C.encode(), "ENCRYPTION_KEY_FALLBACKS[1] must be a string"),
        (None, "ENCRYPTION_KEY_FALLBACKS[1] must be a string"),
    ],
)
def test_e003_malformed_fallback_entry(entry, fragment):
    with override_settings(ENCRYPTION_KEY=KEY_A, ENCRYPTION_KEY_FALLBACKS=[KEY_B, entry]):
        messages = run_key_checks()
    assert ids(messages) == ["authhero_encrypt.E003"]
    assert messages[0].level == checks.ERROR
    assert fragment in messages[0].msg
    assert "KEYID:BASE64KEY" in (messages[0].hint or "")


def test_e003_one_error_per_bad_entry():
    with override_settings(ENCRYPTION_KEY=KEY_A, ENCRYPTION_KEY_FALLBACKS=["x", KEY_B, "y:z"]):
        messages = run_key_checks()
    assert ids(messages) == ["authhero_encrypt.E003", "authhero_encrypt.E003"]
    assert "[0]" in messages[0].msg
    assert "[2]" in messages[1].msg


@pytest.mark.parametrize(
    ("fallbacks", "type_name"),
    [(KEY_B, "str"), ({"old": KEY_B}, "dict"), ({KEY_B}, "set"), (KEY_B.encode(), "bytes")],
)
def test_e003_fallbacks_not_a_list(fallbacks, type_name):
    with override_settings(ENCRYPTION_KEY=KEY_A, ENCRYPTION_KEY_FALLBACKS=fallbacks):
        messages = run_key_checks()
    assert ids(messages) == ["authhero_encrypt.E003"]
    assert f"must be a list of strings, not {type_name}" in messages[0].msg


def test_e003_fails_the_check_command():
    config = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_FALLBACKS": KEY_B}
    with override_settings(**config), pytest.raises(SystemCheckError, match="E003"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


# E004: duplicate key ids


def test_e004_active_and_fallback_share_an_id():
    config = {
        "ENCRYPTION_KEY": KEY_A,
        "ENCRYPTION_KEY_ID": "k1",
        "ENCRYPTION_KEY_FALLBACKS": [f"k1:{KEY_B}"],
    }
    with override_settings(**config):
        messages = run_key_checks()
    assert ids(messages) == ["authhero_encrypt.E004"]
    assert messages[0].level == checks.ERROR
    assert "'k1'" in messages[0].msg


def test_e004_two_fallbacks_share_an_id():
    config = {
        "ENCRYPTION_KEY": KEY_A,
        "ENCRYPTION_KEY_ID": "new",
        "ENCRYPTION_KEY_FALLBACKS": [f"old:{KEY_B}", KEY_C, f"old:{KEY_C}"],
    }
    with override_settings(**config):
        messages = run_key_checks()
    assert ids(messages) == ["authhero_encrypt.E004"]
    assert "'old'" in messages[0].msg


def test_e004_without_an_active_key():
    config = {"ENCRYPTION_KEY": None, "ENCRYPTION_KEY_FALLBACKS": [f"x:{KEY_B}", f"x:{KEY_C}"]}
    with override_settings(**config):
        assert "authhero_encrypt.E004" in ids(run_key_checks())


def test_same_key_under_two_ids_is_not_a_duplicate():
    config = {
        "ENCRYPTION_KEY": KEY_A,
        "ENCRYPTION_KEY_ID": "a",
        "ENCRYPTION_KEY_FALLBACKS": [f"b:{KEY_A}"],
    }
    with override_settings(**config):
        assert run_key_checks() == []


# W001: encryption off (deploy only), where W004 does not already say so

W004_SILENCED = [*settings.SILENCED_SYSTEM_CHECKS, "authhero_encrypt.W004"]


@pytest.mark.parametrize("key", [None, ""])
def test_w001_only_with_deploy_and_only_where_w004_is_silent(key):
    with override_settings(ENCRYPTION_KEY=key, SILENCED_SYSTEM_CHECKS=W004_SILENCED):
        messages = check_encryption_enabled()
        assert ids(messages) == ["authhero_encrypt.W001"]
        assert messages[0].level == checks.WARNING
        assert "openssl rand -base64 32" in (messages[0].hint or "")
        assert check_key_settings() == []
        assert "authhero_encrypt.W001" not in run_check_command()
        assert "authhero_encrypt.W001" in run_check_command(deploy=True)


def test_w001_and_w004_never_both_under_deploy():
    """W004 names the encrypted fields; W001 would repeat it under check --deploy."""
    with override_settings(ENCRYPTION_KEY=None):
        assert check_encryption_enabled() == []
        output = run_check_command(deploy=True)
    assert "authhero_encrypt.W004" in output
    assert "authhero_encrypt.W001" not in output


def test_w001_when_no_model_declares_an_encrypted_field():
    auth = [apps.get_app_config("auth")]
    with override_settings(ENCRYPTION_KEY=None):
        assert check_key_for_encrypted_fields(app_configs=auth) == []
        assert ids(check_encryption_enabled(app_configs=auth)) == ["authhero_encrypt.W001"]


def test_w001_and_w004_say_different_things():
    with override_settings(ENCRYPTION_KEY=None):
        (w004,) = check_key_for_encrypted_fields()
    with override_settings(ENCRYPTION_KEY=None, SILENCED_SYSTEM_CHECKS=W004_SILENCED):
        (w001,) = check_encryption_enabled()
    assert w001.msg != w004.msg
    assert w001.hint != w004.hint
    assert "deployment" in w001.msg


def test_w001_when_the_setting_is_missing():
    with override_settings(SILENCED_SYSTEM_CHECKS=W004_SILENCED):
        del settings.ENCRYPTION_KEY
        assert ids(check_encryption_enabled()) == ["authhero_encrypt.W001"]
        assert check_key_settings() == []


def test_w001_not_raised_with_a_key():
    assert check_encryption_enabled() == []
    with override_settings(ENCRYPTION_KEY=KEY_B, SILENCED_SYSTEM_CHECKS=W004_SILENCED):
        assert check_encryption_enabled() == []


def test_w001_does_not_fail_the_check_command():
    with override_settings(ENCRYPTION_KEY=None, SILENCED_SYSTEM_CHECKS=W004_SILENCED):
        # A warning is printed; SystemCheckError would be raised for an error.
        output = run_check_command(deploy=True)
    assert "authhero_encrypt.W001" in output


# W002: key id or fallbacks without a key


@pytest.mark.parametrize(
    "config",
    [
        {"ENCRYPTION_KEY_ID": "k1"},
        {"ENCRYPTION_KEY_FALLBACKS": [KEY_B]},
        {"ENCRYPTION_KEY_ID": "k1", "ENCRYPTION_KEY_FALLBACKS": [f"old:{KEY_B}"]},
    ],
)
@pytest.mark.parametrize("key", [None, ""])
def test_w002_key_settings_without_a_key(key, config):
    with override_settings(ENCRYPTION_KEY=key, **config):
        messages = run_key_checks()
        output = run_check_command()
    assert ids(messages) == ["authhero_encrypt.W002"]
    assert messages[0].level == checks.WARNING
    assert "authhero_encrypt.W002" in output


def test_no_w002_with_a_key():
    with override_settings(ENCRYPTION_KEY_ID="k1", ENCRYPTION_KEY_FALLBACKS=[KEY_B]):
        assert run_key_checks() == []


def test_no_w002_for_empty_settings():
    with override_settings(ENCRYPTION_KEY=None, ENCRYPTION_KEY_ID="", ENCRYPTION_KEY_FALLBACKS=[]):
        assert run_key_checks() == []


# W003: a url-safe key, which AuthHero refuses


URLSAFE_KEY = base64.urlsafe_b64encode(bytes([251, 255] * 16)).decode()  # has '-' and '_'
STANDARD_KEY = base64.b64encode(bytes([251, 255] * 16)).decode()


@pytest.mark.parametrize(
    "key", [URLSAFE_KEY, URLSAFE_KEY.rstrip("="), f" {URLSAFE_KEY}\n", "-" + STANDARD_KEY[1:]]
)
def test_w003_urlsafe_key(key):
    assert "-" in URLSAFE_KEY
    assert "_" in URLSAFE_KEY
    with override_settings(ENCRYPTION_KEY=key):
        messages = check_key_settings()
        output = run_check_command()
    assert ids(messages) == ["authhero_encrypt.W003"]
    assert messages[0].level == checks.WARNING
    assert "AuthHero" in messages[0].msg
    assert_no_key_text(messages, URLSAFE_KEY, STANDARD_KEY)
    assert "authhero_encrypt.W003" in output
    assert "no issues" not in output


def test_w003_not_for_the_standard_spelling_or_a_malformed_key():
    with override_settings(ENCRYPTION_KEY=STANDARD_KEY):
        assert check_key_settings() == []
    with override_settings(ENCRYPTION_KEY="not-a_key"):
        assert ids(check_key_settings()) == ["authhero_encrypt.E001"]


# W004: the key is unset while models declare encrypted fields


@pytest.mark.parametrize("key", [None, ""])
def test_w004_key_unset_with_encrypted_fields(key):
    with override_settings(ENCRYPTION_KEY=key):
        messages = check_key_for_encrypted_fields()
        assert check_key_settings() == []
        output = run_check_command()
    assert ids(messages) == ["authhero_encrypt.W004"]
    assert messages[0].level == checks.WARNING
    assert "testapp.Secret.token" in messages[0].msg
    assert "cannot be read" in messages[0].msg
    assert "SILENCED_SYSTEM_CHECKS" in (messages[0].hint or "")
    # A warning: manage.py check prints it and does not fail.
    assert "authhero_encrypt.W004" in output


def test_w004_when_the_setting_is_missing():
    with override_settings():
        del settings.ENCRYPTION_KEY
        assert ids(check_key_for_encrypted_fields()) == ["authhero_encrypt.W004"]


def test_w004_only_for_apps_with_encrypted_fields():
    with override_settings(ENCRYPTION_KEY=None):
        assert check_key_for_encrypted_fields(app_configs=[apps.get_app_config("auth")]) == []
        chosen = [apps.get_app_config("testapp")]
        assert ids(check_key_for_encrypted_fields(app_configs=chosen)) == ["authhero_encrypt.W004"]


def test_w004_counts_envelope_fields_unless_kms_wraps_them():
    with override_settings(ENCRYPTION_KEY=None):
        (message,) = check_key_for_encrypted_fields()
        local = int(str(message.msg).split("but ")[1].split(" ")[0])
    with override_settings(ENCRYPTION_KEY=None, ENCRYPTION_ENVELOPE_PROVIDER="aws-kms"):
        (message,) = check_key_for_encrypted_fields()
        kms = int(str(message.msg).split("but ")[1].split(" ")[0])
    # testapp.PrivateKey's pem and bundle, GuardVaultItem.pem, TenantKey.pem, the example's
    # SigningKey.pkcs7 and
    # dkim_private_key
    assert local - kms == 6


def test_w004_can_be_silenced():
    silenced = [*settings.SILENCED_SYSTEM_CHECKS, "authhero_encrypt.W004"]
    with override_settings(ENCRYPTION_KEY=None, SILENCED_SYSTEM_CHECKS=silenced):
        output = run_check_command()
    assert "authhero_encrypt" not in output


# E005: ENCRYPTION_PAD_PAYLOAD


@pytest.mark.parametrize("value", ["yes", "False", 1, 0, None])
def test_e005_pad_payload_not_a_bool(value):
    with override_settings(ENCRYPTION_PAD_PAYLOAD=value):
        messages = run_key_checks()
        with pytest.raises(SystemCheckError):
            call_command("check", stdout=StringIO(), stderr=StringIO())
    assert ids(messages) == ["authhero_encrypt.E005"]
    assert messages[0].msg.startswith("ENCRYPTION_PAD_PAYLOAD must be True or False")


# Messages never carry key text


def test_no_message_or_hint_contains_key_text():
    secret_short = base64.b64encode(secrets.token_bytes(40)).decode()
    secret_fallback = base64.b64encode(secrets.token_bytes(20)).decode()
    config = {
        "ENCRYPTION_KEY": secret_short,
        "ENCRYPTION_KEY_ID": "bad id",
        "ENCRYPTION_KEY_FALLBACKS": [f"old:{secret_fallback}", HEX_KEY, f"k:{KEY_B}", f"k:{KEY_C}"],
    }
    with override_settings(**config):
        messages = check_key_settings()
        with pytest.raises(SystemCheckError) as info:
            call_command("check", stdout=StringIO(), stderr=StringIO())
    assert sorted(ids(messages)) == [
        "authhero_encrypt.E001",
        "authhero_encrypt.E002",
        "authhero_encrypt.E003",
        "authhero_encrypt.E003",
        "authhero_encrypt.E004",
    ]
    assert_no_key_text(messages, secret_short, secret_fallback)
    for key in (*ALL_KEY_TEXTS, secret_short, secret_fallback):
        assert key.rstrip("=") not in str(info.value)


# manage.py check, end to end


def test_manage_py_check_exits_non_zero_with_a_bad_key(tmp_path):
    (tmp_path / "bad_key_settings.py").write_text(
        "from tests.settings import *  # noqa: F403\n"
        f"ENCRYPTION_KEY = {SHORT_KEY!r}\n"
        'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}\n'
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bad_key_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "authhero_encrypt.E001" in result.stderr
    assert "must decode to 32 bytes (got 48)" in result.stderr
    assert SHORT_KEY.rstrip("=") not in result.stdout + result.stderr
