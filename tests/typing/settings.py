"""Settings for type-checking the sample app with django-stubs (tests/test_typing.py)."""

from __future__ import annotations

SECRET_KEY = "typing-only-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "authhero_encrypt",
    "tests.typing.sample_app",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
