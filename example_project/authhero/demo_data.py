"""Demo rows for every table, some of them deliberately left as legacy plaintext.

Every secret here is made up. Rows marked ``legacy`` have their secrets written with raw SQL,
bypassing the fields, as a database filled before encryption was switched on would hold them;
the fields read them unchanged and encrypt them on their next write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connections, models, transaction

from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.inventory import encrypted_fields

_DEMO_PKCS7 = (
    "-----BEGIN PRIVATE KEY-----\nREVNTy1PTkxZLU5PVC1BLVJFQUwtS0VZ\n-----END PRIVATE KEY-----\n"
)
_DEMO_DKIM = (
    "-----BEGIN RSA PRIVATE KEY-----\nREVNTy1ES0lNLUtFWS1OT1QtUkVBTA==\n"
    "-----END RSA PRIVATE KEY-----\n"
)
_LEGACY_DKIM = (
    "-----BEGIN RSA PRIVATE KEY-----\nTEVHQUNZLURFTU8tREtJTS1LRVk=\n-----END RSA PRIVATE KEY-----\n"
)
_DEMO_CERT = "-----BEGIN CERTIFICATE-----\nREVNTy1DRVJUSUZJQ0FURQ==\n-----END CERTIFICATE-----\n"


@dataclass(frozen=True)
class DemoRow:
    """One demo row: ``key`` is the plaintext field that finds it again, ``shown`` a value the
    admin's list and change pages must show (the row's ``client_id`` where it has one)."""

    model: str
    key: str
    values: dict[str, Any]
    shown: str
    legacy: bool = False

    @property
    def model_class(self) -> type[models.Model]:
        return apps.get_model("authhero", self.model)

    @property
    def lookup(self) -> dict[str, Any]:
        return {self.key: self.values[self.key]}


DEMO_ROWS: tuple[DemoRow, ...] = (
    DemoRow(
        "Client",
        "client_id",
        {
            "client_id": "demo-backend-7b21e0",
            "name": "Demo backend",
            "client_secret": "cs-demo-backend-Q8v2Xk1pLm",
        },
        shown="demo-backend-7b21e0",
    ),
    DemoRow(
        "Client",
        "client_id",
        {
            "client_id": "demo-m2m-4d88c2",
            "name": "Demo machine-to-machine",
            "client_secret": "cs-demo-m2m-Zr5Tn0bWq3",
        },
        shown="demo-m2m-4d88c2",
    ),
    DemoRow(
        "Client",
        "client_id",
        {"client_id": "demo-spa-1f3c9a", "name": "Demo single-page app", "client_secret": None},
        shown="demo-spa-1f3c9a",
    ),
    DemoRow(
        "Client",
        "client_id",
        {
            "client_id": "legacy-portal-9e01aa",
            "name": "Legacy portal",
            "client_secret": "cs-legacy-portal-Hd72Jx4v",
        },
        shown="legacy-portal-9e01aa",
        legacy=True,
    ),
    DemoRow(
        "Connection",
        "name",
        {
            "name": "google-oauth2",
            "strategy": "google-oauth2",
            "options": {
                "client_id": "1234-demo.apps.googleusercontent.com",
                "client_secret": "GOCSPX-demo-google-5Rk8sLq",
                "scope": "openid email profile",
            },
        },
        shown="1234-demo.apps.googleusercontent.com",
    ),
    DemoRow(
        "Connection",
        "name",
        {
            "name": "facebook",
            "strategy": "facebook",
            "options": {"client_id": "fb-demo-app-5550101", "app_secret": "fb-demo-secret-77f2Ma"},
        },
        shown="fb-demo-app-5550101",
    ),
    DemoRow(
        "Connection",
        "name",
        {
            "name": "sms",
            "strategy": "sms",
            "options": {
                "client_id": "twilio-demo-client",
                "twilio_sid": "AC-demo-000",
                "twilio_token": "twilio-demo-token-9c1dPw",
                "from": "+15550100",
            },
        },
        shown="twilio-demo-client",
    ),
    DemoRow(
        "Connection",
        "name",
        {
            "name": "corporate-oidc",
            "strategy": "oidc",
            "options": {
                "client_id": "oidc-demo-client-31",
                "configuration": {
                    "issuer": "https://idp.example.com",
                    "client_secret": "oidc-demo-config-3e7aVn",
                },
            },
        },
        shown="oidc-demo-client-31",
    ),
    DemoRow(
        "Connection",
        "name",
        {
            "name": "legacy-github",
            "strategy": "github",
            "options": {
                "client_id": "gh-legacy-demo-client",
                "client_secret": "gh-legacy-demo-5b0cTt",
            },
        },
        shown="gh-legacy-demo-client",
        legacy=True,
    ),
    DemoRow(
        "EmailProvider",
        "name",
        {
            "name": "mailgun",
            "default_from_address": "login@demo.example.com",
            "credentials": {
                "api_key": "key-demo-mailgun-8aQ2xZ",
                "domain": "mg.demo.example.com",
            },
        },
        shown="login@demo.example.com",
    ),
    DemoRow(
        "EmailProvider",
        "name",
        {
            "name": "ses",
            "default_from_address": "legacy@demo.example.com",
            "enabled": False,
            "credentials": {
                "accessKeyId": "AKIA-DEMO-LEGACY",
                "secretAccessKey": "ses-legacy-demo-4Hn7Qe",
                "region": "us-east-1",
            },
        },
        shown="legacy@demo.example.com",
        legacy=True,
    ),
    DemoRow(
        "AuthenticationMethod",
        "user_id",
        {"user_id": "auth0|alice-demo", "totp_secret": "JBSWY3DPEHPK3PXA", "confirmed": True},
        shown="auth0|alice-demo",
    ),
    DemoRow(
        "AuthenticationMethod",
        "user_id",
        {"user_id": "auth0|bob-legacy", "totp_secret": "KRUGS4ZANFZSAYJA", "confirmed": True},
        shown="auth0|bob-legacy",
        legacy=True,
    ),
    DemoRow(
        "MigrationSource",
        "name",
        {
            "name": "auth0-production",
            "connection": "Username-Password-Authentication",
            "credentials": {
                "domain": "demo.eu.auth0.com",
                "client_id": "auth0-demo-migration-client",
                "client_secret": "auth0-demo-migration-2Wq9Lr",
            },
        },
        shown="auth0-demo-migration-client",
    ),
    DemoRow(
        "MigrationSource",
        "name",
        {
            "name": "auth0-legacy",
            "credentials": {
                "domain": "legacy.auth0.com",
                "client_id": "auth0-legacy-client",
                "client_secret": "auth0-legacy-secret-6Ty3Ux",
            },
        },
        shown="auth0-legacy-client",
        legacy=True,
    ),
    DemoRow(
        "SigningKey",
        "kid",
        {"kid": "demo-signing-key-1", "cert": _DEMO_CERT, "pkcs7": _DEMO_PKCS7},
        shown="demo-signing-key-1",
    ),
    DemoRow(
        "CustomDomain",
        "domain",
        {"domain": "auth.demo.example.com", "dkim_private_key": _DEMO_DKIM},
        shown="auth.demo.example.com",
    ),
    DemoRow(
        "CustomDomain",
        "domain",
        {"domain": "login.legacy-demo.example.com", "dkim_private_key": _LEGACY_DKIM},
        shown="login.legacy-demo.example.com",
        legacy=True,
    ),
)


def secret_values(row: DemoRow) -> Iterator[str]:
    """The plaintext secrets of ``row``: what the admin must never show."""
    for model_field in encrypted_fields(row.model_class):
        value = row.values.get(model_field.name)
        if isinstance(model_field, JSONPathEncryptedField):
            yield from (leaf for _, leaf in model_field.path_trie.secrets(value) if leaf)
        elif value:
            yield value


def load_demo_data(using: str = "default") -> tuple[int, int]:
    """Create the demo rows that are missing; returns ``(created, legacy)`` counts.

    Rows are found again by a plaintext field, so running it twice changes nothing and never
    needs to decrypt anything. All of it is one transaction on ``using``, the database written.
    """
    created = legacy = 0
    with transaction.atomic(using=using):
        for row in DEMO_ROWS:
            model = row.model_class
            if model._default_manager.using(using).filter(**row.lookup).exists():
                continue
            obj = model._default_manager.using(using).create(**row.values)
            created += 1
            if row.legacy:
                write_plaintext(obj, row.values, using=using)
                legacy += 1
    return created, legacy


def write_plaintext(obj: models.Model, values: dict[str, Any], *, using: str) -> None:
    """Overwrite the encrypted columns of ``obj`` with plaintext, bypassing the fields."""
    connection = connections[using]
    quote = connection.ops.quote_name
    columns, params = [], []
    for model_field in encrypted_fields(type(obj)):
        value = values.get(model_field.name)
        if isinstance(model_field, JSONPathEncryptedField):
            # A plain JSONField adapts the document for the backend without encrypting it.
            value = models.JSONField().get_db_prep_save(value, connection)
        columns.append(f"{quote(model_field.column)} = %s")
        params.append(value)
    table = quote(obj._meta.db_table)
    pk = quote(obj._meta.pk.column)  # type: ignore[union-attr]
    sql = f"UPDATE {table} SET {', '.join(columns)} WHERE {pk} = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, obj.pk])
