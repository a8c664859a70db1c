"""The pytest plugin (authhero_encrypt.testing), run in a throwaway project through pytester.

Each run is a subprocess: this process has Django set up with the suite's settings already, and
the plugin must be found through its ``pytest11`` entry point, as in a user's project.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

pytest_plugins = ["pytester"]

SETTINGS = """
INSTALLED_APPS = ["django.contrib.contenttypes", "authhero_encrypt", "notes"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SECRET_KEY = "pytester-only"
USE_TZ = True
"""

MODELS = """
from django.db import models
from authhero_encrypt.fields import EncryptedTextField


class Note(models.Model):
    body = EncryptedTextField()

    def __str__(self):
        return "note"
"""

TESTS = """
import pytest
from django.conf import settings

from notes.models import Note

pytestmark = pytest.mark.django_db


def test_a_key_encrypts(encryption_key, stored_value):
    assert settings.ENCRYPTION_KEY == encryption_key.secret
    assert encryption_key.key_id is None
    note = Note.objects.create(body="line one\\nline two")
    stored = stored_value(note, "body")
    assert stored.startswith("enc:v1:")
    assert "line one" not in stored
    assert Note.objects.get(pk=note.pk).body == "line one\\nline two"


def test_a_rotated_ring(rotated_encryption_keys, stored_value):
    ring = rotated_encryption_keys
    assert (ring.active.key_id, ring.fallback.key_id) == ("new", "old")
    with ring.as_old_key():
        old = Note.objects.create(body="written before the rotation")
    assert stored_value(old, "body").startswith("enc:v1:old:")
    assert Note.objects.get(pk=old.pk).body == "written before the rotation"
    new = Note.objects.create(body="after")
    assert stored_value(new, "body").startswith("enc:v1:new:")


def test_keys_are_fresh_per_test(encryption_key):
    assert len(encryption_key.secret) == 44


def test_required(require_encryption):
    pass
"""


def project(pytester: pytest.Pytester, *, key: bool, ini: str = "") -> None:
    key_line = 'ENCRYPTION_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="\n' if key else ""
    pytester.makepyfile(proj_settings=SETTINGS + key_line)
    pytester.mkpydir("notes")
    pytester.path.joinpath("notes", "models.py").write_text(MODELS)
    pytester.makepyfile(test_notes=TESTS)
    pytester.makeini(f"[pytest]\npythonpath = .\n{ini}")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("--ds=proj_settings", "-p", "no:cacheprovider", *args)


def test_the_fixtures_make_tests_exercise_real_encryption(pytester):
    project(pytester, key=True)
    result = run(pytester)
    result.assert_outcomes(passed=4)
    assert "ENCRYPTION_KEY is not set" not in result.stdout.str()


def test_no_key_in_the_test_settings_is_said_in_the_header_and_as_a_warning(pytester):
    project(pytester, key=False)
    result = run(pytester, "-k", "not a_rotated")
    # The fixtures still bring their own key; require_encryption fails the test without one.
    result.assert_outcomes(passed=2, errors=1, warnings=1)
    output = result.stdout.str()
    header = output.split("collected")[0]
    assert "authhero_encrypt: ENCRYPTION_KEY is not set in the test settings" in header
    assert "PytestWarning: authhero_encrypt: ENCRYPTION_KEY is not set" in output
    result.stdout.fnmatch_lines(["*test_required*", "*encrypted fields store plaintext*"])


def test_the_ini_option_stops_a_run_without_a_key(pytester):
    project(pytester, key=False, ini="authhero_encrypt_require_key = true\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ENCRYPTION_KEY is not set in the test settings*"])


def test_the_plugin_is_an_entry_point():
    found = [ep for ep in metadata.entry_points(group="pytest11") if ep.name == "authhero_encrypt"]
    assert [ep.value for ep in found] == ["authhero_encrypt.testing"]


def test_importing_the_plugin_imports_no_django_models():
    probe = (
        "import sys, authhero_encrypt.testing; "
        "bad = [m for m in sys.modules if m.startswith(('django.db', 'authhero_encrypt.fields'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)
