"""What the README and docs/ state that the code (or tox.ini) can produce is checked here."""

from __future__ import annotations

import ast
import builtins
import configparser
import re
from pathlib import Path

import pytest
from django.db import connection

from authhero_encrypt.fields.scalar import stored_length
from example_project.authhero import models as demo

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")
DOCS = {path.name: path.read_text("utf-8") for path in sorted((ROOT / "docs").glob("*.md"))}
FIELDS_DOC = DOCS["fields.md"]
PYTHON_BLOCKS = re.findall(
    r"^```python\n(.*?)^```",
    README + "".join(DOCS.values()),
    flags=re.DOTALL | re.MULTILINE,
)


# Column sizing


def sizing_claims() -> list[tuple[int, int]]:
    text = README + FIELDS_DOC
    claims = re.findall(r"`max_length=(\d+)` (?:gives|is) a `varchar\((\d+)\)`", text)
    claims += re.findall(r"^\| (\d+) \| `varchar\((\d+)\)`", FIELDS_DOC, flags=re.MULTILINE)
    assert len(claims) >= 6, "the README and docs/fields.md no longer state column widths"
    return [(int(max_length), int(width)) for max_length, width in claims]


def test_column_width_in_the_readme_is_the_formula():
    for max_length, width in sizing_claims():
        assert width == stored_length(max_length)


@pytest.mark.django_db
def test_column_width_in_the_readme_is_the_real_schema():
    # The demo's Client.client_secret is an EncryptedCharField(max_length=255), as in the README.
    field = demo.Client._meta.get_field("client_secret")
    width = dict(sizing_claims())[field.max_length]
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, demo.Client._meta.db_table)
    column = next(info for info in columns if info.name == field.column)
    # SQLite and MySQL report the declared width as display_size, PostgreSQL as internal_size.
    assert width in (column.display_size, column.internal_size)
    assert field.db_type(connection) in (f"varchar({width})", f"character varying({width})")


# Python snippets


def undefined_names(source: str) -> set[str]:
    """Names a snippet reads but neither imports nor assigns (nor are builtins)."""
    tree = ast.parse(source)
    bound = set(dir(builtins))
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
    return read - bound


def test_the_readme_has_python_snippets():
    assert len(PYTHON_BLOCKS) >= 4


@pytest.mark.parametrize("source", PYTHON_BLOCKS, ids=lambda source: source.split("\n")[0][:40])
def test_python_snippet_compiles_and_defines_what_it_uses(source):
    compile(source, "README.md", "exec")
    assert undefined_names(source) == set()


def test_undefined_names_finds_a_missing_import():
    # The install snippet once used os.environ without importing os.
    assert undefined_names('KEY = os.environ.get("K")') == {"os"}
    assert undefined_names('import os\nKEY = os.environ.get("K")') == set()


# Installing and testing


