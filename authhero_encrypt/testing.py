"""A pytest plugin for projects whose models use the encrypted fields (docs/testing.md).

Installed with the package and loaded by pytest through the ``pytest11`` entry point, so a
project's tests get, with nothing to configure:

* ``encryption_key``: a fresh random key, active for one test (``ENCRYPTION_KEY`` with no id and
  no fallbacks), so the fields really encrypt;
* ``rotated_encryption_keys``: a ring after a rotation, the active key ``new`` with key ``old``
  as a read-only fallback, and ``as_old_key()`` to write rows the way the old key did;
* ``stored_value``: what the database holds for one field of one row, read with a raw cursor,
  bypassing every field converter, to prove a value is ciphertext at rest;
* ``require_encryption``: fails the test when no ``ENCRYPTION_KEY`` is active;
* a line in the session header, and a warning, when the test settings set no ``ENCRYPTION_KEY``:
  then every encrypted field stores plaintext and nothing says so (pytest-django runs no system
  checks, so W004 is never printed). The ini option ``authhero_encrypt_require_key = true``
  turns that warning into a usage error.

Importing this module imports neither Django's models nor the app's fields: pytest loads
plugins before Django is set up. Everything Django is imported inside the fixtures and hooks.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django.db.models import Model

__all__ = [
    "KeyRingSettings",
    "TestKey",
    "encryption_key",
    "require_encryption",
    "rotated_encryption_keys",
    "stored_value",
]

_NO_KEY = (
    "authhero_encrypt: ENCRYPTION_KEY is not set in the test settings, so encrypted fields store "
    'plaintext in this run. Set a test key (python -c "import base64, os; '
    'print(base64.b64encode(os.urandom(32)).decode())") or use the encryption_key fixture.'
)


def new_key() -> str:
    """A random key in the form ``ENCRYPTION_KEY`` takes: base64 of 32 bytes."""
    return base64.b64encode(os.urandom(32)).decode("ascii")


@dataclass(frozen=True)
class TestKey:
    """One key: its id (``None`` for an untagged key) and its base64 text."""

    __test__ = False  # not a test class, whatever its name

    key_id: str | None
    secret: str = field(repr=False)

    @property
    def fallback_entry(self) -> str:
        """The key as an ``ENCRYPTION_KEY_FALLBACKS`` item: ``"ID:KEY"`` or ``"KEY"``."""
        return self.secret if self.key_id is None else f"{self.key_id}:{self.secret}"


@dataclass(frozen=True)
class KeyRingSettings:
    """An active key and its read-only fallbacks, as the key settings spell them."""

    active: TestKey
    fallbacks: tuple[TestKey, ...] = ()

    def as_settings(self) -> dict[str, Any]:
        return {
            "ENCRYPTION_KEY": self.active.secret,
            "ENCRYPTION_KEY_ID": self.active.key_id,
            "ENCRYPTION_KEY_FALLBACKS": [key.fallback_entry for key in self.fallbacks],
        }

    def override(self) -> AbstractContextManager[Any]:
        """``override_settings`` with these key settings (the key ring is rebuilt on change)."""
        from django.test import override_settings

        return override_settings(**self.as_settings())

    @property
    def fallback(self) -> TestKey:
        """The first fallback key (the old key of a rotation)."""
        return self.fallbacks[0]

    def as_old_key(self) -> AbstractContextManager[Any]:
        """The settings from before the rotation: the first fallback as the only, active key."""
        return KeyRingSettings(self.fallback).override()


@pytest.fixture
def encryption_key() -> Iterator[TestKey]:
    """A fresh random ``ENCRYPTION_KEY`` (no key id, no fallbacks), active for this test."""
    ring = KeyRingSettings(TestKey(None, new_key()))
    with ring.override():
        yield ring.active


@pytest.fixture
def rotated_encryption_keys() -> Iterator[KeyRingSettings]:
    """Key ``new`` active, key ``old`` as its fallback: the state between a rotation's deploy
    and the removal of the old key. ``with ring.as_old_key():`` writes as the old key did."""
    ring = KeyRingSettings(TestKey("new", new_key()), (TestKey("old", new_key()),))
    with ring.override():
        yield ring


@pytest.fixture
def stored_value() -> Callable[[Model, str], Any]:
    """``stored_value(instance, "field_name")``: the stored text of that field of that row, read
    with a raw cursor on the instance's database (needs the ``django_db`` mark, as any query)."""

    def read(instance: Model, name: str) -> Any:
        from django.db import connections, models

        meta = instance._meta
        target, pk = meta.get_field(name), meta.pk
        if not isinstance(target, models.Field) or target.column is None:
            raise ValueError(f"{meta.label}.{name} is not a concrete field")
        if pk is None or pk.column is None:
            raise ValueError(f"{meta.label} has no single-column primary key")
        connection = connections[instance._state.db or "default"]
        quote = connection.ops.quote_name
        # Names from the model, quoted; the primary key is a parameter.
        table, column, key = quote(meta.db_table), quote(target.column), quote(pk.column)
        sql = f"SELECT {column} FROM {table} WHERE {key} = %s"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [pk.get_db_prep_value(instance.pk, connection)])
            row = cursor.fetchone()
        if row is None:
            raise LookupError(f"no row with pk {instance.pk!r} in {meta.db_table}")
        return row[0]

    return read


def _key_is_set() -> bool | None:
    """Whether the settings set an active key; ``None`` when Django is not configured."""
    from django.conf import settings

    if not settings.configured:
        return None
    from authhero_encrypt.conf import conf

    key = conf.ENCRYPTION_KEY
    return key is not None and key != ""


@pytest.fixture
def require_encryption() -> None:
    """Fail the test at once when no ``ENCRYPTION_KEY`` is active (its values would be
    stored in plaintext). Put it after ``encryption_key`` if both are used."""
    if not _key_is_set():
        pytest.fail(_NO_KEY, pytrace=False)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "authhero_encrypt_require_key",
        type="bool",
        default=False,
        help="authhero_encrypt: stop the run when the test settings set no ENCRYPTION_KEY.",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    if _key_is_set() is False:
        return [_NO_KEY]
    return []


def pytest_sessionstart(session: pytest.Session) -> None:
    if _key_is_set() is not False:
        return
    if session.config.getini("authhero_encrypt_require_key"):
        raise pytest.UsageError(_NO_KEY)
    session.config.issue_config_time_warning(pytest.PytestWarning(_NO_KEY), stacklevel=2)
