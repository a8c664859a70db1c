"""The rotation runbook in docs/key_rotation.md, replayed as a user would paste it.

The replay starts from the example project's own state (``run.py``: ``ENCRYPTION_KEY`` alone, so
untagged values, plus legacy plaintext rows) and walks the page top to bottom: each ``sh`` block
and each ``$ export ...`` line runs in bash, carrying the environment from one to the next, and
each ``$ python manage.py ...`` line runs the command with the settings the example's
``settings.py`` reads from that environment. What it prints is compared with the page, line for
line; only key fingerprints and primary keys are normalised.

``RUNBOOK_REGENERATE=1 pytest tests/test_runbook.py`` writes the commands' real output into the
page instead (after a change to what the commands print), then compares as usual.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from example_project.authhero.demo_data import load_demo_data

pytestmark = pytest.mark.django_db

PAGE = Path(__file__).resolve().parent.parent / "docs" / "key_rotation.md"
BLOCK = re.compile(r"^```(sh|console)\n(.*?)^```\n", flags=re.DOTALL | re.MULTILINE)
MANAGE = "$ python manage.py "


def runbook_text() -> str:
    """The page up to the command reference: the runbook and its failure example."""
    text = PAGE.read_text("utf-8")
    return text[: text.index("## `encryption_migrate` reference")]


def settings_from(env: dict[str, str]) -> dict[str, Any]:
    """The key settings as example_project/settings.py reads them from the environment."""
    fallbacks = env.get("ENCRYPTION_KEY_FALLBACKS", "")
    return {
        "ENCRYPTION_KEY": env.get("ENCRYPTION_KEY") or None,
        "ENCRYPTION_KEY_ID": env.get("ENCRYPTION_KEY_ID") or None,
        "ENCRYPTION_KEY_FALLBACKS": [e.strip() for e in fallbacks.split(",") if e.strip()],
    }


def bash(script: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """Run ``script`` as pasted; return the environment it leaves (exported or not)."""
    names = ("ENCRYPTION_KEY", "ENCRYPTION_KEY_ID", "ENCRYPTION_KEY_FALLBACKS", "OLD_KEY")
    marker = "---runbook-env---"
    dump = "".join(f'printf "%s\\0" "{name}=${{{name}-}}"; ' for name in names)
    full = f"set -eu\n{script}\necho {marker}\n{dump}\n"
    result = subprocess.run(
        ["bash", "-c", full],
        env={"PATH": os.environ["PATH"], **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    printed, _, variables = result.stdout.partition(marker + "\n")
    assert "STOP" not in printed, printed
    assert result.stderr == "", result.stderr
    out = dict(env)
    for item in variables.split("\0"):
        name, sep, value = item.partition("=")
        if sep and (value or name in out):
            out[name] = value
    return out


def run(command: str) -> list[str]:
    """The command's stdout and stderr and its exit status, as the runbook prints them."""
    name, *args = command.split()
    if not any(arg.startswith("authhero") for arg in args):
        args.append("authhero")  # the example project's app only, not the test apps
    out, err = StringIO(), StringIO()
    status = 0
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        status = int(exc.code or 0)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        status = 1
    lines = (out.getvalue() + err.getvalue()).splitlines()
    return [*lines, f"[exit {status}]"]


