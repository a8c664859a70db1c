"""mypy with django-stubs over a sample user module (tests/typing/): the types users see.

The sample app is type-checked only, with its own settings module (tests/typing/settings.py),
in a subprocess: the django-stubs plugin sets Django up for the settings it is given, which
this process has already done for the test suite. Each ``reveal_type`` line of
``sample_app/usage.py`` states the type expected in a comment and each ``# error`` line must be
refused; any other error, and above all mypy's INTERNAL ERROR, fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kms_server import require

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "typing" / "sample_app"
USAGE = SAMPLE / "usage.py"

_CONFIG = """\
[mypy]
strict = True
plugins = mypy_django_plugin.main
cache_dir = {cache}

[mypy-boto3.*,botocore.*]
ignore_missing_imports = True

[mypy.plugins.django-stubs]
django_settings_module = tests.typing.settings
"""
_OUTPUT = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")
_MODULE_PREFIX = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)+(?=[A-Z])")


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    require("mypy", "test")
    require("mypy_django_plugin", "test")
    tmp = tmp_path_factory.mktemp("mypy")
    config = tmp / "mypy.ini"
    config.write_text(_CONFIG.format(cache=tmp / "cache"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDEVMODE", "PYTHONWARNINGS")}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), str(SAMPLE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "INTERNAL ERROR" not in output, output
    assert "Traceback" not in output, output
    # 1: errors found (the lines marked "# error"); 2 would be a crash or a bad configuration.
    assert result.returncode == 1, output
    return output


def _messages(output: str, kind: str) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for raw in output.splitlines():
        match = _OUTPUT.match(raw)
        if match and match["kind"] == kind:
            assert Path(match["file"]).name == "usage.py", raw  # the models check cleanly
            found.setdefault(int(match["line"]), []).append(match["text"])
    return found


def _marked(marker: re.Pattern[str]) -> dict[int, str]:
    lines = USAGE.read_text().splitlines()
    return {n: m[1] for n, text in enumerate(lines, 1) if (m := marker.search(text))}


def test_revealed_types_are_the_plaintext_types(mypy_output: str) -> None:
    expected = _marked(re.compile(r"reveal_type\(.*\)  # (.+)$"))
    assert len(expected) >= 16
    notes = _messages(mypy_output, "note")
    revealed = {}
    for line, texts in notes.items():
        for text in texts:
            if text.startswith("Revealed type is "):
                revealed[line] = _MODULE_PREFIX.sub(
                    "", text.removeprefix("Revealed type is ")[1:-1]
                )
    assert revealed == expected


def test_wrong_uses_are_type_errors(mypy_output: str) -> None:
    expected = set(_marked(re.compile(r"# (error)$")))
    errors = _messages(mypy_output, "error")
    assert set(errors) == expected
    n_line = next(line for line in expected if "n: int = c.client_secret" in _line(line))
    assert any('expression has type "str", variable has type "int"' in e for e in errors[n_line])


def _line(number: int) -> str:
    return USAGE.read_text().splitlines()[number - 1]
