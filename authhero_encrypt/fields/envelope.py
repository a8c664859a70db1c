"""``EnvelopeEncryptedTextField``: a ``TextField`` sealed under a data key of its own (env:v1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core import checks
from django.views.decorators.debug import sensitive_variables

from authhero_encrypt.conf import conf
from authhero_encrypt.crypto import PREFIX as ENC_V1_PREFIX
from authhero_encrypt.crypto import decrypt_with
from authhero_encrypt.envelope.codec import open_value, seal
from authhero_encrypt.envelope.config import active_provider, provider_named, write_cache
from authhero_encrypt.envelope.format import PREFIX as ENV_PREFIX
from authhero_encrypt.envelope.format import check_context
from authhero_encrypt.exceptions import DecryptionError, EncryptionError, KeyProviderError
from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.deletion import DEFERRED, deleting
from authhero_encrypt.fields.generic import _GT, _ST, TextField
from authhero_encrypt.fields.read_errors import refuse, rewrap, without_frames
from authhero_encrypt.fields.row_context import EnvelopeAttribute, Sealed
from authhero_encrypt.keys import get_keyring
from authhero_encrypt.validators import RefuseCiphertextValidator

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

__all__ = ["AUTHHERO_TABLES", "EnvelopeEncryptedTextField", "shared_with_authhero"]

# AuthHero's own table names (its document "Encryption at Rest"): AuthHero reads these itself and
# does not know the env:v1 format. A column name alone (pkcs7, dkim_private_key) proves nothing:
# a Django project's table is "app_model", which AuthHero never reads, so W301 looks at the
# table only, plus the tables the project declares shared in ENCRYPTION_AUTHHERO_TABLES.
AUTHHERO_TABLES = frozenset(
    {
        "keys",
        "clients",
        "connections",
        "email_providers",
        "authentication_methods",
        "migration_sources",
    }
)


def shared_with_authhero(table: str) -> bool:
    """Whether AuthHero reads ``table``: one of its own names, or one the settings declare."""
    declared = conf.ENCRYPTION_AUTHHERO_TABLES
    if isinstance(declared, str):  # a single name given as a string, not a list
        declared = (declared,)
    return table in AUTHHERO_TABLES or table in {str(name) for name in declared or ()}


def _contextual(source: EncryptionError, error: EncryptionError) -> EncryptionError:
    """``error`` (``source`` with context in front) chained to ``source``, frames dropped.

    A provider error keeps its provider and code. The frames go because error reports print
    every frame's locals, and those below hold the data key or the plaintext being written.
    """
    if isinstance(source, KeyProviderError) and isinstance(error, KeyProviderError):
        error.provider, error.code = source.provider, source.code
    error.__cause__ = source
    return without_frames(error)


class EnvelopeEncryptedTextField(EncryptedFieldMixin, TextField[_ST, _GT]):  # type: ignore[misc]
    """A ``TextField`` for large, rarely read secrets (PEM private keys, PKCS#7 bundles).

    Each value is sealed with AES-256-GCM under a fresh random 256-bit data key, which is wrapped
    by the key-encryption key of ``ENCRYPTION_ENVELOPE_PROVIDER`` (the ``ENCRYPTION_KEY`` ring,
    or an AWS KMS key) and stored beside it as ``env:v1:...`` text. Both the payload and the
    wrapped key are bound to the field's context, ``app_label.model_name.field_name``;
    ``envelope_context`` pins that string, so values stay readable after a model or field is
    renamed (set it to the old context before renaming). ``envelope_context`` may instead be a
    module-level function of the instance (a tenant id, say): each value is then also bound to
    ``"@" + str(function(instance))``, so a value copied to another tenant's row does not open.

    Read as the other encrypted fields are: legacy plaintext as is (refused in strict mode), an
    ``enc:v1`` value (from a column that was an ``EncryptedTextField``) with the key ring; either
    is envelope-encrypted on its next write. AuthHero cannot read ``env:v1`` values. Values typed
    in (forms, APIs) that start with either prefix are refused by its validator.
    """

    description = "Envelope-encrypted text"
    # Both prefixes are refused in what is typed in: this field opens either (see
    # authhero_encrypt.validators).
    default_validators = [RefuseCiphertextValidator()]
    descriptor_class = EnvelopeAttribute

    def __init__(
        self,
        *args: Any,
        envelope_context: str | Callable[[Any], object] | None = None,
        **kwargs: Any,
    ) -> None:
        self.row_context: Callable[[Any], object] | None = None
        if callable(envelope_context):
            self.row_context, envelope_context = envelope_context, None
        elif envelope_context is not None:
            check_context(envelope_context)
        self.envelope_context = envelope_context
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.envelope_context is not None or self.row_context is not None:
            kwargs["envelope_context"] = self.row_context or self.envelope_context
        return name, path, args, kwargs

    @property
    def context(self) -> str:
        """What the stored values are bound to: ``envelope_context`` or the field's label."""
        if self.envelope_context is not None:
            return self.envelope_context
        return f"{self.model._meta.label_lower}.{self.name}"

    def context_for(self, instance: Model) -> str:
        """The context of this field's value in ``instance``'s row."""
        if self.row_context is None:
            return self.context
        part = str(self.row_context(instance))
        if not part or "\x00" in part:
            raise ValueError(
                f"The envelope_context function of {self.label()} returned an empty string or "
                "one with NUL characters."
            )
        return f"{self.context}@{part}"

    def open_for(self, instance: Model, stored: str) -> str:
        """The plaintext of ``stored``, a value of this field in ``instance``'s row."""
        return open_value(provider_named, stored, self.context_for(instance))

    def row_error(self, exc: EncryptionError, instance: Model) -> EncryptionError:
        """``exc`` naming this field and the row's primary key."""
        message = f"Cannot read {self.label()} (primary key {instance.pk!r})"
        return _contextual(exc, rewrap(exc, message))

    @sensitive_variables()
    def pre_save(self, model_instance: Model, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if self.row_context is None or value is None:
            return super().pre_save(model_instance, add)
        try:
            if isinstance(value, Sealed):
                self.open_for(model_instance, value)  # still this row's (the tenant may move)
                return value
            return Sealed(self._store(str(value), self.context_for(model_instance)))
        except EncryptionError as exc:
            message = f"Cannot store {self.label()} (nothing was written)"
            raise _contextual(exc, rewrap(exc, message))  # noqa: B904 - chained in _contextual

    @sensitive_variables()
    def _store(self, value: str, context: str | None = None) -> str:
        context = self.context if context is None else context
        if value.startswith(ENV_PREFIX):
            # Verbatim (a dump loaded back, a value copied in) only once it is shown to open:
            # storing a value nobody can read would lose it silently.
            open_value(provider_named, value, context)
            return value
        if value.startswith(ENC_V1_PREFIX):
            value = decrypt_with(get_keyring(), value)
        provider = active_provider()
        if not provider.enabled():
            return value  # encryption is off (no ENCRYPTION_KEY), as for the other fields
        return seal(provider, value, context, write_cache=write_cache())

    @sensitive_variables()
    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Sealed):
            return str(value)
        value = super().get_prep_value(value)
        if value is None:
            return None
        try:
            if self.row_context is not None:
                raise EncryptionError(
                    "its values are bound to their row (envelope_context is a function), so "
                    "they are written through the instance: save() or bulk_create(), not "
                    "QuerySet.update() or a lookup"
                )
            return self._store(value)
        except EncryptionError as exc:
            message = f"Cannot store {self.label()} (nothing was written)"
            raise _contextual(exc, rewrap(exc, message))  # noqa: B904 - chained in _contextual

    @sensitive_variables()
    def stored_literal(self, value: Any) -> Any:
        # update(pem=Value("...")) and its Case/When form: sealed as save() would seal it,
        # under this field's context.
        return self.get_prep_value(value)

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if value is None:
            return None
        try:
            if value.startswith(ENV_PREFIX):
                if self.row_context is not None:
                    return Sealed(value)  # opened by the attribute, which has the instance
                return open_value(provider_named, value, self.context)
            if value.startswith(ENC_V1_PREFIX):
                return decrypt_with(get_keyring(), value)
        except DecryptionError as exc:
            if deleting():
                return DEFERRED
            return refuse(_contextual(exc, self.read_error(exc, value, connection)))
        if self.refuses_plaintext():
            return refuse(self.plaintext_error(value, connection))
        return value  # legacy plaintext, envelope-encrypted on its next write

    def value_to_string(self, obj: Model) -> Any:
        # Serializers (dumpdata) get the stored form, never the plaintext the instance carries.
        value = self.value_from_object(obj)
        if value is None:
            return None
        if self.row_context is not None:
            return str(self.pre_save(obj, add=False))
        return self.get_prep_value(value)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        table = self.model._meta.db_table
        if shared_with_authhero(table):
            errors.append(
                checks.Warning(
                    f"{table}.{self.column} is in a table AuthHero reads, and AuthHero cannot "
                    "read env:v1 (envelope) values: a database shared with AuthHero would break "
                    "its reads of this column.",
                    hint="Use EncryptedTextField (enc:v1) for columns AuthHero reads, or, if "
                    "AuthHero does not use this table, remove it from ENCRYPTION_AUTHHERO_TABLES "
                    "(or silence authhero_encrypt.W301).",
                    obj=self,
                    id="authhero_encrypt.W301",
                )
            )
        return errors