def normalise(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = re.sub(r"fingerprint [0-9a-f]{8}", "fingerprint ########", line.rstrip())
        out.append(re.sub(r"\bpk \d+", "pk N", line))
    return out


def shown(page_lines: list[str], printed: list[str]) -> list[str]:
    # The page shows the exit status only where it matters to the step.
    if page_lines and page_lines[-1].startswith("[exit"):
        return printed
    return printed[:-1] if printed[-1] == "[exit 0]" else printed


@pytest.fixture
def example_state(tmp_path: Path) -> dict[str, str]:
    """The example after run.py: a throwaway key in its key file, demo rows written with it."""
    demo_key = base64.b64encode(os.urandom(32)).decode()
    (tmp_path / "example_project").mkdir()
    (tmp_path / "example_project" / ".demo-encryption-key").write_text(demo_key + "\n")
    with override_settings(**settings_from({"ENCRYPTION_KEY": demo_key})):
        load_demo_data()
    return {"ENCRYPTION_KEY": "", "cwd": str(tmp_path), "demo_key": demo_key}


def replay(
    text: str, state: dict[str, str], env: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Replay every block of ``text``; return the text with the real output and the env."""
    cwd = Path(state["cwd"])
    env = dict(env or {})
    pieces, last = [], 0
    for block in BLOCK.finditer(text):
        kind, body = block.group(1), block.group(2)
        if kind == "sh":
            env = bash(body, env, cwd)
            continue
        lines = body.splitlines()
        if not any(line.startswith(MANAGE) for line in lines):
            continue  # another program's output (a benchmark's), not a step
        new_body: list[str] = []
        index = 0
        while index < len(lines):
            line = lines[index]
            index += 1
            if not line.startswith("$ "):
                continue
            new_body.append(line)
            page_output = []
            while index < len(lines) and not lines[index].startswith("$ "):
                page_output.append(lines[index])
                index += 1
            if line.startswith(MANAGE):
                with override_settings(**settings_from(env)):
                    printed = shown(page_output, run(line.removeprefix(MANAGE)))
                new_body.extend(printed)
            else:
                env = bash(line.removeprefix("$ "), env, cwd)
        pieces += [text[last : block.start(2)], "\n".join(new_body) + "\n"]
        last = block.end(2)
    pieces.append(text[last:])
    return "".join(pieces), env


def test_the_runbook_is_four_steps_and_names_its_gate():
    text = runbook_text()
    assert "Rotating is four steps." in text
    steps = re.findall(r"^\*\*(\d)\. ", text, flags=re.MULTILINE)
    assert steps == ["1", "2", "3", "4"]
    # The gate before the old key is dropped: it fails while any value is not under the new key.
    gate = text[text.index("**3. ") : text.index("**4. ")]
    assert "$ python manage.py encryption_status --require-active-key --verify" in gate


def test_the_runbook_defines_every_variable_it_uses():
    text = runbook_text()
    shell = "\n".join(b.group(2) for b in BLOCK.finditer(text) if b.group(1) == "sh")
    used = set(re.findall(r"\$\{?([A-Z_]+)", shell))
    defined = set(re.findall(r"^(?:export )?([A-Z_]+)=", shell, flags=re.MULTILINE))
    # ENCRYPTION_KEY comes from the state before the rotation (the console block above).
    assert used - defined <= {"ENCRYPTION_KEY"}, used - defined
    assert "openssl rand -base64 32" in shell


FAILURE = "### When a value does not decrypt"


def regenerate(old: str, new: str) -> None:
    if os.environ.get("RUNBOOK_REGENERATE") == "1":
        PAGE.write_text(PAGE.read_text("utf-8").replace(old, new), "utf-8")


def test_the_runbook_output_is_what_the_commands_print(example_state):
    text = runbook_text()
    steps = text[: text.index(FAILURE)]
    replayed, env = replay(steps, example_state)
    regenerate(steps, replayed)
    # The shell snippets did what they say: a new active key, the old one kept for reading.
    assert env["ENCRYPTION_KEY"] not in ("", example_state["demo_key"])
    assert len(base64.b64decode(env["ENCRYPTION_KEY"])) == 32
    assert env["ENCRYPTION_KEY_ID"] == "2026-06"
    assert env["OLD_KEY"] == example_state["demo_key"]
    assert normalise(replayed.splitlines()) == normalise(steps.splitlines())


def test_the_failure_example_is_what_the_command_prints(example_state):
    """Step 1 without the old key: the failure section's own block, after step 1's snippet."""
    text = runbook_text()
    failure = text[text.index(FAILURE) :]
    step1 = next(b.group(2) for b in BLOCK.finditer(text) if b.group(1) == "sh")
    cwd = Path(example_state["cwd"])
    env = bash('export ENCRYPTION_KEY="$(cat example_project/.demo-encryption-key)"', {}, cwd)
    env = bash(step1, env, cwd)
    replayed, env = replay(failure, example_state, env)
    regenerate(failure, replayed)
    assert env["ENCRYPTION_KEY_FALLBACKS"] == ""
    assert normalise(replayed.splitlines()) == normalise(failure.splitlines())
