"""A failed read closes the chunked cursor it leaves suspended (``dumpdata`` without the key).

Before, ``dumpdata`` with no key printed its ``CommandError`` and then, once it had closed the
connections, ``Exception ignored in: <generator object cursor_iter ...>`` with a
``ProgrammingError: Cannot operate on a closed database``.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.fields.cursors import close_suspended_cursors
from tests.keys import KEY_A
from tests.testapp.models import Connection, Secret

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"


def suspended_cursor_iters() -> list[Any]:
    gc.collect()
    return [
        obj
        for obj in gc.get_objects()
        if type(obj).__name__ == "generator"
        and obj.gi_code.co_name == "cursor_iter"
        and obj.gi_frame is not None
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["testapp.Secret", "testapp.Connection"])
def test_dumpdata_without_the_key_leaves_no_cursor_open(model: str) -> None:
    for n in range(3):
        Secret.objects.create(label=str(n), token=f"token {n}")
        Connection.objects.create(name=str(n), options={"client_secret": f"secret {n}"})
    with override_settings(ENCRYPTION_KEY=None), pytest.raises(CommandError) as excinfo:
        call_command("dumpdata", model, stdout=StringIO())
    assert "ENCRYPTION_KEY is not set" in str(excinfo.value)
    # The error (and its chain, which keeps the frames of the failed read) is still held here:
    # the cursor must be closed already, not when the error is dropped.
    assert suspended_cursor_iters() == []


def test_dumpdata_without_the_key_prints_only_the_error(tmp_path: Path) -> None:
    """The reported case: manage.py on SQLite, whose cursors cannot close after the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ENCRYPTION_"))}
    env["EXAMPLE_DATABASE_PATH"] = str(tmp_path / "example.sqlite3")
    manage = [sys.executable, str(EXAMPLE / "manage.py")]

    def run(*args: str, key: str | None) -> subprocess.CompletedProcess[str]:
        run_env = {**env, **({"ENCRYPTION_KEY": key} if key else {})}
        return subprocess.run(
            [*manage, *args], env=run_env, capture_output=True, text=True, check=False
        )

    assert run("migrate", "-v", "0", key=KEY_A).returncode == 0
    seed = (
        "from example_project.authhero.models import Client\n"
        "for n in range(3): Client.objects.create(client_id=f'c{n}', name='n', "
        "client_secret=f'secret {n}')"
    )
    assert run("shell", "-c", seed, key=KEY_A).returncode == 0
    # --skip-checks: W004 (no key while models declare encrypted fields) is not what is tested.
    result = run("dumpdata", "--skip-checks", "authhero.Client", key=None)
    assert result.returncode == 1
    assert result.stderr.startswith("CommandError: Unable to serialize database: Cannot read")
    assert "Exception ignored" not in result.stderr
    assert "closed database" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    "read",
    [
        lambda: list(Secret.objects.iterator(chunk_size=2)),
        lambda: list(Secret.objects.values("token").iterator(chunk_size=2)),
        lambda: list(Secret.objects.values_list("token", flat=True).iterator(chunk_size=2)),
        lambda: list(Connection.objects.iterator(chunk_size=2)),
    ],
    ids=["models", "values", "values_list", "json"],
)
def test_a_failed_chunked_read_closes_its_cursor(read: Any) -> None:
    for n in range(5):
        Secret.objects.create(label=str(n), token=f"token {n}")
        Connection.objects.create(name=str(n), options={"client_secret": f"secret {n}"})
    with override_settings(ENCRYPTION_KEY=None), pytest.raises(EncryptionError) as excinfo:
        read()
    assert suspended_cursor_iters() == []
    del excinfo


def test_only_cursor_generators_of_django_query_frames_are_closed() -> None:
    def cursor_iter() -> Iterator[int]:  # the name Django's generator has, but not Django's
        yield 1
        yield 2

    def failing_read(held: Iterator[int]) -> int:
        return close_suspended_cursors()

    held = cursor_iter()
    next(held)
    assert failing_read(held) == 0  # the frames here are not Django's query frames
    assert list(held) == [2]
