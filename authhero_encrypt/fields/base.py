"""What every encrypted field shares: the storage rule, error context and refused lookups."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core import checks
from django.core.exceptions import FieldError
from django.db.models.lookups import Exact
from django.utils.functional import cached_property

from authhero_encrypt import keys
from authhero_encrypt.crypto import PREFIX, decrypt_with, encrypt_value
from authhero_encrypt.exceptions import (
    DecryptionError,
    EncryptionError,
    InvalidKeyError,
    MissingKeyError,
)
from authhero_encrypt.fields.deletion import DEFERRED, deleting
from authhero_encrypt.fields.entry_points import (
    _IN_BULK,
    _RESOLVE_NAME,
    entry_point_error,
    refuse_date_listing,
)
from authhero_encrypt.fields.expressions import EncryptedCol
from authhero_encrypt.fields.model_checks import declaration_errors
from authhero_encrypt.fields.read_errors import (
    EncryptedAttribute,
    like_escape,
    primary_keys_holding,
    raise_refused,
    refuse,
    rewrap,
)
from authhero_encrypt.fields.refused import refused_lookup, refused_transform
from authhero_encrypt.fields.strict import check_reject_plaintext, rejects_plaintext
from authhero_encrypt.fields.writes import WriteExpressionsMixin
from authhero_encrypt.keys import KeyRing, get_keyring
from authhero_encrypt.validators import RefuseCiphertextValidator

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

PUBLIC_MODULE = "authhero_encrypt.fields"
# The lookups a blind index may answer (blind_index.lookups.INDEXED_LOOKUPS; a test checks).
_INDEXED_LOOKUPS = frozenset({"exact", "iexact", "in"})


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


class NullOnlyExact(Exact):
    """``field=None``, which Django rewrites to ``isnull``; any other right-hand side is refused.

    Django asks for ``exact`` before it sees that the value is ``None``, so refusing ``exact``
    outright would also refuse ``filter(secret=None)`` and ``exclude(secret=None)``.
    """

    def get_prep_lookup(self) -> Any:
        if self.rhs is not None:
            raise self.lhs.output_field.refused(self.lookup_name)
        return super().get_prep_lookup()


class EncryptedFieldMixin(WriteExpressionsMixin):
    """Shared behaviour of the encrypted model fields.

    Lookups are refused: the stored text is randomised ciphertext, so ``exact``, ``contains`` and
    the rest would silently match nothing. Only ``isnull`` tells the truth and is kept. Writes of
    expressions are sealed or refused (:mod:`~authhero_encrypt.fields.writes`); a refused stored
    value never reaches an error report (:mod:`~authhero_encrypt.fields.read_errors`).
    """

    descriptor_class = EncryptedAttribute

    if TYPE_CHECKING:
        model: type[Model]
        name: str
        attname: str
        column: str
        _unique: bool
        db_index: bool
        primary_key: bool

    def __init__(self, *args: Any, reject_plaintext: bool | None = None, **kwargs: Any) -> None:
        # None follows ENCRYPTION_REJECT_PLAINTEXT (see authhero_encrypt.fields.strict).
        self.reject_plaintext = check_reject_plaintext(reject_plaintext)
        super().__init__(*args, **kwargs)

    def label(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    @property
    def unique(self) -> bool:
        if sys._getframe(1).f_code is _IN_BULK:
            raise entry_point_error(self, "in_bulk(field_name=...)")
        return self._unique or self.primary_key

    # Expressions ---------------------------------------------------------------------------
    # Every reference Django makes to the column goes through get_col(); the column it hands
    # back refuses to be compiled where SQL would compute on ciphertext (see expressions.py).

    def get_col(self, alias: str, output_field: Any = None) -> Any:
        if sys._getframe(1).f_code is _RESOLVE_NAME:
            refuse_date_listing(self, sys._getframe(2))
        if alias == self.model._meta.db_table and (output_field is None or output_field is self):
            return self.cached_col
        return EncryptedCol(alias, self, output_field)  # type: ignore[arg-type]

    @cached_property
    def cached_col(self) -> EncryptedCol:
        return EncryptedCol(self.model._meta.db_table, self)  # type: ignore[arg-type]

    def path_kind(self, path: tuple[str, ...]) -> str:
        """How a JSON key path relates to the secrets: ``secret``, ``holds`` or ``plain``."""
        return "secret"

    def allows_owner(self, owner: Any, path: tuple[str, ...]) -> bool:
        """Whether ``owner``, an expression or lookup using the column, is safe on ciphertext."""
        return False

    def expression_error(self, problem: str, path: tuple[str, ...] = ()) -> FieldError:
        where = self.label() + (f" key '{'.'.join(path)}'" if path else "")
        return FieldError(
            f"{where} is encrypted at rest, so it cannot be used in {problem}: the database "
            "only sees ciphertext, so the answer would be about the ciphertext. Select the field "
            "itself (values(), only(), instances) and work on the plaintext in Python."
        )

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)  # type: ignore[misc]
        if lookup_name in _INDEXED_LOOKUPS:
            # Equality through a blind index over this field (authhero_encrypt.blind_index,
            # imported here: it imports the fields, so importing it first would be a cycle).
            from authhero_encrypt.blind_index.lookups import indexed_lookup

            indexed = indexed_lookup(self, lookup_name)
            if indexed is not None:
                return indexed
        if lookup_name == "exact":
            return NullOnlyExact
        # A class, as Django's convention has it; building it (filter()) raises the refusal.
        return refused_lookup(lookup_name, self.refused(lookup_name))

    def refused(self, lookup_name: str) -> FieldError:
        return FieldError(
            f"{self.label()} is encrypted at rest, so it cannot be filtered with "
            f"'{lookup_name}': the database only sees ciphertext. Filter on another field, "
            "or load the rows and compare in Python."
        )

    def get_transform(self, lookup_name: str) -> Any:
        # No transform is meaningful either, and ``isnull`` is a lookup, not a transform: handing
        # it back here would crash ``token__isnull__exact`` with a TypeError.
        return refused_transform(lookup_name, self.refused(lookup_name))

    def read_error(
        self,
        exc: DecryptionError,
        stored: str,
        connection: BaseDatabaseWrapper,
        where: str = "",
        pattern: str | None = None,
    ) -> EncryptionError:
        """``exc`` with the field and the rows holding ``stored`` (or matching ``pattern``)."""
        if pattern is None:
            pattern = f"%{like_escape(stored)}%"
        pks = primary_keys_holding(self.model, self.column, pattern, connection)
        rows = ", ".join(repr(pk) for pk in pks) if pks else "unknown"
        return rewrap(exc, f"Cannot read {self.label()}{where} (primary key {rows})")

    def get_db_converters(self, connection: BaseDatabaseWrapper) -> list[Callable[..., Any]]:
        # from_db_value returns a refusal (a Refused marker) instead of raising when Django calls
        # it as a converter; the converter after it raises, away from the stored text.
        return [*super().get_db_converters(connection), raise_refused]  # type: ignore[misc]

    def refuses_plaintext(self) -> bool:
        """Whether a stored value without a ciphertext prefix is refused now (strict mode)."""
        return rejects_plaintext(self.reject_plaintext)

    def plaintext_error(
        self,
        stored: str,
        connection: BaseDatabaseWrapper,
        where: str = "",
        pattern: str | None = None,
    ) -> EncryptionError:
        """Strict mode's refusal of the stored plaintext ``stored``; the value is never named.

        The rows are found by ``pattern`` (LIKE), by default the whole column equal to
        ``stored``; plaintext, unlike ciphertext, need not be unique, so every row holding it may
        be named, and each of them is refused alike.
        """
        exc = DecryptionError(
            "the stored value is not ciphertext (it has no enc:v1: or env:v1: prefix), and "
            "strict mode refuses plaintext (ENCRYPTION_REJECT_PLAINTEXT, or the field's "
            "reject_plaintext). Legacy plaintext is encrypted by `manage.py encryption_migrate`; "
            "a value nobody left behind was written around this application."
        )
        if pattern is None:
            pattern = like_escape(stored)
        return self.read_error(exc, stored, connection, where, pattern)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors: list[checks.CheckMessage] = [*super().check(**kwargs)]  # type: ignore[misc]
        # ``unique`` is read as set, not as the property: a primary key is unique by implication,
        # and E103 alone says what to change.
        index = f'{self.name}_index = BlindIndexField("{self.name}"'
        refused = (
            ("unique", self._unique, "E101", "a unique constraint", f"{index}, unique=True)"),
            ("db_index", self.db_index, "E102", "an index", f"{index})"),
            ("primary_key", self.primary_key, "E103", "a primary key", ""),
        )
        for attribute, is_set, code, what, instead in refused:
            if is_set:
                hint = f"Remove {attribute}=True, or keep this value in a plaintext field."
                if instead:
                    hint = (
                        f"Remove {attribute}=True and declare a blind index beside the field, "
                        f"{instead} (authhero_encrypt.blind_index; docs/blind_index.md)."
                    )
                errors.append(
                    checks.Error(
                        f"{attribute}=True on an encrypted field would build {what} over "
                        "random ciphertext, which never matches equal plaintexts.",
                        hint=hint,
                        obj=self,
                        id=f"authhero_encrypt.{code}",
                    )
                )
        errors.extend(self._check_ordering())
        errors.extend(declaration_errors(self))
        return errors

    def _check_ordering(self) -> list[checks.CheckMessage]:
        # Meta.ordering applies to every query of the model, so it would fail at run time on
        # the first list; say so when the project starts instead.
        errors: list[checks.CheckMessage] = []
        for item in self.model._meta.ordering or ():
            name = getattr(getattr(item, "expression", item), "name", item)
            if not isinstance(name, str):
                continue
            first, *path = name.lstrip("-+").split("__")
            if first not in (self.name, self.attname):
                continue
            if path and self.path_kind(tuple(path)) == "plain":
                continue
            errors.append(
                checks.Error(
                    f"Meta.ordering sorts {self.model._meta.label} by '{name.lstrip('-+')}', "
                    "which is encrypted at rest: the database would sort ciphertext, so every "
                    "query of the model is refused.",
                    hint="Order by a plaintext field (or a plaintext JSON key).",
                    obj=self,
                    id="authhero_encrypt.E105",
                )
            )
        return errors

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()  # type: ignore[misc]
        if self.reject_plaintext is not None:
            kwargs["reject_plaintext"] = self.reject_plaintext
        # Migrations import the public path, so moving code between our modules never breaks them.
        if type(self).__module__.startswith(PUBLIC_MODULE + "."):
            path = f"{PUBLIC_MODULE}.{type(self).__name__}"
        return name, path, args, kwargs

    def write_error(self, exc: EncryptionError) -> EncryptionError:
        if isinstance(exc, InvalidKeyError):
            return rewrap(exc, f"Cannot store {self.label()}: the key settings are invalid")
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

    def stored_literal(self, value: Any) -> Any:
        return self.get_prep_value(value)

    # Every door that validates (full_clean, ModelForm, DRF, import-export) refuses pasted
    # ciphertext: see authhero_encrypt.validators. Not serialized into migrations.
    default_validators = [RefuseCiphertextValidator()]

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if value is None:
            return None
        if not value.startswith(PREFIX):
            if self.refuses_plaintext():
                return refuse(self.plaintext_error(value, connection))
            return value  # legacy plaintext, encrypted on its next write
        try:
            # The cached ring read directly: a call per row saved on the read hot path.
            return decrypt_with(keys.current_keyring or get_keyring(), value)
        except DecryptionError as exc:
            if deleting():
                return DEFERRED
            return refuse(self.read_error(exc, value, connection), exc)

    def value_to_string(self, obj: Model) -> Any:
        # Serializers (dumpdata) get the stored form: a dump is one of the leaks this defends
        # against, so it must hold ciphertext, never the plaintext the instance carries.
        value = self.value_from_object(obj)  # type: ignore[attr-defined]
        return None if value is None else self.get_prep_value(value)
