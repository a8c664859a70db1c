"""The lookups and key transforms of ``JSONPathEncryptedField``: what a query may ask of a document.

A key transform carries the node of the field's paths it stands at, so a deeper key is judged
against the paths below it; a key at a secret path becomes a transform that refuses to be used;
whole-document ``exact`` and ``contains`` / ``contained_by`` vet the document given before it is
compared. Which path a lookup stands at is read from its left-hand side
(:func:`authhero_encrypt.fields.query_shape.document_source`), which also sees through a
``Subquery`` selecting the document or one of its keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldError
from django.db.models import Transform
from django.db.models.expressions import Col, Value
from django.db.models.fields.json import (
    ContainedBy,
    DataContains,
    HasKeyLookup,
    JSONExact,
    KeyTransform,
)

from authhero_encrypt.fields.query_shape import document_source
from authhero_encrypt.fields.refused import refused_lookup
from authhero_encrypt.json_paths import Path, PathTrie

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

    from authhero_encrypt.fields.json import JSONPathEncryptedField

__all__ = [
    "CONTAINMENT_LOOKUPS",
    "DOCUMENT_LOOKUPS",
    "VETTED_LOOKUPS",
    "GuardedContainedBy",
    "GuardedDataContains",
    "GuardedKeyTransformFactory",
    "NullOnlyJSONExact",
    "RefusedKeyTransformFactory",
    "key_path_of",
]

# Lookups on the whole document that never compare a secret: key presence and NULL.
DOCUMENT_LOOKUPS = frozenset({"isnull", "has_key", "has_keys", "has_any_keys"})
# Lookups that compare with a document, kept while that document names no secret path.
CONTAINMENT_LOOKUPS = frozenset({"contains", "contained_by"})


def key_path_of(expression: Any) -> Path:
    """The keys walked from the column to ``expression``: ``()`` for the column itself.

    Through a ``Subquery`` selecting the column or one of its keys too, so the key ``k`` of
    ``Subquery(...values("options__nested"))`` stands at ``("nested", "k")``.
    """
    keys: list[str] = []
    while isinstance(expression, KeyTransform):
        keys.insert(0, expression.key_name)
        expression = expression.lhs
    if isinstance(expression, Col):
        return tuple(keys)  # the common case, on every row read under a key
    return (*document_source(expression)[1], *keys)


class _GuardedKeyTransform(KeyTransform):
    """A ``KeyTransform`` that knows its place, so a deeper key is checked against the paths.

    A plain ``KeyTransform`` hands a deeper key to the field's ``get_transform`` without saying
    where it is, and ``options__foo__client_secret`` would look like the top-level secret.
    """

    secret_field: JSONPathEncryptedField
    path_node: PathTrie | None

    def get_transform(self, name: str) -> Any:
        registered = self.secret_field.registered_transform(name)
        if registered is not None:
            return registered
        return GuardedKeyTransformFactory(self.secret_field, name)

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
            and lookup_name not in DOCUMENT_LOOKUPS | CONTAINMENT_LOOKUPS
        ):
            error = self.secret_field.document_error(key_path_of(self), lookup_name)
            return refused_lookup(lookup_name, error)
        return found


def _on_the_column(expression: Any) -> bool:
    while isinstance(expression, KeyTransform):
        expression = expression.lhs
    return isinstance(expression, Col)


class GuardedKeyTransformFactory:
    """The transform for the key ``key``, judged where it is applied.

    Django builds a transform by calling what ``get_transform`` returned with the expression it
    applies to, and only that expression says which path the key is at: ``options__k`` and the
    ``k`` of a subquery selecting ``options__nested`` reach different paths.
    """

    def __init__(self, field: JSONPathEncryptedField, key: str) -> None:
        self.field, self.key = field, key

    def __call__(self, lhs: Any, *args: Any, **kwargs: Any) -> Transform:
        at = key_path_of(lhs)
        node = self.field.path_trie.node_at(at)
        if node is not None and node.is_secret(self.key):
            path = (*at, self.key)
            refusal = self.field.path_error(path, "__".join((self.field.name, *path)))
            refused = RefusedKeyTransformFactory(refusal)
            if _on_the_column(lhs):
                # A blind index over the path answers equality (authhero_encrypt.blind_index):
                # only on the column itself, whose row holds the tag.
                from authhero_encrypt.blind_index.json import indexed_key_transform

                indexed = indexed_key_transform(self.field, path, refused)
                return indexed(lhs, *args, **kwargs)  # type: ignore[no-any-return]
            return refused(lhs, *args, **kwargs)
        transform = _GuardedKeyTransform(self.key, lhs, *args, **kwargs)
        transform.secret_field = self.field
        transform.path_node = node.child(self.key) if node is not None else None
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
        return RefusedKeyTransformFactory(self.refusal)

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, *args: Any, **kwargs: Any
    ) -> Any:
        raise self.refusal


class RefusedKeyTransformFactory:
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


class NullOnlyJSONExact(JSONExact):
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
        at = key_path_of(self.lhs)  # () but for a subquery selecting a key of the document
        node = field.path_trie.node_at(at)
        if not null and node is not None:
            if hasattr(document, "resolve_expression"):
                raise field.document_error(at, self.lookup_name)
            for path, _value in node.secrets(document, at):
                raise field.path_error(path, self.lookup_name)
        return super().get_prep_lookup()


class GuardedDataContains(_RefuseSecretsMixin, DataContains):
    pass


class GuardedContainedBy(_RefuseSecretsMixin, ContainedBy):
    pass


# The document lookups the guard lets compile the column: they vet their document themselves.
VETTED_LOOKUPS = (HasKeyLookup, NullOnlyJSONExact, GuardedDataContains, GuardedContainedBy)
