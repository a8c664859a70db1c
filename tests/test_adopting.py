"""docs/adopting.md followed in a scratch project: a plain CharField with data, converted in place.

The page's files (``# hooks/...`` and ``# settings.py (add)`` blocks) are written as shown, in
page order, and each ``$ python manage.py ...`` line runs as a subprocess against a SQLite file.
The lines the page shows must appear, in order, in what the command prints, and the exit status
must be the one shown (0 where none is). Between the steps the raw column is read with
``sqlite3`` to prove what is at rest: plaintext after ``migrate``, ciphertext after
``encryption_migrate``, the same plaintext again after going back.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "adopting.md"
BLOCK = re.compile(r"^```(python|console)\n(.*?)^```\n", flags=re.DOTALL | re.MULTILINE)
SECRETS = [f"whsec_{n:02d}_{'x' * n}" for n in range(8)]

BASE_SETTINGS = """
from tests.settings import MIDDLEWARE, TEMPLATES  # what the admin needs, as in the suite

SECRET_KEY = "adopting-test-only"
CONTRIB = ["admin", "auth", "contenttypes", "sessions", "messages"]
INSTALLED_APPS = [*(f"django.contrib.{name}" for name in CONTRIB), "hooks"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""

LOAD_ROWS = (
    "from hooks.models import Webhook; "
    "Webhook.objects.bulk_create(Webhook(url=f'https://example.com/{i}', signing_secret=s) "
    f"for i, s in enumerate({SECRETS!r}))"
)


class Project:
    def __init__(self, path: Path) -> None:
        self.path = path
        key = base64.b64encode(os.urandom(32)).decode()
        self.env = {**os.environ, "ENCRYPTION_KEY": key, "PYTHONPATH": f"{path}{os.pathsep}{ROOT}"}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        (path / "hooks" / "migrations").mkdir(parents=True)
        (path / "hooks" / "__init__.py").write_text("")
        (path / "hooks" / "migrations" / "__init__.py").write_text("")
        (path / "settings.py").write_text(BASE_SETTINGS)

    def write(self, block: str) -> None:
        first, _, body = block.partition("\n")
        name = first.removeprefix("# ").split(" (")[0]
        target = self.path / name
        if first.endswith("(add)"):
            body = target.read_text() + body
        target.write_text(body)

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "django", *args, "--settings=settings"]
        return subprocess.run(
            command, cwd=self.path, env=self.env, capture_output=True, text=True, check=False
        )

    def stored(self) -> list[str]:
        with sqlite3.connect(self.path / "db.sqlite3") as db:
            rows = db.execute("SELECT signing_secret FROM hooks_webhook ORDER BY id").fetchall()
        return [value for (value,) in rows]


def check_output(command: str, page_lines: list[str], result: subprocess.CompletedProcess[str]):
    status = 0
    if page_lines and page_lines[-1].startswith("[exit "):
        status = int(page_lines.pop()[6:-1])
    printed = [line.rstrip() for line in (result.stdout + result.stderr).splitlines()]
    assert result.returncode == status, (command, printed)
    position = 0
    for line in page_lines:
        assert line in printed[position:], (command, line, printed)
        position = printed.index(line, position) + 1


def test_the_adopting_page_converts_a_field_with_data(tmp_path):
    text = PAGE.read_text("utf-8")
    project = Project(tmp_path)
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]
    before = [body for kind, body in blocks if kind == "python" and "(before)" in body]
    assert len(before) == 2
    for body in before:
        project.write(body)
    assert project.manage("makemigrations", "hooks").returncode == 0
    assert project.manage("migrate").returncode == 0
    assert project.manage("shell", "-c", LOAD_ROWS).returncode == 0

    commands = []
    for kind, body in blocks:
        if kind == "python":
            first = body.partition("\n")[0]
            if first.startswith("# ") and "(before)" not in first:
                project.write(body)
                if "migrations/0003" in first:  # "Put models.CharField back" (the prose)
                    project.write(before[0])
            continue
        lines = body.splitlines()
        for index, line in enumerate(lines):
            if not line.startswith("$ python manage.py "):
                continue
            page_lines = []
            for following in lines[index + 1 :]:
                if following.startswith("$ "):
                    break
                page_lines.append(following)
            command = line.removeprefix("$ python manage.py ")
            check_output(command, page_lines, project.manage(*shlex.split(command)))
            commands.append(command)
            if command == "migrate":
                assert project.stored() == SECRETS  # migrate alone leaves the rows plaintext
            if command == "encryption_migrate hooks":
                stored = project.stored()
                assert all(value.startswith("enc:v1:") for value in stored), stored
                assert not set(stored) & set(SECRETS)
    assert commands[-1] == "migrate hooks"
    assert project.stored() == SECRETS  # going back: the same plaintext
    assert "0003_decrypt_signing_secret" in project.manage("showmigrations", "hooks").stdout
