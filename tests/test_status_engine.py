"""``authhero_encrypt.status``: ``status()`` called from Python, without ``call_command``.

The command's own behaviour is in ``test_encryption_status.py``; these tests hold the engine to
what a deploy script relies on: a report object with the counts, nothing printed, and a clear
exception for every bad argument.
"""

from __future__ import annotations

import ast
import base64
import inspect
import json
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

import authhero_encrypt.status.classify as classify
from authhero_encrypt.crypto import encrypt_with
from authhero_encrypt.exceptions import InvalidKeyError, MissingKeyError
from authhero_encrypt.inventory import NO_KEY_ID
from authhero_encrypt.keys import Key
from authhero_encrypt.status import StatusReport, TableReadError, status
from authhero_encrypt.status.render import render_json, render_text
from tests.keys import KEY_A
from tests.testapp.models import Connection, Secret

pytestmark = pytest.mark.django_db

ACTIVE = Key.from_secret(None, base64.b64decode(KEY_A))


def insert(model: type, pk: int, **columns: Any) -> None:
    """Write one row as given, bypassing the fields; dicts are stored as JSON text."""
    values = [pk] + [json.dumps(v) if isinstance(v, dict) else v for v in columns.values()]
    names = ", ".join(connection.ops.quote_name(c) for c in ["id", *columns])
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        marks = ", ".join(["%s"] * len(values))
        cursor.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)


@pytest.fixture
def mixed() -> None:
    insert(Secret, 1, label="a", token=encrypt_with(ACTIVE, "t1"), notes="legacy")
    insert(Secret, 2, label="b", token="", notes=None)
    insert(Connection, 1, name="c", options={"client_secret": encrypt_with(ACTIVE, "s")})


@override_settings(ENCRYPTION_KEY=KEY_A)
def test_status_returns_the_counts_and_prints_nothing(mixed: None, capsys: Any) -> None:
    report = status(["testapp.Secret"], using="default")
    assert isinstance(report, StatusReport)
    by_field = {t.target.field.name: t for t in report.tallies}
    assert (by_field["token"].encrypted, by_field["token"].plaintext) == (1, 1)
    assert (by_field["token"].empty, by_field["notes"].null) == (1, 1)
    assert (report.encrypted_total, report.plaintext_total, report.empty_total) == (1, 2, 1)
    assert report.by_key == {NO_KEY_ID: 1}
    assert report.ok is False  # plaintext remains: what --check fails on
    assert report.verified is False
    assert capsys.readouterr() == ("", "")


@override_settings(ENCRYPTION_KEY=KEY_A)
def test_verify_and_ok(mixed: None) -> None:
    report = status(["testapp.Connection"], verify=True)
    assert (report.checked_total, report.failed_total, report.unreadable) == (1, 0, 0)
    assert report.ok is True


@override_settings(ENCRYPTION_KEY=KEY_A)
def test_the_report_is_what_the_command_prints(mixed: None) -> None:
    report = status(["testapp"])
    # The command writes each line as OutputWrapper does: a newline unless it ends with one.
    text = "".join(line if line.endswith("\n") else f"{line}\n" for line in render_text(report))
    for format, rendered in (("json", render_json(report) + "\n"), ("text", text)):
        out = StringIO()
        call_command("encryption_status", "testapp", format=format, stdout=out)
        assert out.getvalue() == rendered
    assert json.loads(render_json(report)) == report.as_json()


@override_settings(ENCRYPTION_KEY=KEY_A)
def test_progress_is_one_line_per_model(mixed: None) -> None:
    lines: list[str] = []
    status(["testapp.Secret", "testapp.Connection"], progress=lines.append)
    assert [line.split(":")[0] for line in lines] == ["testapp.Secret", "testapp.Connection"]


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive number of rows, not 0"),
        ({"using": "elsewhere"}, ValueError, "Unknown database alias 'elsewhere'"),
        ({"targets": ["nope"]}, LookupError, "No installed app with label 'nope'"),
        ({"targets": ["testapp.Nope"]}, LookupError, "App 'testapp' has no model 'Nope'"),
    ],
)
def test_bad_arguments(arguments: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        status(**arguments)


def test_verify_needs_a_usable_key() -> None:
    with override_settings(ENCRYPTION_KEY=None), pytest.raises(MissingKeyError, match="not set"):
        status(verify=True)
    with override_settings(ENCRYPTION_KEY="not base64!"), pytest.raises(InvalidKeyError):
        status(verify=True)


def test_a_table_that_cannot_be_read(monkeypatch: Any) -> None:
    from tests.testapp.models import Swapped

    monkeypatch.setattr(Swapped._meta, "db_table", "testapp_not_migrated")
    with pytest.raises(TableReadError, match=r"Cannot read testapp\.Swapped .*migrate"):
        status(["testapp.Swapped"])


# The pure classification ------------------------------------------------------------------


def test_decode_the_class_codes() -> None:
    codes = {classify.KNOWN_CODE: 3, classify.UNTAGGED_CODE: 1, classify.EMPTY_CODE: 2}
    codes[classify.PLAINTEXT_CODE] = 4
    found = classify.decode(codes, rows=12, known_ids=2)
    assert (found.encrypted, found.plaintext, found.empty, found.null) == (4, 6, 2, 2)
    assert (found.untagged, found.other, found.known) == (1, 0, (3, 0))


@pytest.mark.parametrize(
    ("value", "kind"),
    [(None, "null"), (7, "null"), ("", "empty"), ("x", "plaintext"), ("enc:v1:x", "encrypted")],
)
def test_value_class(value: Any, kind: str) -> None:
    assert classify.value_class(value) == kind


def test_values_at_a_path() -> None:
    document = {"a": {"b": "x", "c": "y"}, "n": 1}
    assert list(classify.values_at(None, b"raw")) == ["raw"]
    assert list(classify.values_at(("a", "b"), document)) == ["x"]
    assert list(classify.values_at(("a", "*"), document)) == ["x", "y"]
    assert list(classify.values_at(("n", "*"), document)) == [None]
    assert classify.value_class(next(classify.values_at(("gone",), document))) == "null"


def test_classify_imports_no_django() -> None:
    tree = ast.parse(Path(classify.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("django")]


def signature_text(function: Any) -> str:
    """``name=default, *, ...`` as the docs spell a call's parameters."""
    parts: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        default = parameter.default
        shown = f'"{default}"' if isinstance(default, str) else repr(default)
        parts.append(parameter.name if default is parameter.empty else f"{parameter.name}={shown}")
    return ", ".join(parts)


def documented_call(page: str, name: str) -> str:
    text = (Path(__file__).resolve().parent.parent / "docs" / page).read_text()
    found = re.search(rf"`{name}\((.*?)\)`", text, flags=re.DOTALL)
    assert found, f"docs/{page} documents no {name}(...) call"
    return " ".join(found.group(1).split())


def test_the_documented_signature_is_the_real_one() -> None:
    assert documented_call("encryption_status.md", "status") == signature_text(status)
