"""The rotation runbook in docs/key_rotation.md, replayed: its console output cannot drift.

Each ``console`` block of the runbook is a run of the commands against the example project's
demo rows. This test makes the same rows, changes the settings as the runbook's steps do, runs
each command and compares what it prints with the page, line for line. Only what depends on the
real keys or the database's row numbering is normalised: key fingerprints and primary keys.
"""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from example_project.authhero.demo_data import load_demo_data
from tests.keys import KEY_A, KEY_B

pytestmark = pytest.mark.django_db

PAGE = Path(__file__).resolve().parent.parent / "docs" / "key_rotation.md"
OLD = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "2025-01", "ENCRYPTION_KEY_FALLBACKS": []}
ROTATED = {"ENCRYPTION_KEY": KEY_B, "ENCRYPTION_KEY_ID": "2026-06"}
BOTH = {**ROTATED, "ENCRYPTION_KEY_FALLBACKS": [f"2025-01:{KEY_A}"]}
NEW_ONLY = {**ROTATED, "ENCRYPTION_KEY_FALLBACKS": []}


def console_blocks() -> list[list[tuple[str, list[str]]]]:
    """Each console block of the runbook as ``(command, output lines)`` pairs."""
    text = PAGE.read_text("utf-8")
    blocks = []
    for block in re.findall(r"^```console\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        runs: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ python manage.py "):
                runs.append((line.removeprefix("$ python manage.py "), []))
            elif line.startswith("$ "):
                continue  # an export: the settings of the step are set by the test
            elif runs:
                runs[-1][1].append(line)
        if runs:  # a block of other commands (the benchmark's) is not the runbook's
            blocks.append(runs)
    return blocks


def normalise(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = re.sub(r"fingerprint [0-9a-f]{8}", "fingerprint ########", line.rstrip())
        out.append(re.sub(r"\bpk \d+", "pk N", line))
    return out


def run(command: str) -> list[str]:
    """The command's stdout and stderr and its exit status, as the runbook prints them."""
    name, *args = command.split()
    if not any(arg.startswith("authhero") for arg in args):
        args.append("authhero")  # the example project's app only, not the test apps
    out, err = StringIO(), StringIO()
    options: dict[str, Any] = {"stdout": out, "stderr": err}
    status = 0
    try:
        call_command(name, *args, **options)
    except SystemExit as exc:
        status = int(exc.code or 0)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        status = 1
    lines = (out.getvalue() + err.getvalue()).splitlines()
    return [*lines, f"[exit {status}]"]


def expected(lines: list[str], printed: list[str]) -> list[str]:
    # The page shows the exit status only where it matters to the step.
    return lines if lines and lines[-1].startswith("[exit") else lines + printed[-1:]


def test_the_runbook_has_its_steps():
    assert [len(block) for block in console_blocks()] == [1, 2, 1, 2, 1]


def test_the_runbook_output_is_what_the_commands_print():
    before, migrate, check, after, _failure = console_blocks()
    with override_settings(**OLD):
        load_demo_data()
        steps = [(before, OLD)]
    steps += [(migrate, BOTH), (check, BOTH), (after, NEW_ONLY)]
    for block, settings in steps:
        for command, lines in block:
            with override_settings(**settings):
                printed = run(command)
            assert normalise(printed) == normalise(expected(lines, printed)), command


def test_the_failure_example_is_what_the_command_prints():
    *_, failure = console_blocks()
    ((command, lines),) = failure
    with override_settings(**OLD):
        load_demo_data()
    with override_settings(**NEW_ONLY):
        printed = run(command)
    assert normalise(printed) == normalise(expected(lines, printed))
