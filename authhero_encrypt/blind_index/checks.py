"""System checks for blind indexes: the index key settings (E401-E403), each declared index
(E410-E412), its uniqueness (E420, W421) and a table AuthHero writes (W430)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core import checks
from django.core.checks import CheckMessage, Error
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.views.decorators.debug import sensitive_variables

from authhero_encrypt.blind_index.keys import build_index_keyring
from authhero_encrypt.conf import conf
from authhero_encrypt.exceptions import InvalidKeyError
from authhero_encrypt.keys import fallback_entries, load_encryption_key, parse_fallback

if TYPE_CHECKING:
    from authhero_encrypt.blind_index.field import BlindIndexField

__all__ = ["check_index_key_settings", "index_field_errors", "index_usage_errors"]

_KEY_HINT = "Generate a key of its own: openssl rand -base64 32"


def declared_indexes() -> list[BlindIndexField]:
    from authhero_encrypt.blind_index.field import BlindIndexField, PreviousIndexField

    return [
        field
        for model in apps.get_models()
        for field in model._meta.local_concrete_fields
        if isinstance(field, BlindIndexField) and not isinstance(field, PreviousIndexField)
    ]


@sensitive_variables()
def _encryption_secrets() -> list[bytes]:
    """The bytes of every configured encryption key that parses (E001-E003 report the rest)."""
    found = []
    if conf.ENCRYPTION_KEY:
        with contextlib.suppress(InvalidKeyError):
            found.append(load_encryption_key(conf.ENCRYPTION_KEY))
    try:
        entries = fallback_entries(conf.ENCRYPTION_KEY_FALLBACKS)
    except InvalidKeyError:
        entries = []
    for index, entry in enumerate(entries):
        with contextlib.suppress(InvalidKeyError):
            found.append(parse_fallback(entry, index)[1])
    return found


@sensitive_variables()
def check_index_key_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E401 malformed index key settings, E402 an index key that is also an encryption key, E403
    blind indexes declared while encryption is on and no index key is set."""
    try:
        ring = build_index_keyring(
            conf.ENCRYPTION_INDEX_KEY,
            conf.ENCRYPTION_INDEX_KEY_ID,
            conf.ENCRYPTION_INDEX_KEY_FALLBACKS,
        )
    except InvalidKeyError as exc:
        return [Error(str(exc), hint=_KEY_HINT, id="authhero_encrypt.E401")]
    errors: list[CheckMessage] = []
    encryption = _encryption_secrets()
    for key in ring.keys:
        if key.secret in encryption:
            errors.append(
                Error(
                    f"The blind index key {key.id!r} is also an encryption key. A tag is a "
                    "deterministic function of the plaintext, so a key that makes tags must "
                    "never also encrypt.",
                    hint=_KEY_HINT,
                    id="authhero_encrypt.E402",
                )
            )
    if ring.active is None and conf.ENCRYPTION_KEY and declared_indexes():
        names = ", ".join(index.label() for index in declared_indexes()[:3])
        errors.append(
            Error(
                f"Encryption is on and blind indexes are declared ({names}), but "
                "ENCRYPTION_INDEX_KEY is not set: their tags cannot be computed, so every write "
                "of an indexed field would fail.",
                hint=_KEY_HINT,
                id="authhero_encrypt.E403",
            )
        )
    return errors


def index_field_errors(field: BlindIndexField) -> list[CheckMessage]:
    """E410 a source that is not an encrypted field of the model, E411 a JSON path that is not
    a secret path of its field, E412 a source declared on another model (an ancestor)."""
    from authhero_encrypt.blind_index.field import PreviousIndexField
    from authhero_encrypt.fields import JSONPathEncryptedField
    from authhero_encrypt.fields.base import EncryptedStringMixin

    if isinstance(field, PreviousIndexField):
        return []
    source: Any
    try:
        source = field.model._meta.get_field(field.source_name)
    except FieldDoesNotExist:
        source = None
    scalar = isinstance(source, EncryptedStringMixin)
    document = isinstance(source, JSONPathEncryptedField)
    if source is None or not (scalar or document) or (scalar and field.source_path):
        return [
            Error(
                f"{field.label()} indexes {field.source!r}, which is not an EncryptedCharField, "
                "an EncryptedTextField or a secret path of a JSONPathEncryptedField of "
                f"{field.model._meta.label}.",
                hint="Name the encrypted field (e.g. 'email') or a JSON secret path "
                "('options__client_secret').",
                obj=field,
                id="authhero_encrypt.E410",
            )
        ]
    errors: list[CheckMessage] = []
    if document and (not field.source_path or source.path_kind(field.source_path) != "secret"):
        errors.append(
            Error(
                f"{field.label()} indexes {field.source!r}, which is not a secret path of "
                f"{source.label()}: a blind index is only needed for encrypted values.",
                hint="Name one of its encrypted_paths, or filter the plaintext key directly.",
                obj=field,
                id="authhero_encrypt.E411",
            )
        )
    if source.model is not field.model:
        errors.append(
            Error(
                f"{field.label()} indexes {source.label()}, a field of another table: the tag "
                "must live in the same table as the value it is computed from.",
                hint=f"Declare the index on {source.model._meta.label}.",
                obj=field,
                id="authhero_encrypt.E412",
            )
        )
    return errors


