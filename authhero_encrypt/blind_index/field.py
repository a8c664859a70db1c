"""``BlindIndexField``: a companion column holding a keyed tag of an encrypted field's plaintext.

``enc:v1:`` ciphertext is randomised (AuthHero reads it, and must), so the database can never
compare two of them. A blind index stores, next to the encrypted column, a tag computed from the
normalized plaintext under a key of its own (:mod:`authhero_encrypt.blind_index.tags`): equal
values have equal tags, so equality lookups and unique constraints run on the tag column, while
the database still never sees the plaintext.

Key rotation without a gap in uniqueness: an index with ``unique=True`` has two columns. The
declared one holds the tag under the active index key; a second one, ``<name>_previous``, added
to the model (and so to its migrations), holds the tag under the *oldest* configured key. With a
single key both hold the same tag. When a new key becomes active and the old one stays listed in
``ENCRYPTION_INDEX_KEY_FALLBACKS``, every row, old or new, still has its old-key tag in the
previous column, so its unique constraint covers the whole table while ``encryption_migrate``
moves the declared column to the new key; once the old key is retired the declared column, now
all new-key tags, covers it while the previous column catches up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.core import checks
from django.db import models
from django.utils.functional import cached_property

from authhero_encrypt.blind_index import uniqueness
from authhero_encrypt.blind_index.keys import IndexKey, IndexKeyRing, get_index_keyring
from authhero_encrypt.blind_index.normalizers import (
    Normalizer,
    NormalizerSpec,
    as_specs,
    compose,
    folds_case,
    resolve,
)
from authhero_encrypt.blind_index.tags import FULL_BITS, TAG_MAX_LENGTH, compute_tag
from authhero_encrypt.crypto import PREFIX, decrypt_with
from authhero_encrypt.exceptions import MissingKeyError
from authhero_encrypt.fields.generic import CharField
from authhero_encrypt.keys import get_keyring

if TYPE_CHECKING:
    from django.db.models import Model

__all__ = ["BlindIndexField", "PreviousIndexField", "indexes_of"]

PUBLIC_MODULE = "authhero_encrypt.blind_index"
# Truncated tags (fewer bits) make false positives likely enough to matter; a unique index
# cannot have them, a plain one removes them after decryption.
MIN_UNTRUNCATED_BITS = 128
SLOW_ITERATIONS = 50_000
_TAG_MEMO = "_authhero_encrypt_tags"


class BlindIndexField(CharField[Any, Any]):
    """A searchable, rotatable tag of ``source`` (an encrypted field, or a JSON secret path).

    ``source`` names an ``EncryptedCharField``/``EncryptedTextField`` of the same model, or a
    secret path of a ``JSONPathEncryptedField`` as ``"options__client_secret"``. ``normalize``
    names what is done to a value before it is tagged (see
    :mod:`authhero_encrypt.blind_index.normalizers`). ``unique=True`` makes the plaintexts
    unique; ``unique_with=("tenant",)`` makes them unique per value of those plaintext fields
    (see :mod:`authhero_encrypt.blind_index.uniqueness`). ``bits`` below 128 truncates the tag
    (plain indexes only); ``slow=True`` (or a number of PBKDF2 iterations) makes each tag
    expensive, for low-entropy values.
    """

    description = "Blind index of %(source)s"
    generation = "active"

    def __init__(
        self,
        source: str,
        *,
        normalize: NormalizerSpec | Sequence[NormalizerSpec] | None = None,
        unique: bool = False,
        unique_with: Sequence[str] = (),
        bits: int = FULL_BITS,
        slow: bool | int = False,
        **kwargs: Any,
    ) -> None:
        if not isinstance(source, str) or not source or source.startswith("_"):
            raise ValueError("BlindIndexField's source must name a field, e.g. 'email'.")
        self.source = source
        self.normalize_specs = as_specs(normalize)
        self.normalizers: tuple[Normalizer, ...] = resolve(self.normalize_specs)
        self.normalize = compose(self.normalizers)
        if isinstance(bits, bool) or not isinstance(bits, int) or bits % 8 or not 32 <= bits <= 256:
            raise ValueError("bits must be a multiple of 8 from 32 to 256.")
        self.unique_with = _unique_with(unique_with, unique)
        if (unique or self.unique_with) and bits < MIN_UNTRUNCATED_BITS:
            raise ValueError(
                f"A unique blind index cannot be truncated below {MIN_UNTRUNCATED_BITS} bits: "
                "false positives would refuse distinct values as duplicates."
            )
        self.bits = bits
        if isinstance(slow, bool):
            slow = SLOW_ITERATIONS if slow else 0
        if not isinstance(slow, int) or slow < 0:
            raise ValueError("slow must be True, False or a number of PBKDF2 iterations.")
        self.iterations = slow
        kwargs.setdefault("max_length", TAG_MAX_LENGTH)
        kwargs.setdefault("db_index", not unique)
        kwargs.update(null=True, blank=True, editable=False)
        super().__init__(unique=unique, **kwargs)

    # Declaration ---------------------------------------------------------------------------

    @property
    def source_name(self) -> str:
        return self.source.split("__", 1)[0]

    @property
    def source_path(self) -> tuple[str, ...]:
        return tuple(self.source.split("__")[1:])

    @cached_property
    def source_field(self) -> Any:
        return self.model._meta.get_field(self.source_name)

    @property
    def folds_case(self) -> bool:
        return folds_case(self.normalize_specs)

    @property
    def enforces_uniqueness(self) -> bool:
        return bool(self.unique or self.unique_with)

    @property
    def truncated(self) -> bool:
        return self.bits < MIN_UNTRUNCATED_BITS

    def label(self) -> str:
        return f"{self.model._meta.label}.{self.name}"

    def index_label(self) -> str:
        """What the subkey is derived over: app, model, source and index name."""
        opts = self.model._meta
        return f"{opts.app_label}.{opts.model_name}.{self.source}.{self.name}"

    def contribute_to_class(self, cls: type[Model], name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        # The previous-generation column of a unique index (and the constraints of unique_with).
        # Migrations list them as their own, so a model rebuilt from migrations (module
        # "__fake__") already declares them.
        if not self.enforces_uniqueness or cls._meta.abstract:
            return
        if cls.__module__ != "__fake__":
            previous = PreviousIndexField(of=name, unique=self.unique)
            previous.contribute_to_class(cls, f"{name}_previous")
            if self.unique_with:
                uniqueness.declare_constraints(cls, self)
        uniqueness.install_validation(cls)

    def deconstruct(self) -> Any:
        name, _path, _args, kwargs = super().deconstruct()
        for attribute in ("max_length", "null", "blank", "editable"):
            kwargs.pop(attribute, None)
        if kwargs.get("db_index") == (not self.unique):
            kwargs.pop("db_index", None)
        if self.unique_with:
            kwargs["unique_with"] = list(self.unique_with)
        if self.normalize_specs:
            kwargs["normalize"] = list(self.normalize_specs)
        if self.bits != FULL_BITS:
            kwargs["bits"] = self.bits
        if self.iterations:
            kwargs["slow"] = self.iterations
        return name, f"{PUBLIC_MODULE}.{type(self).__name__}", [self.source], kwargs

    # Tags ----------------------------------------------------------------------------------

    def plaintext_of(self, instance: Model) -> str | None:
        """The plaintext the index is computed from, read from the instance as it stands."""
        return self.plaintext(self.value_at_path(instance.__dict__.get(self.source_field.attname)))

    def value_at_path(self, value: Any) -> Any:
        """What a value of the source holds at the index's JSON path (a scalar: the value).

        Only a string at a secret path is encrypted (and compared as a string by a plaintext
        JSONField): a number, boolean, object or JSON null there is stored as it is, so it has
        no tag, and ``5`` is never found by a search for ``"5"``.
        """
        if not self.source_path:
            return value
        for key in self.source_path:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, str) else None

    def plaintext(self, value: Any) -> str | None:
        """``value`` as plaintext: a ciphertext (which the field would store verbatim) opened."""
        if value is None:
            return None
        text = value if isinstance(value, str) else str(value)
        if text.startswith(PREFIX):
            opened: str = decrypt_with(get_keyring(), text)
            return opened
        return text

    def ring(self) -> IndexKeyRing:
        ring = get_index_keyring()
        if ring.active is None and get_keyring().active is not None:
            raise MissingKeyError(
                f"{self.label()} is a blind index and encryption is on, but "
                "ENCRYPTION_INDEX_KEY is not set: its tags cannot be computed. Set "
                "ENCRYPTION_INDEX_KEY (a key of its own, never an encryption key)."
            )
        return ring

    def tag(self, key: IndexKey, ring: IndexKeyRing, plaintext: str) -> str:
        subkey = ring.subkey(key, self.index_label())
        return compute_tag(
            key.id, subkey, self.normalize(plaintext), bits=self.bits, iterations=self.iterations
        )

    def key_for_writes(self, ring: IndexKeyRing) -> IndexKey | None:
        return ring.active

    def stored_for(self, plaintext: str | None) -> str | None:
        """The text this column holds for ``plaintext`` under the current ring."""
        if plaintext is None:
            return None
        ring = self.ring()
        key = self.key_for_writes(ring)
        return None if key is None else self.tag(key, ring, plaintext)

    def match_tags(self, plaintext: str) -> list[str]:
        """Every tag a row holding ``plaintext`` may carry: one per configured index key."""
        ring = self.ring()
        return [self.tag(key, ring, plaintext) for key in ring.keys]

    def pre_save(self, model_instance: Model, add: bool) -> Any:
        if self.source_field.attname in model_instance.get_deferred_fields():
            # save() of an instance loaded without its source writes only loaded fields; the
            # tag it was loaded with still matches the source it did not load.
            return getattr(model_instance, self.attname)
        value = self.remembered_tag(model_instance, self.plaintext_of(model_instance))
        setattr(model_instance, self.attname, value)
        return value

    def remembered_tag(self, instance: Model, plaintext: str | None) -> str | None:
        """``stored_for(plaintext)``, computed once per instance, value and key.

        Django 6.0 calls ``pre_save()`` twice for each insert (once to learn which fields the
        INSERT returns), and a write should pay one HMAC per index and key generation. The memo
        names the key by id and fingerprint, never by anything secret.
        """
        if plaintext is None:
            return None
        ring = self.ring()
        key = self.key_for_writes(ring)
        if key is None:
            return None
        memo = instance.__dict__.setdefault(_TAG_MEMO, {})
        mark = (key.id, key.fingerprint, plaintext)
        found = memo.get(self.attname)
        if found is not None and found[0] == mark:
            return found[1]  # type: ignore[no-any-return]
        tag = self.tag(key, ring, plaintext)
        memo[self.attname] = (mark, tag)
        return tag

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        from authhero_encrypt.blind_index.checks import index_field_errors, index_usage_errors

        return [*super().check(**kwargs), *index_field_errors(self), *index_usage_errors(self)]


class PreviousIndexField(BlindIndexField):
    """The previous-generation column of a unique blind index, added by it: see the module doc.

    It holds the tag under the oldest configured index key, so its unique constraint covers
    every row while the declared column moves to a new key. What is tagged, and how, is the
    declared index's (``of``).
    """

    generation = "oldest"

    def __init__(self, *, of: str, unique: bool = True, **kwargs: Any) -> None:
        # unique=False: the previous column of a unique_with index, unique in a constraint.
        self.of = of
        for attribute in ("normalize", "bits", "slow", "db_index", "unique_with"):
            kwargs.pop(attribute, None)
        super().__init__(of, unique=unique, db_index=False, **kwargs)

    @cached_property
    def main(self) -> BlindIndexField:
        field = self.model._meta.get_field(self.of)
        if not isinstance(field, BlindIndexField):
            raise TypeError(f"{self.label()}: {self.of!r} is not a BlindIndexField.")
        return field

    @property
    def source_name(self) -> str:
        return self.main.source_name

    @property
    def source_path(self) -> tuple[str, ...]:
        return self.main.source_path

    @property
    def source_field(self) -> Any:
        return self.main.source_field

    def index_label(self) -> str:
        return self.main.index_label()

    def tag(self, key: IndexKey, ring: IndexKeyRing, plaintext: str) -> str:
        return self.main.tag(key, ring, plaintext)

    def key_for_writes(self, ring: IndexKeyRing) -> IndexKey | None:
        return ring.oldest

    def contribute_to_class(self, cls: type[Model], name: str, private_only: bool = False) -> None:
        models.CharField.contribute_to_class(self, cls, name, private_only=private_only)

    def pre_save(self, model_instance: Model, add: bool) -> Any:
        ring = get_index_keyring()
        deferred = model_instance.get_deferred_fields()
        if (
            ring.oldest is ring.active
            and self.main.attname in model_instance.__dict__
            and self.source_field.attname not in deferred
        ):
            # One key: the declared column's tag (pre_save runs in field order), computed once.
            value = getattr(model_instance, self.main.attname)
            setattr(model_instance, self.attname, value)
            return value
        return super().pre_save(model_instance, add)

    def deconstruct(self) -> Any:
        name, _path, _args, _kwargs = models.CharField.deconstruct(self)
        kwargs = {"of": self.of} if self.unique else {"of": self.of, "unique": False}
        return name, f"{PUBLIC_MODULE}.PreviousIndexField", [], kwargs


def _unique_with(names: Sequence[str], unique: bool) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError("unique_with must list field names, e.g. ('tenant',).")
    if names and unique:
        raise ValueError(
            "unique=True makes the values unique across the table and unique_with makes them "
            "unique per value of other fields: give one of them."
        )
    return tuple(names)


def indexes_of(field: Any, *, for_writes: bool = False) -> tuple[BlindIndexField, ...]:
    """The blind indexes over ``field`` (for writes: of its JSON paths too, and the previous
    columns); cached on the field once the app registry is ready."""
    attribute = "_blind_indexes_written" if for_writes else "_blind_indexes"
    cached = field.__dict__.get(attribute)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    model = getattr(field, "model", None)
    found: tuple[BlindIndexField, ...] = ()
    if model is not None:
        found = tuple(
            other
            for other in model._meta.concrete_fields
            if isinstance(other, BlindIndexField)
            and other.source_name == field.name
            and (
                for_writes or (not isinstance(other, PreviousIndexField) and not other.source_path)
            )
        )
    if apps.ready:
        field.__dict__[attribute] = found
    return found
