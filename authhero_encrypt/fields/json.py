"""``JSONPathEncryptedField``: a JSON document in which only the declared paths are secret."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldError, ValidationError
from django.db import models
from django.db.models import Transform
from django.db.models.expressions import Value
from django.db.models.fields.json import (
    ContainedBy,
    DataContains,
    HasKeyLookup,
    JSONExact,
    KeyTransform,
)

from authhero_encrypt import keys
from authhero_encrypt.crypto import PREFIX, decrypt_with
from authhero_encrypt.exceptions import DecryptionError, EncryptionError
from authhero_encrypt.fields.base import (
    EncryptedFieldMixin,
    like_escape,
    rewrap,
    store,
    without_frames,
)
from authhero_encrypt.fields.deletion import DEFERRED, deleting
from authhero_encrypt.fields.generic import _GT, _ST, JSONField
from authhero_encrypt.fields.refused import refused_lookup
from authhero_encrypt.json_paths import Path, PathTrie, parse_paths, path_text
from authhero_encrypt.keys import get_keyring
from authhero_encrypt.validators import RefuseCiphertextValidator

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model
    from django.db.models.sql.compiler import SQLCompiler

__all__ = ["JSONPathEncryptedField"]

# Lookups on the whole document that never compare a secret: key presence and NULL.
_DOCUMENT_LOOKUPS = frozenset({"isnull", "has_key", "has_keys", "has_any_keys"})
# Lookups that compare with a document, kept while that document names no secret path.
_CONTAINMENT_LOOKUPS = frozenset({"contains", "contained_by"})


def key_path_of(expression: Any) -> Path:
    """The keys a chain of ``KeyTransform`` walks from the column: ``()`` for the column."""
    keys: list[str] = []
    while isinstance(expression, KeyTransform):
        keys.insert(0, expression.key_name)
        expression = expression.lhs
    return tuple(keys)


class _GuardedKeyTransform(KeyTransform):
    """A ``KeyTransform`` that knows its path, so a deeper key is checked against the paths.

    A plain ``KeyTransform`` hands a deeper key to the field's ``get_transform`` without saying
    where it is, and ``options__foo__client_secret`` would look like the top-level secret.
    """

    secret_field: JSONPathEncryptedField
    path_node: PathTrie | None

    def get_transform(self, name: str) -> Any:
        registered = self.secret_field.registered_transform(name)
        if registered is not None:
            return registered
        return self.secret_field.key_transform(name, self.path_node, key_path_of(self))

    def get_lookup(self, lookup_name: str) -> Any:
        # A key with secret paths below it holds ciphertext, so comparing it as a whole
        # (options__configuration={...}, __icontains) would silently match nothing or match the
        # ciphertext, as for the whole document. Lookups registered on JSONField (or on this
        # field class) apply to a key as they would on a JSONField.
        own = self._get_lookup(lookup_name)  # type: ignore[attr-defined]
        found = own or self.secret_field.key_lookup(lookup_name)
        if (
            found is not None
            and self.path_node is not None
            and lookup_name not in _DOCUMENT_LOOKUPS | _CONTAINMENT_LOOKUPS
        ):
            error = self.secret_field.document_error(key_path_of(self), lookup_name)
            return refused_lookup(lookup_name, error)
        return found


class _KeyTransformFactory:
    def __init__(self, field: JSONPathEncryptedField, key: str, node: PathTrie | None) -> None:
        self.field, self.key, self.node = field, key, node

    def __call__(self, *args: Any, **kwargs: Any) -> _GuardedKeyTransform:
        transform = _GuardedKeyTransform(self.key, *args, **kwargs)
        transform.secret_field = self.field
        transform.path_node = self.node
        return transform


class _RefusedKeyTransform(Transform):
    """A key at an encrypted path: refused, with the message naming it, wherever it is used.

    ``filter()`` asks it for a lookup straight away and fails there. ``values()``, ``order_by()``
    and ``F()`` build transforms inside Django's name resolution, which replaces any
    ``FieldError`` raised there with a bare "Cannot resolve keyword"; compiling the query is the
    first point at which the message naming the path reaches the caller.
    """

    refusal: FieldError

    def get_lookup(self, lookup_name: str) -> Any:
        return refused_lookup(lookup_name, self.refusal)

    def get_transform(self, lookup_name: str) -> Any:
        return _RefusedKeyTransformFactory(self.refusal)

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **kwargs: Any
    ) -> Any:
        raise self.refusal


class _RefusedKeyTransformFactory:
    def __init__(self, refusal: FieldError) -> None:
        self.refusal = refusal

    def __call__(self, *args: Any, **kwargs: Any) -> _RefusedKeyTransform:
        transform = _RefusedKeyTransform(*args, **kwargs)
        transform.refusal = self.refusal
        return transform


class _RefuseSecretsMixin:
    """``contains`` / ``contained_by`` are kept while their document names no secret path."""

    lhs: Any
    rhs: Any

    def get_prep_lookup(self) -> Any:
        field = self.lhs.output_field
        # Under a key (options__configuration__contains) the document is matched against the
        # paths below that key, not against the top-level ones.
        at = key_path_of(self.lhs)
        node = field.path_trie.node_at(at)
        if node is not None:
            document = self.rhs
            if isinstance(document, Value):
                document = document.value
            elif hasattr(document, "resolve_expression"):
                # A document the database computes (F(), a subquery) cannot be vetted.
                raise field.document_error(at, self.lookup_name)  # type: ignore[attr-defined]
            for path in node.containment_conflicts(document, at):
                if path == at:
                    raise field.array_error(at, self.lookup_name)  # type: ignore[attr-defined]
                raise field.path_error(path, self.lookup_name)  # type: ignore[attr-defined]
        return super().get_prep_lookup()  # type: ignore[misc]


class _NullOnlyJSONExact(JSONExact):
    """The whole document compared with one that reaches no secret path, or with JSON null.

    A stored document holding ciphertext at a secret path can never equal a document with no
    string there, and neither could its plaintext, so the answer is the plaintext one. A
    document naming a secret, or an expression whose document is not known, is refused.
    """

    def get_prep_lookup(self) -> Any:
        # JSON null may also be spelled Value(None, JSONField()), as on a JSONField.
        rhs = self.rhs
        document = rhs.value if isinstance(rhs, Value) else rhs
        null = document is None or type(rhs).__name__ == "JSONNull"  # Django 6.1's spelling
        field = self.lhs.output_field
        if not null:
            if hasattr(document, "resolve_expression"):
                raise field.document_error((), self.lookup_name)
            for path, _value in field.path_trie.secrets(document):
                raise field.path_error(path, self.lookup_name)
        return super().get_prep_lookup()


class _GuardedDataContains(_RefuseSecretsMixin, DataContains):
    pass


class _GuardedContainedBy(_RefuseSecretsMixin, ContainedBy):
    pass


class JSONPathEncryptedField(EncryptedFieldMixin, JSONField[_ST, _GT]):  # type: ignore[misc]
    """A ``JSONField`` whose string values at ``encrypted_paths`` are stored as ``enc:v1:`` text.

    It follows AuthHero's rules for its JSON columns, so a database shared with AuthHero reads
    the same from both sides:

    * a path is dot-separated object keys; ``*`` as the last segment means every string value
      directly in that object (``"*"``, ``"configuration.*"``) and does not recurse;
    * only string values are encrypted (``""`` too); numbers, booleans, null, objects and arrays
      at a listed path are left as they are, and a missing path or parent is never created;
    * every other key stays plaintext JSON, so ``options__client_id="abc"``, ordering and
      ``values("options__client_id")`` work; a lookup or transform that reaches into an
      encrypted path raises ``FieldError`` instead of silently matching nothing.

    Writing never changes the caller's document: the instance keeps its plaintext values.
    """

    description = "JSON document with encrypted paths"

    def __init__(
        self, *args: Any, encrypted_paths: Sequence[str] | None = None, **kwargs: Any
    ) -> None:
        self.encrypted_paths = parse_paths(encrypted_paths)
        self.path_trie = PathTrie.build(self.encrypted_paths)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["encrypted_paths"] = [path_text(p) for p in self.encrypted_paths]
        return name, path, args, kwargs

    # Queries -------------------------------------------------------------------------------

    def path_error(self, path: Path, lookup: str) -> FieldError:
        return FieldError(
            f"{self.label()}: '{path_text(path)}' is an encrypted path, so '{lookup}' cannot "
            "reach it: the database only holds its ciphertext. Query a plaintext key instead, "
            "or load the rows and compare in Python."
        )

    def document_error(self, path: Path, lookup: str) -> FieldError:
        what = f"{self.label()}: '{path_text(path)}'" if path else self.label()
        whole = "it" if path else "the whole document"
        example = "__".join((self.name, *path, "client_id"))
        return FieldError(
            f"{what} holds encrypted paths, so {whole} cannot be compared with '{lookup}'. "
            f"Compare a plaintext key (e.g. {example}=...) or use has_key."
        )

    def array_error(self, path: Path, lookup: str) -> FieldError:
        where = f"key '{path_text(path)}'" if path else "document"
        return FieldError(
            f"{self.label()}: an array given for the {where}, which holds encrypted paths, "
            f"cannot be used with '{lookup}': MySQL and MariaDB match the values inside an "
            "array, so the answer would depend on the encrypted plaintext. Compare a plaintext "
            "key instead, or load the rows and compare in Python."
        )

    def get_lookup(self, lookup_name: str) -> Any:
        found = models.JSONField.get_lookup(self, lookup_name)
        if found is None or lookup_name in _DOCUMENT_LOOKUPS:
            return found  # None: Django then reads the name as a key (get_transform)
        if lookup_name == "exact":
            return _NullOnlyJSONExact
        if lookup_name == "contains":
            return _GuardedDataContains
        if lookup_name == "contained_by":
            return _GuardedContainedBy
        return refused_lookup(lookup_name, self.document_error((), lookup_name))

    def get_transform(self, lookup_name: str) -> Any:
        registered = self.registered_transform(lookup_name)
        if registered is not None:
            return registered  # the guard refuses it over the whole document when compiled
        return self.key_transform(lookup_name, self.path_trie, ())

    def key_lookup(self, lookup_name: str) -> Any:
        """The lookup a key takes when its transform has none: JSONField's, containment vetted."""
        if lookup_name == "contains":
            return _GuardedDataContains
        if lookup_name == "contained_by":
            return _GuardedContainedBy
        return models.JSONField.get_lookup(self, lookup_name)

    def registered_transform(self, name: str) -> Any:
        """A transform registered on ``JSONField`` or this class; ``None`` for a key name."""
        return super(models.JSONField, self).get_transform(name)

    def path_kind(self, path: tuple[str, ...]) -> str:
        parent = self.path_trie.node_at(path[:-1])
        if parent is not None and parent.is_secret(path[-1]):
            return "secret"
        return "holds" if self.path_trie.node_at(path) is not None else "plain"

    def allows_owner(self, owner: Any, path: tuple[str, ...]) -> bool:
        # Key presence, JSON null and containment of documents the lookups have vetted.
        return isinstance(
            owner, (HasKeyLookup, _NullOnlyJSONExact, _GuardedDataContains, _GuardedContainedBy)
        )

    def key_transform(self, key: str, node: PathTrie | None, at: Path) -> Any:
        if node is not None and node.is_secret(key):
            path = (*at, key)
            refused = _RefusedKeyTransformFactory(
                self.path_error(path, "__".join((self.name, *path)))
            )
            # A blind index over the path answers equality (authhero_encrypt.blind_index.json).
            from authhero_encrypt.blind_index.json import indexed_key_transform

            return indexed_key_transform(self, path, refused)
        return _KeyTransformFactory(self, key, node.child(key) if node is not None else None)

    # Writes --------------------------------------------------------------------------------

    def encrypt_document(self, document: Any) -> Any:
        """A copy of ``document`` with every secret leaf in its stored form."""
        try:
            ring = get_keyring()
        except EncryptionError as exc:
            raise self.write_error(exc) from exc

        def encrypt(path: Path, value: str) -> str:
            try:
                return store(ring, value)
            except EncryptionError as exc:
                raise rewrap(
                    exc,
                    f"Refusing to store an enc:v1: value at {self.label()} path "
                    f"'{path_text(path)}' (nothing was written)",
                ) from exc

        for path in self.path_trie.text_documents(document):
            where = f" at '{path_text(path)}'" if path else ""
            raise FieldError(
                f"Refusing to store {self.label()}: the value{where} is JSON text holding an "
                "encrypted path, which would be stored in the clear inside a JSON string "
                "(nothing was written). Pass the document itself (a dict), not its JSON text."
            )
        return self.path_trie.transform(document, encrypt)

    def stored_literal(self, value: Any) -> Any:
        return self.encrypt_document(value)

    def plain_output_field(self) -> models.Field[Any, Any]:
        return models.JSONField(encoder=self.encoder)

    @property
    def default_validators(self) -> list[Any]:  # type: ignore[override]
        # As for the scalar fields: pasted ciphertext at a secret path is refused (see
        # authhero_encrypt.validators); built per field, since it needs the paths.
        return [
            RefuseCiphertextValidator(encrypted_paths=[path_text(p) for p in self.encrypted_paths])
        ]

    def validate(self, value: Any, model_instance: Model | None) -> None:
        super().validate(value, model_instance)
        # A JSON string that parses to a document reaching a secret path would be stored in the
        # clear: refuse it as any other unencryptable input.
        for path in self.path_trie.text_documents(value):
            raise ValidationError(
                "This value%(where)s is JSON text holding an encrypted path, which would be "
                "stored in the clear. Enter the document itself, not its JSON text.",
                code="json_text",
                params={"where": f" at '{path_text(path)}'" if path else ""},
            )

    def get_db_prep_save(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        if isinstance(value, Value) and isinstance(value.output_field, models.JSONField):
            if value.value is not None:
                value = Value(self.encrypt_document(value.value), output_field=value.output_field)
        elif value is not None and not hasattr(value, "as_sql"):
            value = self.encrypt_document(value)
        return super().get_db_prep_save(value, connection)

    def value_to_string(self, obj: Model) -> Any:
        # dumpdata gets the stored form: secret paths as ciphertext, the rest as it is.
        value = self.value_from_object(obj)
        return None if value is None else self.encrypt_document(value)

    # Reads ---------------------------------------------------------------------------------

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        document = super().from_db_value(value, expression, connection)
        if document is None:
            return None
        node: PathTrie | None = self.path_trie  # the whole column: instances and values()
        leaf: Path = ()
        if isinstance(expression, KeyTransform):
            # A value under a key (values("options__configuration")): its node found per row.
            at = key_path_of(expression)
            parent = self.path_trie.node_at(at[:-1])
            if parent is None:
                return document
            if isinstance(document, str):
                # Only reachable through expressions that bypass get_transform (KeyTransform
                # built by hand): never hand back ciphertext as if it were the value.
                if not parent.is_secret(at[-1]):
                    return document
                leaf = at
            node = parent.child(at[-1])
        if not leaf and (node is None or not isinstance(document, dict)):
            return document
        ring = keys.current_keyring or get_keyring()

        def decrypt(at: Path, key: str, stored: str) -> str:
            if not stored.startswith(PREFIX):
                if self.refuses_plaintext():
                    where = f" path '{path_text((*at, key))}'"
                    # The column's text as fetched names the row (part of it, under a key).
                    if not isinstance(value, str):  # a driver that parsed it: best effort
                        pattern = f'%"{like_escape(stored)}"%'
                    elif isinstance(expression, KeyTransform):
                        pattern = f"%{like_escape(value)}%"
                    else:
                        pattern = like_escape(value)
                    raise self.plaintext_error(stored, connection, where, pattern)
                return stored  # legacy plaintext, encrypted on the row's next write
            try:
                return decrypt_with(ring, stored)
            except DecryptionError as exc:
                if deleting():
                    raise  # left deferred below; read_error would blank the row's other values
                where = f" path '{path_text((*at, key))}'"
                raise self.read_error(exc, stored, connection, where) from exc

        try:
            if leaf:
                return decrypt(leaf[:-1], leaf[-1], document)
            assert node is not None  # for mypy: checked above
            node.replace_in_place(document, decrypt)
            return document
        except DecryptionError as exc:
            failure = exc
        # The document is decrypted in place, so when a later path fails the frames of this
        # walk hold the plaintext of earlier ones, and error reports print every frame's
        # locals: drop the document and the frames before the error leaves.
        del document
        if deleting():
            return DEFERRED
        raise without_frames(failure)
