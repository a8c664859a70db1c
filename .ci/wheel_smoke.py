"""Smoke test of the built wheel, run by ``.ci/run`` in a fresh virtual environment.

It runs from an empty temporary folder, so ``authhero_encrypt`` can only come from the installed
wheel, never from the source tree. It writes a one-model Django project there, makes and applies
its migrations, stores a secret, reads the raw column, renders the admin's template and finds the
static file, and checks the licence, project URLs and pytest plugin entry point in the installed
metadata: a packaging mistake (a module, template, static file or ``py.typed`` left out of the
wheel) fails here even though the editable install used by the test suite would hide it.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
from pathlib import Path

MODELS = """
from django.db import models
from authhero_encrypt.fields import EncryptedCharField, JSONPathEncryptedField


class Client(models.Model):
    client_id = models.CharField(max_length=50)
    client_secret = EncryptedCharField(max_length=100)
    options = JSONPathEncryptedField(encrypted_paths=["client_secret"], default=dict)

    def __str__(self):
        return self.client_id
"""


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="wheel-smoke-"))
    os.chdir(root)
    sys.path.insert(0, str(root))
    app = root / "smokeapp"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    (app / "models.py").write_text(MODELS)

    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "authhero_encrypt",
            "smokeapp",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        TEMPLATES=[
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
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        STATIC_URL="/static/",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        ENCRYPTION_KEY=base64.b64encode(bytes(range(32))).decode(),
        SECRET_KEY="wheel-smoke-only",
    )
    django.setup()

    from django.contrib.staticfiles import finders
    from django.core.management import call_command
    from django.db import connection
    from django.template.loader import get_template

    import authhero_encrypt

    source = Path(authhero_encrypt.__file__).resolve()
    assert "site-packages" in source.parts, f"imported from {source}, not from the wheel"
    assert (source.parent / "py.typed").exists(), "py.typed is missing from the wheel"

    call_command("check", fail_level="WARNING")
    call_command("makemigrations", "smokeapp", verbosity=0)
    call_command("migrate", verbosity=0)

    from smokeapp.models import Client  # type: ignore[import-not-found]

    client = Client.objects.create(
        client_id="abc", client_secret="wheel secret!", options={"client_secret": "json secret!"}
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret, options FROM smokeapp_client")
        secret, options = cursor.fetchone()
    assert secret.startswith("enc:v1:"), "the secret is not stored as enc:v1: ciphertext"
    assert "wheel secret!" not in secret
    assert "json secret!" not in options, options
    assert Client.objects.get(pk=client.pk).client_secret == "wheel secret!"

    get_template("authhero_encrypt/widgets/write_only_secret.html")
    assert finders.find("authhero_encrypt/admin.css"), "admin.css is missing from the wheel"
    call_command("encryption_status", check=True)
    check_metadata()
    print(f"wheel smoke test passed: {source.parent}")


def check_metadata() -> None:
    """The licence file, the project URLs and the pytest plugin's entry point, as installed."""
    from importlib import metadata

    dist = metadata.distribution("authhero-encrypt")
    licence = [path for path in dist.files or () if path.name == "LICENSE"]
    assert licence, "LICENSE is missing from the wheel"
    text = licence[0].read_text()
    assert "MIT License" in text, text[:200]
    assert "authhero_encrypt developers" in text, text[:200]
    urls = dist.metadata.get_all("Project-URL") or []
    assert urls, "no Project-URL in the metadata"
    assert all("https://" in url for url in urls), urls
    assert dist.metadata["License-Expression"] == "MIT"
    (plugin,) = [ep for ep in dist.entry_points if ep.group == "pytest11"]
    module = plugin.load()
    assert hasattr(module, "encryption_key"), "the pytest plugin has no encryption_key fixture"


if __name__ == "__main__":
    main()
