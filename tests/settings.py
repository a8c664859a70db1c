"""Settings for the test suite.

The database comes from ``TEST_DATABASE``: ``sqlite`` (the default), ``postgresql`` or
``mariadb``. ``TEST_DATABASE_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD`` and ``_NAME`` override
the defaults, which match the services on the development machine and in CI;
``TEST_DATABASE_TEST_NAME`` names the throwaway database the test run creates (so that two runs
on one server do not collide).
"""

from __future__ import annotations

import importlib.util
import os

from tests.keys import INDEX_KEY_A, KEY_A

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "authhero_encrypt",
    "tests.testapp",
    "tests.rowapp",  # a per-row envelope context (tests/test_envelope_row_context.py)
    "tests.indexapp",  # blind indexes (tests/test_blind_index*.py)
    # The example project's AuthHero tables, so its admin is tested with the package.
    "example_project.authhero",
    # Django REST framework and django-filter (the drf extra): the browsable API's templates.
    "rest_framework",
    "django_filters",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_VENDOR = os.environ.get("TEST_DATABASE", "sqlite").lower()
_DEFAULTS = {
    "postgresql": ("django.db.backends.postgresql", "5432", "postgres"),
    "mariadb": ("django.db.backends.mysql", "3306", "root"),
}


def _database() -> dict[str, object]:
    if _VENDOR == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    if _VENDOR not in _DEFAULTS:
        raise ValueError(f"TEST_DATABASE must be sqlite, postgresql or mariadb, not {_VENDOR!r}")
    engine, port, user = _DEFAULTS[_VENDOR]
    env = os.environ.get
    config: dict[str, object] = {
        "ENGINE": engine,
        "HOST": env("TEST_DATABASE_HOST", "127.0.0.1"),
        "PORT": env("TEST_DATABASE_PORT", port),
        "USER": env("TEST_DATABASE_USER", user),
        "PASSWORD": env("TEST_DATABASE_PASSWORD", ""),
        "NAME": env("TEST_DATABASE_NAME", "test"),
    }
    test: dict[str, object] = {}
    if env("TEST_DATABASE_TEST_NAME"):
        test["NAME"] = env("TEST_DATABASE_TEST_NAME")
    if _VENDOR == "mariadb":
        config["OPTIONS"] = {"charset": "utf8mb4"}
        test.update(CHARSET="utf8mb4", COLLATION="utf8mb4_bin")
    config["TEST"] = test
    return config


DATABASES = {"default": _database()}

ENCRYPTION_KEY = KEY_A
ENCRYPTION_INDEX_KEY = INDEX_KEY_A
ENCRYPTION_INDEX_KEY_ID = "i1"

# tests/test_import_export.py drives the real django-import-export admin (its templates).
if importlib.util.find_spec("import_export") is not None:
    INSTALLED_APPS.append("import_export")
