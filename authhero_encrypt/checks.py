"""System checks for the key settings.

A project with a malformed key must fail ``manage.py check`` (and so ``runserver``, ``migrate``
and the test runner) instead of starting and writing data it could not read back later. An unset
key stays valid (encryption is off, as in AuthHero), but is reported when models declare
encrypted fields (W004), since their values are then stored in plaintext and any stored
ciphertext cannot be read.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, Warning
from django.views.decorators.debug import sensitive_variables

from authhero_encrypt.conf import conf
from authhero_encrypt.exceptions import InvalidKeyError
from authhero_encrypt.inventory import encrypted_fields, is_envelope_field
from authhero_encrypt.keys import (
    Key,
    KeyRing,
    fallback_entries,
    load_encryption_key,
    parse_fallback,
    parse_key_id,
    parse_pad_payload,
    uses_urlsafe_alphabet,
)

_KEY_HINT = "Set it to the output of: openssl rand -base64 32"


@sensitive_variables()
def check_key_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001-E005 for malformed settings; W002 for keys set but unused; W003 for a url-safe key."""
    errors: list[CheckMessage] = []
    key, key_id, fallbacks = (
        conf.ENCRYPTION_KEY,
        conf.ENCRYPTION_KEY_ID,
        conf.ENCRYPTION_KEY_FALLBACKS,
    )
    keys: list[Key] = []
    active_id: str | None = None
    try:
        active_id = parse_key_id(key_id)
    except InvalidKeyError as exc:
        errors.append(
            Error(
                str(exc),
                hint='For example: ENCRYPTION_KEY_ID = "2026-11"',
                id="authhero_encrypt.E002",
            )
        )
    if key is not None and key != "":
        try:
            keys.append(Key.from_secret(active_id, load_encryption_key(key)))
        except InvalidKeyError as exc:
            errors.append(Error(str(exc), hint=_KEY_HINT, id="authhero_encrypt.E001"))
        else:
            if uses_urlsafe_alphabet(key):
                errors.append(
                    Warning(
                        "ENCRYPTION_KEY is written in the url-safe base64 alphabet ('-' or '_'). "
                        "It works here, but AuthHero's key loader refuses it: an AuthHero "
                        "sharing this database cannot start with the same key text.",
                        hint="Use the standard spelling of the same key in both places: replace "
                        "'-' with '+' and '_' with '/'. The key bytes, and so every stored "
                        "value, stay the same.",
                        id="authhero_encrypt.W003",
                    )
                )
    try:
        entries = fallback_entries(fallbacks)
    except InvalidKeyError as exc:
        errors.append(Error(str(exc), id="authhero_encrypt.E003"))
        entries = []
    for index, entry in enumerate(entries):
        try:
            keys.append(Key.from_secret(*parse_fallback(entry, index)))
        except InvalidKeyError as exc:
            errors.append(
                Error(
                    str(exc),
                    hint='Each item is "BASE64KEY" or "KEYID:BASE64KEY".',
                    id="authhero_encrypt.E003",
                )
            )
    try:
        KeyRing.from_keys(None, keys)
    except InvalidKeyError as exc:
        errors.append(Error(str(exc), id="authhero_encrypt.E004"))
    if (key is None or key == "") and (entries or active_id):
        errors.append(
            Warning(
                "ENCRYPTION_KEY_ID or ENCRYPTION_KEY_FALLBACKS is set but ENCRYPTION_KEY is not, "
                "so new values are stored in plaintext.",
                hint="Set ENCRYPTION_KEY, or remove the other key settings.",
                id="authhero_encrypt.W002",
            )
        )
    try:
        parse_pad_payload(conf.ENCRYPTION_PAD_PAYLOAD)
    except InvalidKeyError as exc:
        errors.append(Error(str(exc), id="authhero_encrypt.E005"))
    return errors


def check_key_for_encrypted_fields(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W004: encrypted fields are declared but ENCRYPTION_KEY is not set."""
    key = conf.ENCRYPTION_KEY
    if key is not None and key != "":
        return []
    models = (
        apps.get_models()
        if app_configs is None
        else [model for config in app_configs for model in config.get_models()]
    )
    # Envelope fields wrapped by another provider (AWS KMS, Vault) need no ENCRYPTION_KEY;
    # with "local" they do.
    kms = conf.ENCRYPTION_ENVELOPE_PROVIDER != "local"
    names = [
        f"{model._meta.label}.{field.name}"
        for model in models
        for field in encrypted_fields(model)
        if not (kms and is_envelope_field(field))
    ]
    if not names:
        return []
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return [
        Warning(
            f"ENCRYPTION_KEY is not set, but {len(names)} model field(s) are encrypted fields "
            f"({shown}): new values are stored in plaintext, and values already stored "
            "encrypted (enc:v1:) cannot be read.",
            hint=f"{_KEY_HINT}, or to the key that wrote the stored values. If running without "
            "encryption is intended (a development setup), add 'authhero_encrypt.W004' to "
            "SILENCED_SYSTEM_CHECKS.",
            id="authhero_encrypt.W004",
        )
    ]


def check_encryption_enabled(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W001 (deploy only): encryption is off, so secrets are stored in plaintext."""
    key = conf.ENCRYPTION_KEY
    if key is None or key == "":
        return [
            Warning(
                "ENCRYPTION_KEY is not set: encrypted fields store their values in plaintext.",
                hint=f"{_KEY_HINT}, kept in a secrets manager, and load it from the environment.",
                id="authhero_encrypt.W001",
            )
        ]
    return []