def pip_install_targets() -> list[str]:
    """What each ``pip install`` of the README's shell blocks installs."""
    shell = "".join(re.findall(r"^```sh\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE))
    targets = []
    for command in re.split(r"&&|\n", shell):
        words = command.split("#")[0].split()
        if "pip" in " ".join(words) and "install" in words:
            after = words[words.index("install") + 1 :]
            targets += [word.strip("'\"") for word in after if not word.startswith("-")]
    return targets


def test_every_pip_install_installs_something_that_exists_today():
    # Not on any package index yet: only a clone (a path) or a wheel built from it installs it.
    targets = pip_install_targets()
    assert "./authhero-encrypt" in targets
    assert "dist/authhero_encrypt-*.whl" in targets
    for target in targets:
        assert target.startswith((".", "dist/")), target


def test_tox_line_lists_the_environments_of_tox_ini():
    config = configparser.ConfigParser()
    config.read(ROOT / "tox.ini")
    environments = config["tox"]["env_list"].split()
    line = next(line for line in README.splitlines() if line.startswith("tox "))
    assert re.findall(r"py\d+-django\d+", line) == environments
    assert f"{len(environments)} envs" in line


# The README is the front door; the reference lives in docs/


def test_the_readme_fits_on_a_screen_or_two():
    assert len(README.splitlines()) <= 210  # "about 200 lines"


def test_every_local_link_of_the_readme_and_docs_exists():
    pages = {"README.md": README, **{f"docs/{name}": text for name, text in DOCS.items()}}
    for page, text in pages.items():
        base = (ROOT / page).parent
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert (base / target).exists(), f"{page} links to {target}, which is missing"


def registered_check_ids() -> set[str]:
    source = "".join(path.read_text("utf-8") for path in (ROOT / "authhero_encrypt").rglob("*.py"))
    ids = set(re.findall(r"authhero_encrypt\.([EW]\d{3})", source))
    ids |= {f"{level}{code}" for level, code in re.findall(r'"([EW])(\d{3})"', source)}
    return ids


def test_every_check_id_in_the_code_is_in_docs_checks():
    documented = set(re.findall(r"^\| `authhero_encrypt\.([EW]\d{3})`", DOCS["checks.md"], re.M))
    assert registered_check_ids() <= documented


# User docs hold no issue numbers or development history

USER_DOCS = ["README.md", *(f"docs/{name}" for name in DOCS if name != "CHANGELOG.md")]


@pytest.mark.parametrize("page", USER_DOCS)
def test_user_docs_cite_no_issue_numbers_or_history(page):
    text = (ROOT / page).read_text("utf-8")
    assert not re.findall(r"\bissues? \d+", text, flags=re.IGNORECASE), page
    assert not re.findall(r"(?<![\w&])#\d+\b", text), page  # PKCS#7 is a name, not an issue
    for phrase in ("other people's", "Earlier runs", "prototype", "before the read-path"):
        assert phrase not in text, f"{page}: {phrase!r}"


def test_each_readme_section_appears_once():
    headings = re.findall(r"^## .*$", README, flags=re.MULTILINE)
    assert len(headings) == len(set(headings)), headings


def test_the_readme_counts_the_rotation_steps_it_lists():
    sentence = README[README.index("Rotating a key is four steps") :].split("The runbook")[0]
    assert re.findall(r"\((\d)\)", sentence) == ["1", "2", "3", "4"]


INSTALL_PAGES = ["README.md", *(f"docs/{name}" for name in DOCS)]


def test_install_lines_work_without_pypi():
    for page in INSTALL_PAGES:
        text = (ROOT / page).read_text("utf-8")
        assert "pip install 'authhero-encrypt" not in text, page
        assert "pip install authhero-encrypt" not in text, page


# Packaging: licence, project URLs, where --help sends the reader


def test_the_licence_file_is_in_the_repository_and_declared():
    licence = (ROOT / "LICENSE").read_text("utf-8")
    assert licence.startswith("MIT License")
    assert "Copyright (c) 2026 authhero_encrypt developers" in licence
    # Read as text: tomllib is Python 3.11+, and the suite runs on 3.10 as well.
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    assert 'license = "MIT"\nlicense-files = ["LICENSE"]\n' in pyproject
    urls = pyproject.split("[project.urls]\n")[1].split("\n\n")[0].splitlines()
    assert urls
    assert all(re.fullmatch(r'[\w" ]+ = "https://[^"\s]+"', line) for line in urls), urls
    entry = '[project.entry-points.pytest11]\nauthhero_encrypt = "authhero_encrypt.testing"'
    assert entry in pyproject


@pytest.mark.parametrize("command", ["encryption_status", "encryption_migrate"])
def test_help_names_where_the_reference_page_is(command):
    from django.core.management import load_command_class

    parser = load_command_class("authhero_encrypt", command).create_parser("manage.py", command)
    text = " ".join(parser.format_help().split())
    assert "the repository" not in text
    assert re.search(r"docs/\w+\.md in the authhero-encrypt source distribution \(sdist\)", text)
    assert all((ROOT / page).exists() for page in re.findall(r"docs/\w+\.md", text))
