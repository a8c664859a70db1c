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
from django.conf import settings
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
    """W001 (deploy only): encryption is off in a deployment, and W004 is not saying so.

    W004 already reports an unset key whenever models declare encrypted fields, naming them; under
    ``check --deploy`` W001 would only repeat it. So W001 speaks only where W004 is silent: no
    model declares an encrypted field yet, or a development setting silences W004 and the same
    settings are being deployed.
    """
    key = conf.ENCRYPTION_KEY
    if key is not None and key != "":
        return []
    silenced = "authhero_encrypt.W004" in getattr(settings, "SILENCED_SYSTEM_CHECKS", ())
    if not silenced and check_key_for_encrypted_fields(app_configs):
        return []
    return [
        Warning(
            "ENCRYPTION_KEY is not set in this deployment, so every encrypted field stores its "
            "values in plaintext (W004, which names the fields, is silenced or has none to name).",
            hint=f"{_KEY_HINT}, kept in a secrets manager, and load it from the environment. "
            "Silence authhero_encrypt.W004 only in development settings.",
            id="authhero_encrypt.W001",
        )
    ]


# Strict mode (authhero_encrypt.fields.strict) ---------------------------------------------------


def check_reject_plaintext_setting(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E006: ``ENCRYPTION_REJECT_PLAINTEXT`` is not a bool."""
    value = conf.ENCRYPTION_REJECT_PLAINTEXT
    if isinstance(value, bool):
        return []
    return [
        Error(
            f"ENCRYPTION_REJECT_PLAINTEXT must be True or False, not {type(value).__name__}; "
            "until it is, a true-looking value turns strict mode on.",
            hint="Set it to True once `manage.py encryption_status --check` reports no "
            "plaintext left, and to False (the default, AuthHero's rule) until then.",
            id="authhero_encrypt.E006",
        )
    ]


def check_reject_plaintext_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W005 (deploy only): strict mode is off, so stored plaintext is still read as the value.

    A check must not scan tables, so it cannot know whether plaintext is left: it suggests strict
    mode while it is off and encryption is on, and ``encryption_status`` says when no plaintext
    is left. Fields with ``reject_plaintext=True`` are strict already and are not counted.
    """
    if conf.ENCRYPTION_REJECT_PLAINTEXT is True or not conf.ENCRYPTION_KEY:
        return []  # on, or encryption is off (W001): refusing plaintext would refuse every row
    models = (
        apps.get_models()
        if app_configs is None
        else [model for config in app_configs for model in config.get_models()]
    )
    lax = [
        field
        for model in models
        for field in encrypted_fields(model)
        if getattr(field, "reject_plaintext", None) is not True
    ]
    if not lax:
        return []
    return [
        Warning(
            f"ENCRYPTION_REJECT_PLAINTEXT is off: {len(lax)} encrypted field(s) still read a "
            "stored value without the enc:v1:/env:v1: prefix as the plaintext, so whoever can "
            "write a row around this application (SQL injection, a tampered backup) can plant "
            "a secret of their choosing.",
            hint="Run `manage.py encryption_migrate`; once `manage.py encryption_status "
            "--check` reports no plaintext left, set ENCRYPTION_REJECT_PLAINTEXT = True. "
            "Silence authhero_encrypt.W005 while legacy plaintext must stay readable.",
            id="authhero_encrypt.W005",
        )
    ]
