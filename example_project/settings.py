"""Settings of the example project: an AuthHero-shaped app on SQLite, for local use only.

``ENCRYPTION_KEY`` (and optionally ``ENCRYPTION_KEY_ID`` and ``ENCRYPTION_KEY_FALLBACKS``) come
from the environment, as in AuthHero: unset means encryption is off. ``run.py`` supplies a
throwaway key when none is set.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# A development-only project: the fallback secret is public on purpose.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "example-project-insecure-development-only"
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "authhero_encrypt",
    "example_project.authhero",
    # The management API (/api/v2/): authhero-encrypt's drf extra.
    "rest_framework",
    "django_filters",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # EXAMPLE_DATABASE_PATH lets the test suite use a throwaway file.
        "NAME": os.environ.get("EXAMPLE_DATABASE_PATH") or BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
STATIC_URL = "static/"

ENCRYPTION_KEY = os.environ.get("ENCRYPTION_KEY") or None
ENCRYPTION_KEY_ID = os.environ.get("ENCRYPTION_KEY_ID") or None
# Older keys, read-only, comma-separated: "oldid:BASE64KEY,BASE64KEY" (see docs/key_rotation.md).
ENCRYPTION_KEY_FALLBACKS = [
    entry.strip()
    for entry in os.environ.get("ENCRYPTION_KEY_FALLBACKS", "").split(",")
    if entry.strip()
]
