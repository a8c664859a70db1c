from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import connection


@pytest.fixture
def raw_column():
    """Read one column of one row straight from the database, bypassing every field converter."""

    def read(model: type, pk: object, column: str) -> object:
        table = connection.ops.quote_name(model._meta.db_table)
        col = connection.ops.quote_name(column)
        pk_col = connection.ops.quote_name(model._meta.pk.column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {col} FROM {table} WHERE {pk_col} = %s", [pk])
            row = cursor.fetchone()
        assert row is not None, f"no row {pk!r} in {table}"
        return row[0]

    return read


@pytest.fixture
def demo_rows() -> Any:
    """The example project's demo rows, loaded into the database (legacy ones as plaintext)."""
    from example_project.authhero.demo_data import DEMO_ROWS, load_demo_data

    created, legacy = load_demo_data()
    assert (created, legacy) == (len(DEMO_ROWS), sum(row.legacy for row in DEMO_ROWS))
    return DEMO_ROWS


@pytest.fixture
def admin_request(rf: Any, admin_user: Any) -> Any:
    """Builds a GET request for a model's changelist, made by a superuser."""
    from tests.admin_helpers import url

    def build(model: type, params: dict[str, str] | None = None) -> Any:
        request = rf.get(url(model), params or {})
        request.user = admin_user
        return request

    return build


@pytest.fixture(scope="session", autouse=True)
def _database_reachable(django_db_blocker: Any) -> None:
    """Stop the run at once, with one clear line, when the chosen database cannot be reached.

    An unreachable PostgreSQL or MariaDB is never a reason to skip: under CI it would turn a
    broken suite green.
    """
    from django.conf import settings
    from django.db import connections

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return
    probe = connections.create_connection("default")
    try:
        with django_db_blocker.unblock():
            probe.ensure_connection()
    except Exception as exc:
        host = f"{database.get('HOST')}:{database.get('PORT')}"
        pytest.exit(
            f"TEST_DATABASE={os.environ.get('TEST_DATABASE')}: cannot connect to {host} "
            f"({type(exc).__name__}). Start the server or unset TEST_DATABASE.",
            returncode=3,
        )
    finally:
        probe.close()


@pytest.fixture(scope="session")
def bao() -> Any:
    """A real OpenBao dev server for the session, on a free 127.0.0.1 port; stopped at the end."""
    from tests.kms_server import require
    from tests.vault_server import BaoServer, bao_binary

    require("hvac", "vault")
    server = BaoServer(bao_binary()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto() -> Any:
    """moto in server mode for the session (a local KMS API), stopped at the end."""
    from tests.kms_server import MotoServer, require

    require("boto3", "aws")
    require("moto", "kms-test")
    require("flask_cors", "kms-test")
    server = MotoServer().start()
    yield server
    server.stop()
