"""Typed-in ciphertext is refused by every field's validators, at every door that validates.

The doors are tried with the real packages: ``full_clean()``, ``ModelForm``, a plain Django REST
framework ``ModelSerializer`` behind a ``CreateAPIView`` (DRF copies model-field validators
into the serializer fields it builds) and django-import-export (``clean_model_instances``).
The ciphertext posted is always another row's stored value, read with a cursor. ``save()``,
``bulk_create()`` and ``loaddata`` of verified ciphertext keep storing it byte for byte.

Runs on SQLite, PostgreSQL and MariaDB (TEST_DATABASE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tablib
from django import forms
from django.core.exceptions import ValidationError
from django.core.management import call_command
from import_export import resources
from rest_framework import generics, serializers
from rest_framework.test import APIRequestFactory

from authhero_encrypt.inventory import load_json
from authhero_encrypt.validators import RefuseCiphertextValidator, ciphertext_prefix
from tests.testapp.models import Connection, EmailProvider, PrivateKey, Secret

pytestmark = pytest.mark.django_db

VICTIM = "victim-secret-plaintext-1"


def victims(raw_column: Any) -> dict[str, str]:
    """One stored ciphertext of each kind, as a backup reader would copy them."""
    secret = Secret.objects.create(label="victim", token=VICTIM, notes=VICTIM)
    conn = Connection.objects.create(name="victim", options={"client_secret": VICTIM})
    key = PrivateKey.objects.create(name="victim", pem=VICTIM)
    return {
        "token": raw_column(Secret, secret.pk, "token"),
        "notes": raw_column(Secret, secret.pk, "notes"),
        "options": load_json(raw_column(Connection, conn.pk, "options"))["client_secret"],
        "pem": raw_column(PrivateKey, key.pk, "pem"),
    }


# Each door gets (model, field name, the value to post for a stolen ciphertext).
KINDS = [
    ("EncryptedCharField", Secret, "token"),
    ("EncryptedTextField", Secret, "notes"),
    ("JSONPathEncryptedField", Connection, "options"),
    ("EnvelopeEncryptedTextField", PrivateKey, "pem"),
]
KIND_IDS = [kind[0] for kind in KINDS]


def posted(field: str, stolen: str) -> Any:
    if field == "options":
        return {"client_id": "mine", "client_secret": stolen}
    return stolen


def instance(model: type, field: str, value: Any) -> Any:
    names = {Secret: "label", Connection: "name", PrivateKey: "name"}
    return model(**{names[model]: "attacker", field: value})


# The validator itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "prefix"),
    [
        ("enc:v1:abc", "enc:v1:"),
        ("enc:v1:k1:abc", "enc:v1:"),
        ("env:v1:local:k:abc", "env:v1:"),
        ("ENC:v1:abc", None),  # AuthHero's prefix rule is exact: not ciphertext to anybody
        (" enc:v1:abc", None),
        ("enc:v2:abc", None),
        ("xenc:v1:", None),
        ("", None),
        (42, None),
    ],
)
def test_ciphertext_prefix(value, prefix):
    assert ciphertext_prefix(value) == prefix


def test_the_validator_refuses_without_echoing_the_value():
    with pytest.raises(ValidationError) as info:
        RefuseCiphertextValidator()("enc:v1:SECRETPAYLOAD")
    assert info.value.code == "ciphertext"
    assert "SECRETPAYLOAD" not in " ".join(info.value.messages)
    assert "enc:v1:" in " ".join(info.value.messages)


def test_the_json_validator_checks_every_secret_leaf_and_nothing_else():
    validator = RefuseCiphertextValidator(
        encrypted_paths=["client_secret", "configuration.client_secret", "x.*"]
    )
    for document in (
        {"client_secret": "enc:v1:a"},
        {"configuration": {"client_secret": "env:v1:a"}},
        {"x": {"anything": "enc:v1:a"}},
    ):
        with pytest.raises(ValidationError) as info:
            validator(document)
        assert info.value.code == "ciphertext"
    # Not secrets: plaintext keys, a deeper level under '*', lists (AuthHero encrypts only
    # strings at a path, so nothing there is ever decrypted either), non-documents.
    for document in (
        {"client_id": "enc:v1:a"},
        {"x": {"deeper": {"y": "enc:v1:a"}}},
        {"client_secret": ["enc:v1:a"]},
        {"configuration": "enc:v1:a"},
        ["enc:v1:a"],
        "enc:v1:a",
        None,
    ):
        validator(document)


def test_the_validator_deconstructs_to_its_public_path():
    path, args, kwargs = RefuseCiphertextValidator(encrypted_paths=["a.b"]).deconstruct()
    assert path == "authhero_encrypt.validators.RefuseCiphertextValidator"
    assert (args, kwargs) == ((), {"encrypted_paths": ["a.b"]})
    assert RefuseCiphertextValidator(encrypted_paths=["a.b"]) == RefuseCiphertextValidator(
        encrypted_paths=["a.b"]
    )
    assert RefuseCiphertextValidator() != RefuseCiphertextValidator(encrypted_paths=["a"])


@pytest.mark.parametrize(("kind", "model", "field"), KINDS, ids=KIND_IDS)
def test_each_field_carries_the_validator_and_migrations_do_not(kind, model, field):
    model_field = model._meta.get_field(field)
    assert any(isinstance(v, RefuseCiphertextValidator) for v in model_field.validators)
    assert "validators" not in model_field.deconstruct()[3]


def test_makemigrations_check_stays_clean():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


# Doors: full_clean, ModelForm, DRF, import-export -------------------------------------------


@pytest.mark.parametrize(("kind", "model", "field"), KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("source", ["token", "pem"])  # an enc:v1 and an env:v1 ciphertext
def test_full_clean_refuses_stolen_ciphertext(raw_column, kind, model, field, source):
    stolen = victims(raw_column)[source]
    with pytest.raises(ValidationError) as info:
        instance(model, field, posted(field, stolen)).full_clean()
    # (An envelope value is also longer than the char field's max_length.)
    assert "ciphertext" in [e.code for e in info.value.error_dict[field]]
    assert stolen not in str(info.value)


@pytest.mark.parametrize(("kind", "model", "field"), KINDS, ids=KIND_IDS)
def test_a_model_form_refuses_stolen_ciphertext(raw_column, kind, model, field):
    stolen = victims(raw_column)["token"]
    form_class = forms.modelform_factory(model, fields=[field])
    value = json.dumps(posted(field, stolen)) if field == "options" else f"  {stolen} "
    form = form_class(data={field: value})  # the form strips the spaces, then refuses
    assert not form.is_valid()
    assert [e.code for e in form.errors.as_data()[field]] == ["ciphertext"]
    rows = model._default_manager.count()
    with pytest.raises(ValueError, match="could not be created"):
        form.save()
    assert model._default_manager.count() == rows


@pytest.mark.parametrize(("kind", "model", "field"), KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("source", ["notes", "pem"])
def test_a_drf_model_serializer_answers_400_ciphertext(raw_column, kind, model, field, source):
    stolen = victims(raw_column)[source]

    class Serializer(serializers.ModelSerializer):
        class Meta:
            fields = "__all__"

    Serializer.Meta.model = model
    view = generics.ListCreateAPIView.as_view(
        queryset=model._default_manager.all(), serializer_class=Serializer
    )
    names = {Secret: "label", Connection: "name", PrivateKey: "name"}
    data = {names[model]: "attacker", field: posted(field, stolen)}
    rows = model._default_manager.count()
    response = view(APIRequestFactory().post("/", data, format="json"))
    assert response.status_code == 400, response.data
    assert "ciphertext" in [e.code for e in response.data[field]]
    assert stolen not in json.dumps(response.data)
    assert model._default_manager.count() == rows


@pytest.mark.parametrize(("kind", "model", "field"), KINDS, ids=KIND_IDS)
def test_import_export_refuses_stolen_ciphertext(raw_column, kind, model, field):
    stolen = victims(raw_column)["token"]

    # The resource's metaclass reads Meta.model when the class is made.
    meta = type(
        "Meta", (), {"model": model, "clean_model_instances": True, "fields": ("id", field)}
    )
    resource_class = type("Resource", (resources.ModelResource,), {"Meta": meta})
    value = json.dumps(posted(field, stolen)) if field == "options" else stolen
    dataset = tablib.Dataset(["", value], headers=["id", field])
    rows = model._default_manager.count()
    result = resource_class().import_data(dataset, dry_run=False, raise_errors=False)
    assert result.has_validation_errors()
    error = result.invalid_rows[0].error
    assert [e.code for e in error.error_dict[field]] == ["ciphertext"]
    assert model._default_manager.count() == rows


@pytest.mark.parametrize("typed", ["ENC:v1:{}", " {}", "x{}"])
def test_what_is_not_ciphertext_is_accepted_and_reads_back_as_typed(raw_column, typed):
    # A case variant or a leading space is plaintext to every reader: it is encrypted as it is
    # and reads back as typed, never as the row it was copied from.
    stolen = victims(raw_column)["token"]
    value = typed.format(stolen[len("enc:v1:") :] if typed.startswith("ENC") else stolen)
    row = Secret(label="attacker", token=None, notes=value)
    row.full_clean()
    row.save()
    assert raw_column(Secret, row.pk, "notes").startswith("enc:v1:")
    assert Secret.objects.get(pk=row.pk).notes == value != VICTIM


# What does not validate keeps storing verified ciphertext --------------------------------------


def test_save_and_bulk_create_keep_verified_ciphertext(raw_column):
    stolen = victims(raw_column)
    one = Secret.objects.create(label="copy", token=stolen["token"], notes=stolen["notes"])
    (two,) = Secret.objects.bulk_create([Secret(label="bulk", token=stolen["token"])])
    key = PrivateKey.objects.create(name="copy", pem=stolen["pem"])
    conn = Connection.objects.create(name="copy", options={"client_secret": stolen["options"]})
    assert raw_column(Secret, one.pk, "token") == stolen["token"]
    assert raw_column(Secret, one.pk, "notes") == stolen["notes"]
    pk = two.pk or Secret.objects.get(label="bulk").pk
    assert raw_column(Secret, pk, "token") == stolen["token"]
    assert raw_column(PrivateKey, key.pk, "pem") == stolen["pem"]
    assert Connection.objects.get(pk=conn.pk).options["client_secret"] == VICTIM


def test_loaddata_stores_the_dumped_ciphertext_verbatim(raw_column, tmp_path: Path):
    victims(raw_column)
    EmailProvider.objects.create(name="smtp", credentials={"password": VICTIM})
    models = [Secret, Connection, PrivateKey, EmailProvider]
    dump = tmp_path / "dump.json"
    call_command("dumpdata", *(m._meta.label for m in models), output=str(dump), verbosity=0)
    for model in models:
        model._default_manager.all().delete()
    call_command("loaddata", str(dump), verbosity=0)
    by_label = {m._meta.label_lower: m for m in models}
    checked = 0
    for item in json.loads(dump.read_text()):
        model = by_label[item["model"]]
        for name, dumped in item["fields"].items():
            field = model._meta.get_field(name)
            if name not in {"token", "notes", "options", "pem", "credentials"} or dumped is None:
                continue
            stored = raw_column(model, item["pk"], field.column)
            assert (load_json(stored) if name in {"options", "credentials"} else stored) == dumped
            checked += 1
    assert checked == 5
    assert EmailProvider.objects.get(name="smtp").credentials == {"password": VICTIM}
