"""The example project: its settings, demo data, management commands and ``run.py``.

Creating a fresh virtual environment is too slow for the suite; CI runs the README's first
command from a fresh clone instead. Here ``run.py --no-server`` runs against this virtual
environment and a throwaway database.
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import connection

from authhero_encrypt.crypto import decrypt_value, is_encrypted
from authhero_encrypt.inventory import encrypted_fields, is_envelope_field, load_json
from example_project.authhero import models as demo_models
from example_project.authhero.demo_data import DEMO_ROWS, load_demo_data
from tests.keys import KEY_A

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def example_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ENCRYPTION_"))}
    env.update(ENCRYPTION_KEY=KEY_A, EXAMPLE_DATABASE_PATH=str(tmp_path / "example.sqlite3"))
    return env


def load_run_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_run", EXAMPLE / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manage_py_check_passes(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), "check", "--fail-level", "WARNING"],
        env=example_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_settings_take_the_key_from_the_environment(tmp_path):
    probe = "from django.conf import settings; print(settings.ENCRYPTION_KEY)"
    command = [sys.executable, "-c", f"import django; django.setup(); {probe}"]
    env = {**example_env(tmp_path), "DJANGO_SETTINGS_MODULE": "example_project.settings"}
    root = str(EXAMPLE.parent)
    result = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == KEY_A
    del env["ENCRYPTION_KEY"]
    result = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "None"


@pytest.mark.django_db
def test_migrations_are_up_to_date():
    call_command("makemigrations", "authhero", check=True, dry_run=True, verbosity=0)


def raw(obj, column):
    table = connection.ops.quote_name(obj._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s", [obj.pk]
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_demo_data_holds_encrypted_and_legacy_rows():
    assert load_demo_data() == (len(DEMO_ROWS), 6)
    assert load_demo_data() == (0, 0)
    for row in DEMO_ROWS:
        obj = row.model_class._default_manager.get(**row.lookup)
        for field in encrypted_fields(row.model_class):
            stored, plaintext = raw(obj, field.column), row.values.get(field.name)
            if field.get_internal_type() == "JSONField":
                stored = load_json(stored)
                leaves = dict(field.path_trie.secrets(stored))
                expected = dict(field.path_trie.secrets(plaintext))
                assert leaves.keys() == expected.keys()
                for path, value in leaves.items():
                    if row.legacy:
                        assert value == expected[path]
                    else:
                        assert is_encrypted(value)
                        assert decrypt_value(value) == expected[path]
            elif plaintext is None:
                assert stored is None
            elif row.legacy:
                assert stored == plaintext
            elif is_envelope_field(field):
                assert stored.startswith("env:v1:local:")
                assert plaintext not in stored
            else:
                assert is_encrypted(stored)
                assert decrypt_value(stored) == plaintext
            # Legacy or not, the field reads the plaintext.
            assert getattr(obj, field.name) == plaintext
    assert sorted({row.model for row in DEMO_ROWS if row.legacy}) == [
        "AuthenticationMethod",
        "Client",
        "Connection",
        "CustomDomain",
        "EmailProvider",
        "MigrationSource",
    ]


@pytest.mark.django_db
def test_private_keys_are_envelope_encrypted():
    load_demo_data()
    for model, name in (("SigningKey", "pkcs7"), ("CustomDomain", "dkim_private_key")):
        row = next(row for row in DEMO_ROWS if row.model == model and not row.legacy)
        obj = row.model_class._default_manager.get(**row.lookup)
        stored = raw(obj, name)
        assert stored.startswith("env:v1:local:")
        assert "PRIVATE KEY" not in stored
        assert getattr(obj, name) == row.values[name]
        assert "envelope" in (row.model_class.__doc__ or "")
    assert "future iteration" in (demo_models.SigningKey.__doc__ or "")


def test_w301_is_quiet_in_the_example_whose_tables_are_not_authheros():
    """The envelope columns are named like AuthHero's, but they sit in the example's own tables
    (authhero_signingkey, authhero_customdomain), which AuthHero never reads: no W301, and
    nothing to silence."""
    fields = [demo_models.SigningKey._meta.get_field("pkcs7")]
    fields.append(demo_models.CustomDomain._meta.get_field("dkim_private_key"))
    for field in fields:
        assert "authhero_encrypt.W301" not in [message.id for message in field.check()]
    settings_text = (EXAMPLE / "settings.py").read_text("utf-8")
    assert "SILENCED_SYSTEM_CHECKS" not in settings_text


@pytest.mark.django_db
def test_create_demo_admin_creates_then_resets(capsys):
    call_command("create_demo_admin", username="demo", password="first-pw")
    call_command("create_demo_admin", username="demo", password="second-pw")
    assert authenticate(username="demo", password="first-pw") is None
    user = authenticate(username="demo", password="second-pw")
    assert user is not None
    assert user.is_superuser
    assert user.is_staff
    assert capsys.readouterr().out.splitlines() == [
        "Created the demo admin 'demo'.",
        "Reset the demo admin 'demo'.",
    ]


def test_run_py_uses_only_the_standard_library():
    tree = ast.parse((EXAMPLE / "run.py").read_text("utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_run_py_demo_key_is_generated_once_and_reused(tmp_path):
    run = load_run_py()
    key_file = tmp_path / ".demo-encryption-key"
    key, note = run.demo_key({}, key_file)
    assert len(base64.b64decode(key)) == 32
    assert note is not None
    assert "generated a throwaway demo key" in note
    assert key not in note
    assert key_file.stat().st_mode & 0o077 == 0
    again, note = run.demo_key({}, key_file)
    assert again == key
    assert note is not None
    assert "using the throwaway demo key" in note
    assert run.demo_key({"ENCRYPTION_KEY": KEY_A}, key_file) == (KEY_A, None)


@pytest.mark.skipif(
    os.environ.get("TEST_DATABASE", "sqlite") != "sqlite",
    reason="run.py always uses SQLite; it runs once, in the SQLite suite",
)
def test_run_py_no_server_sets_everything_up(tmp_path):
    command = [
        sys.executable,
        str(EXAMPLE / "run.py"),
        "--no-server",
        "--venv",
        sys.prefix,
        "--port",
        "8765",
    ]
    result = subprocess.run(
        command, env=example_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # Rows, and what is counted later is values: the message says which.
    assert "Loaded 18 demo rows; 6 of those rows keep their secrets as legacy plaintext" in out
    # encryption_status counts the envelope-encrypted private keys, and the legacy DKIM key,
    # spelling "no key id" as every report does.
    status_lines = [line.split() for line in out.splitlines()]
    no_key_id = ["local", "(no", "key", "id):", "1"]
    assert ["authhero.SigningKey", "pkcs7", "-", "1", "0", "0", "0", *no_key_id] in status_lines
    assert [
        "authhero.CustomDomain",
        *("dkim_private_key", "-", "1", "1", "0", "0", *no_key_id),
    ] in status_lines
    assert "local:=1" not in out
    assert "(untagged)" not in out
    assert "URL:      http://127.0.0.1:8765/admin/" in out
    assert "Username: admin" in out
    assert "Password: authhero-demo" in out
    assert KEY_A not in out + result.stderr
    assert (tmp_path / "example.sqlite3").exists()
