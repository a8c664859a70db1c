"""What admin options and lookups reach encrypted data; shared by the checks and the mixin.

The database only holds ciphertext at an encrypted field or JSON path, so whatever an admin option
reads there (a search, a filter, an ordering, a ``list_display`` lookup) reads ciphertext, or the
plaintext of a legacy row. A JSON path reaches encrypted data when it is an encrypted path (or below
one) and also when encrypted paths run below it: ``options__configuration`` holds
``configuration.client_secret``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models.constants import LOOKUP_SEP

from authhero_encrypt.blind_index.lookups import answered_by_index
from authhero_encrypt.fields.base import EncryptedFieldMixin
from authhero_encrypt.fields.json import JSONPathEncryptedField
from authhero_encrypt.inventory import encrypted_fields
from authhero_encrypt.json_paths import PathTrie, path_text

if TYPE_CHECKING:
    from django.db.models import Model

__all__ = [
    "display_lookups",
    "display_secret",
    "filter_lookup",
    "indexed_search",
    "json_path_secret",
    "model_secret_fields",
    "reached_field",
    "secret_target",
]


def model_secret_fields(model: type[Model]) -> list[Any]:
    """Every concrete encrypted field on the pages of ``model``.

    :func:`~authhero_encrypt.inventory.encrypted_fields` lists a model's own fields, which is
    what a table scan needs; a page also shows the fields a proxy takes from its concrete model
    and those a child inherits from its parents (multi-table inheritance).
    """
    concrete = model._meta.concrete_model or model
    owners = (concrete, *concrete._meta.get_parent_list())
    return [field for owner in owners for field in encrypted_fields(owner)]


def filter_lookup(spec: Any) -> str | None:
    """The lookup a ``list_filter`` item filters on; ``None`` for a ``SimpleListFilter`` class.

    An item is a field name, or ``(field name, FieldListFilter)``; a ``SimpleListFilter``
    decides on its own what it shows.
    """
    name = spec[0] if isinstance(spec, (list, tuple)) else spec
    return name if isinstance(name, str) else None


def display_lookups(model_admin: Any, items: Iterable[Any]) -> Iterator[str]:
    """The ``list_display`` items the admin resolves by following a lookup (Django >= 5.1).

    A name with ``__`` is a lookup unless the admin has a method of that name.
    """
    for item in items or ():
        if isinstance(item, str) and LOOKUP_SEP in item and not hasattr(model_admin, item):
            yield item


def display_secret(model: type[Model], lookup: str) -> Any:
    """The encrypted field a ``list_display`` lookup of ``model`` would show, or ``None``.

    Django follows ``client__client_secret`` attribute by attribute, so it shows the decrypted
    value when the lookup ends at an encrypted field after relations to one row each. Through a
    to-many relation it reaches a manager, and a JSON key is not an attribute of the document:
    neither shows a value.
    """
    reached = reached_field(model, lookup)
    if reached is None:
        return None
    field, relations, rest = reached
    if rest or not relations:
        return None
    if not all(relation.many_to_one or relation.one_to_one for relation in relations):
        return None
    return field


def reached_field(model: type[Model], lookup: str) -> tuple[Any, list[Any], list[str]] | None:
    """The encrypted field ``lookup`` runs into from ``model``, or ``None``.

    Returns ``(field, relations, rest)``: the relation fields followed to reach it, and what
    follows its name (JSON keys, lookups). A name that is not a field is taken for a lookup or
    transform and ends the walk (Django's own admin checks report unknown names).
    """
    opts = model._meta
    parts = lookup.split(LOOKUP_SEP)
    relations: list[Any] = []
    for index, part in enumerate(parts):
        try:
            field: Any = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            return None
        if isinstance(field, EncryptedFieldMixin):
            return field, relations, parts[index + 1 :]
        related = getattr(field, "related_model", None)
        if related is None or not field.is_relation:
            return None
        relations.append(field)
        opts = related._meta
    return None


def secret_target(model: type[Model], lookup: str) -> str | None:
    """What encrypted data ``lookup`` reaches from ``model`` (as text), or ``None``."""
    reached = reached_field(model, lookup)
    if reached is None:
        return None
    field, _, rest = reached
    if not isinstance(field, JSONPathEncryptedField):
        return f"the encrypted field {field.label()}"
    what = json_path_secret(field.path_trie, rest)
    return None if what is None else f"{what} of {field.label()}"


def indexed_search(model: type[Model], name: str) -> bool:
    """Whether the ``search_fields`` entry ``name`` is an exact search a blind index answers.

    The admin searches ``=email`` with ``email__iexact``, which an index answers when it folds
    case (it asks the same question as ``exact`` then); an entry naming its lookup, such as
    ``email__exact``, is searched with that lookup. ``in`` is no search: a term is no list.
    """
    if name.startswith("="):
        name = f"{name[1:]}{LOOKUP_SEP}iexact"
    elif name[:1] in ("^", "@"):
        return False
    reached = reached_field(model, name)
    if reached is None:
        return False
    field, _relations, rest = reached
    if isinstance(field, JSONPathEncryptedField) or len(rest) != 1 or rest[0] == "in":
        return False
    return answered_by_index(field, rest[0])


def json_path_secret(trie: PathTrie, keys: Sequence[str]) -> str | None:
    """What encrypted data the value at ``keys`` of a document is or holds (as text), or ``None``.

    The value is secret when the walk meets an encrypted path (a listed key or a ``*``; what
    follows is below a secret and no better), and it holds secrets when encrypted paths run
    below it (``PathTrie.node_at`` finds a node), as ``configuration`` holds
    ``configuration.client_secret``. Either way, whatever reads that value reads ciphertext, or
    the plaintext of a legacy row: the one rule every admin option and column follows.
    """
    node = trie
    for depth, key in enumerate(keys):
        if node.is_secret(key):
            return f"the encrypted path '{path_text(tuple(keys[: depth + 1]))}'"
        child = node.child(key)
        if child is None:
            return None
        node = child
    if not keys:
        return "the whole document, which holds encrypted paths"
    return f"'{path_text(tuple(keys))}', which holds encrypted paths"
