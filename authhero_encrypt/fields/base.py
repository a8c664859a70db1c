"""What every encrypted field shares: the storage rule, error context and refused lookups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core import checks
from django.core.exceptions import FieldError
from django.db import DatabaseError, transaction
from django.db.models.lookups import Exact

from authhero_encrypt import keys
from authhero_encrypt.crypto import PREFIX, decrypt_with, encrypt_value
from authhero_encrypt.exceptions import DecryptionError, EncryptionError, MissingKeyError
from authhero_encrypt.keys import KeyRing, get_keyring

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

PUBLIC_MODULE = "authhero_encrypt.fields"
_MAX_PKS_NAMED = 3


def store(ring: KeyRing, value: str) -> str:
    """The text to write for ``value``: the one storage rule every encrypted field follows.

    A value that already carries the prefix is written verbatim, so nothing is encrypted twice
    and a ciphertext dump loads back as is, but only once it has been shown to decrypt under a
    configured key: storing a value nobody can read would lose it silently. Otherwise the value
    is encrypted when a key is active, and stored as plaintext when encryption is off.
    """
    if value.startswith(PREFIX):
        decrypt_with(ring, value)
        return value
    if ring.active is None:
        return value
    return encrypt_value(value, ring)


def rewrap(exc: EncryptionError, context: str) -> EncryptionError:
    """The same kind of error as ``exc`` with ``context`` in front, for raising ``from exc``."""
    message = f"{context}: {exc}"
    if isinstance(exc, DecryptionError):
        return type(exc)(message, key_id=exc.key_id)
    return type(exc)(message)


def without_frames(exc: EncryptionError) -> EncryptionError:
    """``exc`` with the tracebacks of it and its causes dropped; the messages and chain stay.

    For errors whose frames hold decrypted values: error reports (Django's technical 500 page,
    ``AdminEmailHandler``) print the locals of every frame of every exception in the chain.
    """
    current: BaseException | None = exc
    while current is not None:
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return exc


def primary_keys_holding(
    model: type[Model], column: str, pattern: str, connection: BaseDatabaseWrapper
) -> list[Any]:
    """Primary keys of rows whose ``column`` matches the LIKE ``pattern``; a best effort.

    Only called on the error path, to name the rows an undecryptable value came from: the
    converter that meets the value is never told the row. Each ciphertext has its own random IV,
    so it picks out its row. Runs in a savepoint and swallows database errors, so looking for
    context can never break the caller's transaction.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)  # type: ignore[arg-type]
    col = connection.ops.quote_name(column)
    if connection.vendor == "postgresql":
        col = f"CAST({col} AS text)"
    # SQLite's LIKE has no escape character unless told, and base64url is full of '_'.
    sql = f"SELECT {pk} FROM {table} WHERE {col} LIKE %s ESCAPE %s ORDER BY {pk}"  # noqa: S608
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(sql, [pattern, "\\"])
            return [row[0] for row in cursor.fetchmany(_MAX_PKS_NAMED)]
    except DatabaseError:
        return []


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class NullOnlyExact(Exact):
    """``field=None``, which Django rewrites to ``isnull``; any other right-hand side is refused.

    Django asks for ``exact`` before it sees that the value is ``None``, so refusing ``exact``
    outright would also refuse ``filter(secret=None)`` and ``exclude(secret=None)``.
    """

    def get_prep_lookup(self) -> Any:
        if self.rhs is not None:
            raise self.lhs.output_field.refused(self.lookup_name)
        return super().get_prep_lookup()


class EncryptedFieldMixin:
    """Shared behaviour of the encrypted model fields.

    Lookups are refused: the stored text is randomised ciphertext, so ``exact``, ``contains`` and
    the rest would silently match nothing. Only ``isnull`` tells the truth and is kept.
    """

    if TYPE_CHECKING:
        model: type[Model]
        name: str
        column: str
        _unique: bool
        db_index: bool
        primary_key: bool

    def label(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)  # type: ignore[misc]
        if lookup_name == "exact":
            return NullOnlyExact
        raise self.refused(lookup_name)

    def refused(self, lookup_name: str) -> FieldError:
        return FieldError(
            f"{self.label()} is encrypted at rest, so it cannot be filtered with "
            f"'{lookup_name}': the database only sees ciphertext. Filter on another field, "
            "or load the rows and compare in Python."
        )

    def get_transform(self, lookup_name: str) -> Any:
        # No transform is meaningful either, and ``isnull`` is a lookup, not a transform: handing
        # it back here would crash ``token__isnull__exact`` with a TypeError.
        raise self.refused(lookup_name)

    def read_error(
        self, exc: DecryptionError, stored: str, connection: BaseDatabaseWrapper, where: str = ""
    ) -> EncryptionError:
        pks = primary_keys_holding(self.model, self.column, f"%{like_escape(stored)}%", connection)
        rows = ", ".join(repr(pk) for pk in pks) if pks else "unknown"
        return rewrap(exc, f"Cannot read {self.label()}{where} (primary key {rows})")

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors: list[checks.CheckMessage] = [*super().check(**kwargs)]  # type: ignore[misc]
        # ``unique`` is read as set, not as the property: a primary key is unique by implication,
        # and E103 alone says what to change.
        refused = (
            ("unique", self._unique, "E101", "a unique constraint"),
            ("db_index", self.db_index, "E102", "an index"),
            ("primary_key", self.primary_key, "E103", "a primary key"),
        )
        for attribute, is_set, code, what in refused:
            if is_set:
                errors.append(
                    checks.Error(
                        f"{attribute}=True on an encrypted field would build {what} over "
                        "random ciphertext, which never matches equal plaintexts.",
                        hint=f"Remove {attribute}=True, or keep this value in a plaintext field.",
                        obj=self,
                        id=f"authhero_encrypt.{code}",
                    )
                )
        return errors

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()  # type: ignore[misc]
        # Migrations import the public path, so moving code between our modules never breaks them.
        if type(self).__module__.startswith(PUBLIC_MODULE + "."):
            path = f"{PUBLIC_MODULE}.{type(self).__name__}"
        return name, path, args, kwargs

    def write_error(self, exc: EncryptionError) -> EncryptionError:
        if isinstance(exc, MissingKeyError):
            return rewrap(exc, f"Refusing to store an enc:v1: value in {self.label()}")
        return rewrap(
            exc,
            f"Refusing to store an enc:v1: value in {self.label()} that no configured key "
            "decrypts (nothing was written)",
        )


class EncryptedStringMixin(EncryptedFieldMixin):
    """Encrypt a whole string column: the shared part of the char and text fields."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)  # type: ignore[misc]
        if value is None:
            return None
        try:
            return store(get_keyring(), value)
        except EncryptionError as exc:
            raise self.write_error(exc) from exc

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if value is None or not value.startswith(PREFIX):
            return value  # SQL NULL, or legacy plaintext that is encrypted on its next write
        try:
            # The cached ring read directly: a call per row saved on the read hot path.
            return decrypt_with(keys.current_keyring or get_keyring(), value)
        except DecryptionError as exc:
            raise self.read_error(exc, value, connection) from exc

    def value_to_string(self, obj: Model) -> Any:
        # Serializers (dumpdata) get the stored form: a dump is one of the leaks this defends
        # against, so it must hold ciphertext, never the plaintext the instance carries.
        value = self.value_from_object(obj)  # type: ignore[attr-defined]
        return None if value is None else self.get_prep_value(value)
