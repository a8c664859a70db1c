"""authhero_encrypt.integrations.import_export with the real django-import-export.

Every import is followed by a read of the raw column: what is at rest is what counts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kms_server import require

require("import_export", "import-export")

import tablib  # noqa: E402 - after the requirement, so a missing package fails or skips cleanly
from django.contrib import admin  # noqa: E402
from django.contrib.admin.sites import all_sites  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from import_export.admin import ImportExportModelAdmin  # noqa: E402
from import_export.resources import ModelResource  # noqa: E402

from authhero_encrypt.admin import EncryptedFieldsAdminMixin  # noqa: E402
from authhero_encrypt.crypto import PREFIX, decrypt_value  # noqa: E402
from authhero_encrypt.integrations.import_export import (  # noqa: E402
    EncryptedFieldsResourceMixin,
)
from tests.testapp.models import Connection, PrivateKey, Secret  # noqa: E402

pytestmark = pytest.mark.django_db

TOKEN = "tok-plaintext-secret-1"
NOTES = "notes plaintext secret 2"
LEAF = "leaf-plaintext-secret-3"
PEM = "-----BEGIN PRIVATE KEY-----\nplaintext-pem-4\n-----END PRIVATE KEY-----"


class SecretResource(EncryptedFieldsResourceMixin, ModelResource):
    class Meta:
        model = Secret
        fields = ("id", "label", "token", "notes")


class CiphertextSecretResource(EncryptedFieldsResourceMixin, ModelResource):
    class Meta:
        model = Secret
        fields = ("id", "label", "token", "notes")
        encrypted_export = "ciphertext"


class ConnectionResource(EncryptedFieldsResourceMixin, ModelResource):
    class Meta:
        model = Connection
        fields = ("id", "name", "options")


class CiphertextConnectionResource(EncryptedFieldsResourceMixin, ModelResource):
    class Meta:
        model = Connection
        fields = ("id", "name", "options")
        encrypted_export = "ciphertext"


class PrivateKeyResource(EncryptedFieldsResourceMixin, ModelResource):
    class Meta:
        model = PrivateKey
        fields = ("id", "name", "pem")


class PlainSecretResource(ModelResource):
    class Meta:
        model = Secret
        fields = ("id", "label", "token", "notes")


@pytest.fixture
def secret() -> Secret:
    return Secret.objects.create(label="victim", token=TOKEN, notes=NOTES)


@pytest.fixture
def connection_row() -> Connection:
    options = {"client_id": "cid", "client_secret": LEAF, "configuration": {"client_secret": LEAF}}
    return Connection.objects.create(name="victim", options=options)


def stored_document(raw_column: Any, obj: Any) -> Any:
    raw = raw_column(type(obj), obj.pk, "options")
    return raw if isinstance(raw, dict) else json.loads(raw)


def import_rows(resource: Any, headers: list[str], *rows: list[Any]) -> Any:
    dataset = tablib.Dataset(*rows, headers=headers)
    return resource.import_data(dataset, dry_run=False, raise_errors=False)


def ciphertext_errors(result: Any) -> list[str]:
    codes = []
    for row in result.invalid_rows:
        for errors in row.error.error_dict.values():
            codes += [error.code for error in errors]
    return codes


# Export ------------------------------------------------------------------------------------


def test_a_plain_model_resource_exports_plaintext(secret):
    # The problem the mixin solves: import-export reads the decrypted attributes.
    csv = PlainSecretResource().export().csv
    assert TOKEN in csv
    assert NOTES in csv


def test_default_export_leaves_secrets_out(secret, connection_row):
    dataset = SecretResource().export()
    assert dataset.headers == ["id", "label"]
    assert TOKEN not in dataset.csv
    assert PREFIX not in dataset.csv
    document = json.loads(ConnectionResource().export().dict[0]["options"])
    assert document == {"client_id": "cid", "configuration": {}}


def test_ciphertext_export_writes_the_stored_text(secret, connection_row, raw_column):
    row = CiphertextSecretResource().export().dict[0]
    assert row["token"] == raw_column(Secret, secret.pk, "token")
    assert row["notes"] == raw_column(Secret, secret.pk, "notes")
    assert TOKEN not in row["token"]
    document = json.loads(CiphertextConnectionResource().export().dict[0]["options"])
    assert document == stored_document(raw_column, connection_row)
    assert LEAF not in json.dumps(document)


def test_ciphertext_export_encrypts_legacy_plaintext(raw_column):
    with override_settings(ENCRYPTION_KEY=None):
        legacy = Secret.objects.create(label="legacy", token=TOKEN)
    assert raw_column(Secret, legacy.pk, "token") == TOKEN
    row = CiphertextSecretResource().export().dict[0]
    assert row["token"].startswith(PREFIX)
    assert decrypt_value(row["token"]) == TOKEN


def test_an_unknown_export_mode_is_refused(secret):
    class Bad(EncryptedFieldsResourceMixin, ModelResource):
        class Meta:
            model = Secret
            encrypted_export = "plaintext"

    with pytest.raises(ValueError, match="encrypted_export must be one of 'omit', 'ciphertext'"):
        Bad().export()


# Import ------------------------------------------------------------------------------------


def test_import_of_plaintext_is_encrypted_at_rest(raw_column):
    result = import_rows(SecretResource(), ["label", "token", "notes"], ["new", TOKEN, NOTES])
    assert not result.has_errors()
    assert not result.has_validation_errors()
    obj = Secret.objects.get(label="new")
    for column, value in (("token", TOKEN), ("notes", NOTES)):
        stored = raw_column(Secret, obj.pk, column)
        assert stored.startswith(PREFIX)
        assert decrypt_value(stored) == value


def test_import_of_a_document_encrypts_its_secret_leaves(raw_column):
    options = json.dumps({"client_id": "cid", "client_secret": LEAF})
    result = import_rows(ConnectionResource(), ["name", "options"], ["new", options])
    assert not result.has_validation_errors()
    stored = stored_document(raw_column, Connection.objects.get(name="new"))
    assert stored["client_id"] == "cid"
    assert decrypt_value(stored["client_secret"]) == LEAF


def test_import_of_an_envelope_value_is_sealed(raw_column):
    result = import_rows(PrivateKeyResource(), ["name", "pem"], ["new", PEM])
    assert not result.has_validation_errors()
    stored = raw_column(PrivateKey, PrivateKey.objects.get(name="new").pk, "pem")
    assert stored.startswith("env:v1:")
    assert PrivateKey.objects.get(name="new").pem == PEM


@pytest.mark.parametrize("column", ["token", "notes"])
def test_pasted_ciphertext_of_another_row_is_refused(secret, raw_column, column):
    attacker = Secret.objects.create(label="attacker", token="mine", notes="mine")
    before = raw_column(Secret, attacker.pk, column)
    stolen = raw_column(Secret, secret.pk, column)
    result = import_rows(SecretResource(), ["id", column], [attacker.pk, stolen])
    assert ciphertext_errors(result) == ["ciphertext"]
    assert raw_column(Secret, attacker.pk, column) == before
    attacker.refresh_from_db()
    assert getattr(attacker, column) == "mine"


def test_pasted_ciphertext_on_a_new_row_creates_nothing(secret, raw_column):
    stolen = raw_column(Secret, secret.pk, "token")
    result = import_rows(SecretResource(), ["label", "token"], ["attacker", stolen])
    assert ciphertext_errors(result) == ["ciphertext"]
    assert not Secret.objects.filter(label="attacker").exists()


def test_pasted_envelope_ciphertext_is_refused(raw_column):
    victim = PrivateKey.objects.create(name="victim", pem=PEM)
    attacker = PrivateKey.objects.create(name="attacker", pem="mine")
    before = raw_column(PrivateKey, attacker.pk, "pem")
    stolen = raw_column(PrivateKey, victim.pk, "pem")
    assert stolen.startswith("env:v1:")
    result = import_rows(PrivateKeyResource(), ["id", "pem"], [attacker.pk, stolen])
    assert ciphertext_errors(result) == ["ciphertext"]
    assert raw_column(PrivateKey, attacker.pk, "pem") == before
    # An enc:v1 value in an envelope column is refused as well.
    secret = Secret.objects.create(token=TOKEN)
    enc = raw_column(Secret, secret.pk, "token")
    result = import_rows(PrivateKeyResource(), ["id", "pem"], [attacker.pk, enc])
    assert ciphertext_errors(result) == ["ciphertext"]
    assert raw_column(PrivateKey, attacker.pk, "pem") == before


def test_pasted_ciphertext_at_a_json_leaf_is_refused(connection_row, raw_column):
    attacker = Connection.objects.create(name="attacker", options={"client_secret": "mine"})
    before = stored_document(raw_column, attacker)
    stolen = stored_document(raw_column, connection_row)["configuration"]["client_secret"]
    options = json.dumps({"configuration": {"client_secret": stolen}})
    result = import_rows(ConnectionResource(), ["id", "options"], [attacker.pk, options])
    assert ciphertext_errors(result) == ["ciphertext"]
    message = result.invalid_rows[0].error_dict["options"][0]
    assert "configuration.client_secret" in message
    assert stored_document(raw_column, attacker) == before


def test_the_row_own_ciphertext_imports_back_unchanged(secret, connection_row, raw_column):
    # A "ciphertext" export imported back: each value is the text that very row stores.
    dataset = CiphertextSecretResource().export()
    result = CiphertextSecretResource().import_data(dataset, dry_run=False, raise_errors=False)
    assert not result.has_validation_errors()
    assert not result.has_errors()
    secret.refresh_from_db()
    assert (secret.token, secret.notes) == (TOKEN, NOTES)
    assert decrypt_value(raw_column(Secret, secret.pk, "token")) == TOKEN
    dataset = CiphertextConnectionResource().export()
    result = CiphertextConnectionResource().import_data(dataset, dry_run=False, raise_errors=False)
    assert not result.has_validation_errors()
    connection_row.refresh_from_db()
    assert connection_row.options["client_secret"] == LEAF
    assert connection_row.options["configuration"]["client_secret"] == LEAF


def test_an_envelope_ciphertext_export_imports_back_unchanged(raw_column):
    class Resource(EncryptedFieldsResourceMixin, ModelResource):
        class Meta:
            model = PrivateKey
            fields = ("id", "name", "pem")
            encrypted_export = "ciphertext"

    key = PrivateKey.objects.create(name="key", pem=PEM)
    dataset = Resource().export()
    assert dataset.dict[0]["pem"] == raw_column(PrivateKey, key.pk, "pem")
    result = Resource().import_data(dataset, dry_run=False, raise_errors=False)
    assert not result.has_validation_errors()
    key.refresh_from_db()
    assert key.pem == PEM
    assert raw_column(PrivateKey, key.pk, "pem").startswith("env:v1:")


def test_an_omit_export_imports_back_without_losing_secrets(connection_row, raw_column):
    dataset = ConnectionResource().export()
    result = ConnectionResource().import_data(dataset, dry_run=False, raise_errors=False)
    assert not result.has_validation_errors()
    connection_row.refresh_from_db()
    assert connection_row.options["configuration"]["client_secret"] == LEAF
    stored = stored_document(raw_column, connection_row)
    assert decrypt_value(stored["client_secret"]) == LEAF


def test_the_import_preview_masks_secrets(secret):
    result = SecretResource().import_data(
        tablib.Dataset([secret.pk, "changed-secret"], headers=["id", "token"]), dry_run=True
    )
    html = " ".join(str(cell) for row in result.rows for cell in row.diff)
    assert TOKEN not in html
    assert "changed-secret" not in html
    assert "(changed)" in html


# Admin -------------------------------------------------------------------------------------


class SecretAdmin(EncryptedFieldsAdminMixin, ImportExportModelAdmin):
    resource_classes = [SecretResource]


class CiphertextSecretAdmin(EncryptedFieldsAdminMixin, ImportExportModelAdmin):
    resource_classes = [CiphertextSecretResource]


class LeakyAdmin(EncryptedFieldsAdminMixin, ImportExportModelAdmin):
    """EncryptedFieldsAdminMixin alone: its pages hide secrets, its Export button does not."""


SITES = {}
for _admin_class in (SecretAdmin, CiphertextSecretAdmin, LeakyAdmin):
    SITES[_admin_class] = admin.AdminSite(name=f"site_{_admin_class.__name__.lower()}")
    SITES[_admin_class].register(Secret, _admin_class)
    # Out of the registry the project's checks walk: LeakyAdmin is meant to fail W511.
    all_sites.discard(SITES[_admin_class])
urlpatterns = [path(f"{site.name}/", site.urls) for site in SITES.values()]


def export_through_admin(client: Any, admin_class: Any) -> str:
    site = SITES[admin_class]
    resource = site._registry[Secret].get_export_resource_classes(None)[0].__name__.lower()
    # Every field ticked, the secrets too: the form lists names, never values.
    ticked = {f"{resource}_{name}": "on" for name in ("id", "label", "token", "notes")}
    url = f"/{site.name}/testapp/secret/export/"
    page = client.get(url)
    assert page.status_code == 200
    assert TOKEN not in page.content.decode()
    response = client.post(url, {"format": "0", "resource": "0", **ticked})
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return response.content.decode()


@override_settings(ROOT_URLCONF=__name__)
def test_the_admin_export_button_of_a_plain_resource_leaks(admin_client, secret):
    assert TOKEN in export_through_admin(admin_client, LeakyAdmin)


@override_settings(ROOT_URLCONF=__name__)
def test_the_admin_export_button_with_the_mixin_shows_no_plaintext(admin_client, secret):
    body = export_through_admin(admin_client, SecretAdmin)
    assert body.splitlines()[0] == "id,label"
    assert "victim" in body
    assert TOKEN not in body
    assert NOTES not in body
    body = export_through_admin(admin_client, CiphertextSecretAdmin)
    assert body.splitlines()[0] == "id,label,token,notes"
    assert TOKEN not in body
    assert NOTES not in body
    assert body.count(PREFIX) == 2


# Check W511 --------------------------------------------------------------------------------


def w511(site: Any) -> list[Any]:
    from authhero_encrypt.integrations.import_export_checks import check_import_export_admins

    return [e for e in check_import_export_admins(sites=[site]) if e.id == "authhero_encrypt.W511"]


def test_w511_reports_an_import_export_admin_without_the_resource_mixin():
    (error,) = w511(SITES[LeakyAdmin])
    assert error.obj is LeakyAdmin
    assert "testapp.Secret.notes, testapp.Secret.token" in error.msg
    assert "EncryptedFieldsResourceMixin" in error.hint
    assert TOKEN not in error.msg


def test_w511_is_quiet_with_the_resource_mixin():
    assert w511(SITES[SecretAdmin]) == []
    assert w511(SITES[CiphertextSecretAdmin]) == []


def test_w511_is_quiet_for_a_resource_without_secrets():
    class LabelResource(ModelResource):
        class Meta:
            model = Secret
            fields = ("id", "label")

    class LabelAdmin(ImportExportModelAdmin):
        resource_classes = [LabelResource]

    quiet = admin.AdminSite(name="w511_quiet")
    quiet.register(Secret, LabelAdmin)
    assert w511(quiet) == []


def test_w511_reports_an_export_only_admin():
    from import_export.admin import ExportMixin

    class ExportOnlyAdmin(ExportMixin, admin.ModelAdmin):
        resource_classes = [PlainSecretResource]

    export_only = admin.AdminSite(name="w511_export_only")
    export_only.register(Secret, ExportOnlyAdmin)
    (error,) = w511(export_only)
    assert "PlainSecretResource" in error.msg


def test_the_check_is_registered():
    from django.core import checks

    registered = checks.registry.registry.get_checks()
    assert any(check.__name__ == "check_import_export_admins" for check in registered)


def test_without_the_package_the_import_names_the_extra(monkeypatch):
    import sys

    for name in [name for name in sys.modules if name.split(".")[0] == "import_export"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "authhero_encrypt.integrations.import_export")
    with pytest.raises(
        ImportError,
        match=r"pip install django-import-export \(what the package's import-export extra",
    ):
        import authhero_encrypt.integrations.import_export  # noqa: F401


@override_settings(ROOT_URLCONF=__name__)
def test_the_admin_import_button_refuses_pasted_ciphertext(admin_client, secret, raw_column):
    from django.core.files.uploadedfile import SimpleUploadedFile

    attacker = Secret.objects.create(label="attacker", token="mine")
    before = raw_column(Secret, attacker.pk, "token")
    stolen = raw_column(Secret, secret.pk, "token")
    csv = f"id,label,token\n{attacker.pk},attacker,{stolen}\n".encode()
    url = f"/{SITES[SecretAdmin].name}/testapp/secret/import/"
    upload = SimpleUploadedFile("rows.csv", csv, content_type="text/csv")
    response = admin_client.post(url, {"resource": "0", "format": "0", "import_file": upload})
    assert response.status_code == 200
    page = response.content.decode()
    assert "the prefix of stored ciphertext" in page
    assert TOKEN not in page
    assert raw_column(Secret, attacker.pk, "token") == before
    # A plaintext secret goes through the preview masked.
    csv = f"id,label,token\n{attacker.pk},attacker,brand-new-secret\n".encode()
    upload = SimpleUploadedFile("rows.csv", csv, content_type="text/csv")
    response = admin_client.post(url, {"resource": "0", "format": "0", "import_file": upload})
    page = response.content.decode()
    assert "(changed)" in page
    assert "brand-new-secret" not in page
    assert raw_column(Secret, attacker.pk, "token") == before  # nothing stored before confirm
