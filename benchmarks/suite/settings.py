"""Settings for the benchmark process; ``benchmarks/run.py`` picks the database.

``BENCH_DATABASE`` is ``sqlite`` (an in-memory database, where the database hides the least of
the field's own cost), ``postgresql`` or ``mariadb``. The server ones use a scratch database
(``BENCH_DATABASE_NAME``, default ``bench_suite``) that the script creates and drops through the
``server`` alias; ``BENCH_DATABASE_HOST``, ``_PORT``, ``_USER`` and ``_PASSWORD`` override the
defaults of the development machine.

Each library gets its own key setting: ``ENCRYPTION_KEY`` for authhero_encrypt, ``SECRET_KEY``
plus ``SALT_KEY`` for django-fernet-encrypted-fields (it derives its key with PBKDF2, once per
field) and ``FIELD_ENCRYPTION_KEY`` for django-encrypted-model-fields. Fresh random keys on every
run: nothing written here is meant to be read again.
"""

from __future__ import annotations

import base64
import os

from cryptography.fernet import Fernet

VENDOR = os.environ.get("BENCH_DATABASE", "sqlite").lower()
SCRATCH_NAME = os.environ.get("BENCH_DATABASE_NAME", "bench_suite")

SECRET_KEY = base64.b64encode(os.urandom(32)).decode()
USE_TZ = True
DEBUG = False  # DEBUG=True would keep every query in memory
INSTALLED_APPS = ["authhero_encrypt", "benchmarks.suite"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()
SALT_KEY = base64.b64encode(os.urandom(16)).decode()
FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()

_SERVERS = {
    # vendor: (engine, port, user, database to connect to for CREATE/DROP DATABASE)
    "postgresql": ("django.db.backends.postgresql", "5432", "postgres", "postgres"),
    "mariadb": ("django.db.backends.mysql", "3306", "root", ""),
}


def _databases() -> dict[str, dict[str, object]]:
    if VENDOR == "sqlite":
        name = os.environ.get("BENCH_SQLITE_PATH") or ":memory:"
        return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": name}}
    if VENDOR not in _SERVERS:
        raise ValueError(f"BENCH_DATABASE must be sqlite, postgresql or mariadb, not {VENDOR!r}")
    engine, port, user, server_db = _SERVERS[VENDOR]
    defaults = {"HOST": "127.0.0.1", "PORT": port, "USER": user, "PASSWORD": ""}
    common: dict[str, object] = {"ENGINE": engine}
    for key, default in defaults.items():
        common[key] = os.environ.get(f"BENCH_DATABASE_{key}", default)
    if VENDOR == "mariadb":
        common["OPTIONS"] = {"charset": "utf8mb4"}
    return {
        "default": {**common, "NAME": SCRATCH_NAME},
        "server": {**common, "NAME": server_db},
    }


DATABASES = _databases()

# benchmarks/per_request.py's test-client request.
ROOT_URLCONF = os.environ.get("BENCH_ROOT_URLCONF", "")
ALLOWED_HOSTS = ["testserver"]