def index_usage_errors(field: BlindIndexField) -> list[CheckMessage]:
    """E420 ``unique_with`` naming what is not a plaintext field of the model, W421 a
    hand-made ``UniqueConstraint`` over an index (not kept through a key change-over), W430 an
    index in a table AuthHero writes (its rows carry no tag)."""
    from authhero_encrypt.blind_index.field import PreviousIndexField

    if isinstance(field, PreviousIndexField):
        return []
    return [*_unique_with_errors(field), *_constraint_warnings(field), *_authhero_warnings(field)]


def _unique_with_errors(field: BlindIndexField) -> list[CheckMessage]:
    from authhero_encrypt.fields.base import EncryptedFieldMixin

    errors: list[CheckMessage] = []
    for name in field.unique_with:
        try:
            other: Any = field.model._meta.get_field(name)
        except FieldDoesNotExist:
            other = None
        if other is not None and other.concrete and not isinstance(other, EncryptedFieldMixin):
            continue
        errors.append(
            Error(
                f"{field.label()} has unique_with {name!r}, which is not a plaintext field of "
                f"{field.model._meta.label}: the database can only compare plaintext columns "
                "beside the tag.",
                hint="Name plaintext fields (a tenant foreign key, a code); to scope by an "
                "encrypted value, give that value a blind index of its own.",
                obj=field,
                id="authhero_encrypt.E420",
            )
        )
    return errors


def _constraint_warnings(field: BlindIndexField) -> list[CheckMessage]:
    from authhero_encrypt.blind_index.uniqueness import constraint_name

    previous = f"{field.name}_previous"
    own = constraint_name(field.model, field.name) if field.unique_with else None
    meta = field.model._meta
    declared = [
        (f"UniqueConstraint '{constraint.name}'", set(constraint.fields))
        for constraint in meta.constraints
        if isinstance(constraint, models.UniqueConstraint) and constraint.name != own
    ]
    declared += [
        (f"unique_together {tuple(names)!r}", set(names)) for names in meta.unique_together
    ]
    errors: list[CheckMessage] = []
    for what, names in declared:
        if field.name not in names or previous in names:
            continue
        errors.append(
            checks.Warning(
                f"{what} covers the blind index {field.label()} "
                f"but not {previous}: while the index key changes, rows hold tags under two "
                "keys, so two equal values can pass it.",
                hint=f"Declare the index with unique_with={tuple(sorted(names - {field.name}))!r} "
                "(or unique=True) instead: its constraints cover the previous-key column too.",
                obj=field,
                id="authhero_encrypt.W421",
            )
        )
    return errors


def _authhero_warnings(field: BlindIndexField) -> list[CheckMessage]:
    from authhero_encrypt.fields.envelope import shared_with_authhero

    table = field.model._meta.db_table
    if not shared_with_authhero(table):
        return []
    return [
        checks.Warning(
            f"{field.label()} is a blind index in {table}, a table AuthHero writes: AuthHero "
            "computes no tags, so the rows it creates or changes are found only by their "
            "stored plaintext, and a unique index does not see them until their tags are filled.",
            hint="Run `manage.py encryption_migrate` after AuthHero writes (it fills missing "
            "tags); see 'AuthHero writes no tags' in docs/blind_index.md.",
            obj=field,
            id="authhero_encrypt.W430",
        )
    ]


def register() -> None:
    checks.register(check_index_key_settings, checks.Tags.security)
