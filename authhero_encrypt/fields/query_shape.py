"""Judging a whole ``Query`` once: where its select list's encrypted columns end up.

The select list is where an encrypted column is compiled on every read, so the guard judges
it from the query's structure rather than from each column's compile: once per compiler, it
asks whether anything that sorts, groups, deduplicates or combines rows reaches an encrypted
column, whether by name, by ``F()``, by an alias, by the column's position in ``SELECT``, by
``extra(order_by=...)``, or by another query of a set operation. Everything it reads is a
``Query`` attribute; a missing one raises ``AttributeError``, which the caller turns into a
refusal.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.core.exceptions import FieldError
from django.db.models.expressions import Col, F, OrderBy, Ref, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.sql.query import Query

__all__ = [
    "combination_problem",
    "document_source",
    "encrypted_item",
    "select_items",
    "select_problem",
    "subquery_of",
    "wrapped_problem",
]

ORDERING = "ordering (order_by(), Meta.ordering, admin sorting)"
_MAX_DEPTH = 3  # related models' Meta.ordering followed this deep
_META_ORDERING: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], str]] = (
    weakref.WeakKeyDictionary()
)


def is_encrypted(field: Any) -> bool:
    return hasattr(field, "path_kind")


def _key_chain(expression: Any) -> tuple[Any, tuple[str, ...]]:
    """The expression under a chain of key transforms, and the keys walked from it."""
    keys: list[str] = []
    while isinstance(expression, KeyTransform):
        keys.insert(0, str(expression.key_name))
        expression = expression.lhs
    return expression, tuple(keys)


def document_source(expression: Any) -> tuple[Any, tuple[str, ...]]:
    """The expression a (JSON) value comes from, and the keys walked from it.

    Key transforms are followed to what they apply to, and a ``Subquery`` selecting one column
    or one key of it to that column: the key ``k`` of ``Subquery(M.objects.values(
    "options__nested"))`` comes from the ``options`` column at ``("nested", "k")``. Anything
    else is returned as it is, with the keys walked from it.
    """
    base, path = _key_chain(expression)
    if isinstance(base, Col):
        return base, path  # the common case, on every row read under a key
    for _ in range(_MAX_DEPTH):
        query = subquery_of(base)
        if query is None:
            break
        items = select_items(query)
        if len(items) != 1 or items[0] is None:
            break
        base, inner = _key_chain(items[0])
        path = (*inner, *path)
    return base, path


def subquery_of(expression: Any) -> Query | None:
    """The query of a subquery used as a value: ``Subquery(qs)``, or a queryset's own query.

    A queryset passed as an expression (``annotate(doc=qs.values("options"))``) resolves to its
    ``Query``, and so does ``Subquery`` itself in newer Django. ``Exists`` and other subclasses
    select something else.
    """
    if type(expression) is Subquery:
        return expression.query
    if isinstance(expression, Query) and expression.subquery:
        return expression
    return None


def through_subquery(expression: Any) -> bool:
    """Whether ``expression`` is a subquery's value (or a key of one), not a column's."""
    return subquery_of(_key_chain(expression)[0]) is not None


def encrypted_item(expression: Any) -> tuple[Any, tuple[str, ...]] | None:
    """``(field, path)`` when ``expression`` yields an encrypted column or a key holding one.

    Those are values the field's converter decrypts on the way out, and whose stored form
    differs from the plaintext; any other expression is judged where it is compiled. A
    subquery selecting such a value (``Subquery(M.objects.values("options"))``) is one too.
    """
    base, path = document_source(expression)
    field: Any = getattr(base, "target", None)
    if not isinstance(base, Col) or not is_encrypted(field):
        return None
    if path and field.path_kind(path) == "plain":
        return None
    if path and isinstance(expression, KeyTextTransform):
        return None  # text of a document holding ciphertext: refused where compiled
    return field, path


def _name(expression: F) -> str:
    return str(expression.name)  # type: ignore[attr-defined]  # not in django-stubs


def _refs(expression: Ref) -> str:
    return str(expression.refs)  # type: ignore[attr-defined]  # not in django-stubs


def _encrypted_aliases(query: Any) -> set[str]:
    return {
        alias
        for alias, expression in query.annotations.items()
        if encrypted_item(expression) is not None
    }


def _name_problem(query: Any, opts: Any, name: str, aliases: set[str], depth: int = 0) -> str:
    """What ordering by ``name`` (a field path, an alias or ``table.column``) would sort."""
    name = name.lstrip("-+")
    if name == "?" or not name:
        return ""
    if depth == 0:
        if name in aliases:
            return f"{ORDERING} on the alias '{name}'"
        if name in query.annotations or name in query.extra:
            return ""
    if "." in name:
        table, column = name.split(".", 1)
        for field in opts.concrete_fields:
            if is_encrypted(field) and field.column == column and table == opts.db_table:
                return ORDERING
        return ""
    try:
        _path, final, _targets, rest = query.names_to_path(name.split("__"), opts)
    except FieldError:
        return ""  # Django raises its own error for a name it cannot resolve
    if is_encrypted(final):
        kind = final.path_kind(tuple(rest)) if rest else ""
        if kind == "secret":  # the message naming the path, as a filter on it gives
            raise final.path_error(tuple(rest), "__".join((final.name, *rest)))
        return "" if kind == "plain" else ORDERING
    if final.is_relation and not rest and depth < _MAX_DEPTH and final.related_model:
        related = final.related_model._meta
        if name.split("__")[-1] == getattr(final, "attname", None):
            return ""
        for item in related.ordering:
            found = _item_problem(query, related, item, aliases, depth + 1)
            if found:
                return found
    return ""


def _item_problem(query: Any, opts: Any, item: Any, aliases: set[str], depth: int = 0) -> str:
    """What ordering by ``item`` (a name or an expression) would sort on, or ``""``."""
    if isinstance(item, str):
        return _name_problem(query, opts, item, aliases, depth)
    if isinstance(item, OrderBy):
        return _item_problem(query, opts, item.expression, aliases, depth)
    if isinstance(item, F):
        return _name_problem(query, opts, _name(item), aliases, depth)
    if isinstance(item, Ref):
        refs = _refs(item)
        return f"{ORDERING} on the alias '{refs}'" if refs in aliases else ""
    if isinstance(item, KeyTransform):
        base, path = _key_chain(item)
        if isinstance(base, F):
            return _name_problem(query, opts, "__".join((_name(base), *path)), aliases, depth)
    if isinstance(item, Col):
        return ORDERING if is_encrypted(item.target) else ""
    if subquery_of(item) is not None:
        return ORDERING if encrypted_item(item) is not None else ""
    if type(item).__name__ == "StoredText":
        return ""  # the stored text, asked for on purpose
    for source in item.get_source_expressions():
        if source is not None:
            found = _item_problem(query, opts, source, aliases, depth)
            if found:
                return found
    return ""


def _ordering_problem(query: Any, aliases: set[str]) -> str:
    opts = query.get_meta()
    if not query.order_by and not query.extra_order_by:
        if not query.default_ordering or not opts.ordering:
            return ""
        if not query.annotations and not query.extra and not query._filtered_relations:
            # Meta.ordering alone means the same on every query of the model: judged once.
            known = _META_ORDERING.setdefault(opts, {})
            key = tuple(map(str, opts.ordering))
            if key not in known:
                known[key] = _items_problem(query, opts, opts.ordering, aliases)
            return known[key]
    ordering = query.order_by or (opts.ordering if query.default_ordering else ())
    return _items_problem(query, opts, (*ordering, *query.extra_order_by), aliases)


def _items_problem(query: Any, opts: Any, items: Any, aliases: set[str]) -> str:
    for item in items:
        found = _item_problem(query, opts, item, aliases)
        if found:
            return found
    return ""


def select_items(query: Any) -> list[Any]:
    """The select list's expressions in position order (extra select as ``None``)."""
    if query.default_cols:
        opts = query.get_meta()
        mask = query.get_select_mask()
        cols = [
            Col(query.base_table, field)
            for field in opts.concrete_fields
            if not mask or field in mask
        ]
    else:
        cols = list(query.select)
    if query.selected is None:
        return [
            *(None for _ in query.extra_select),
            *cols,
            *query.annotation_select.values(),
        ]
    items: list[Any] = []
    for expression in query.selected.values():
        if isinstance(expression, str):
            expression = query.annotations[expression]
        elif isinstance(expression, int):
            expression = cols[expression]
        items.append(expression)
    return items


def _beside_primary_key(items: list[Any], field: Any, expression: Any) -> bool:
    """Whether the row's primary key is selected beside ``expression``, a column of ``field``."""
    base, _path = _key_chain(expression)
    if not isinstance(base, Col):
        return False  # a subquery's value: the primary key beside it says nothing of its rows
    alias = base.alias
    return any(
        isinstance(other, Col)
        and other.target.primary_key
        and other.target.model is field.model
        and (alias is None or other.alias == alias)
        for other in items
    )


def _grouping_problem(query: Any, items: list[Any], aliases: set[str]) -> str:
    group_by = query.group_by
    if group_by is None:
        return ""
    if group_by is True:
        grouped = items
        if any(alias in query.annotation_select for alias in aliases):
            return "GROUP BY (an aggregate beside an aliased encrypted column)"
    else:
        grouped = list(group_by)
    for expression in grouped:
        if isinstance(expression, Ref) and _refs(expression) in aliases:
            return f"GROUP BY on the alias '{_refs(expression)}'"
        found = encrypted_item(expression) if expression is not None else None
        if found and not _beside_primary_key(grouped, found[0], expression):
            return "GROUP BY (values().annotate())"
    return ""


def _distinct_problem(query: Any, items: list[Any], aliases: set[str]) -> str:
    if not query.distinct:
        return ""
    opts = query.get_meta()
    for name in query.distinct_fields:
        if _name_problem(query, opts, name, aliases):
            return "DISTINCT ON (distinct(*fields))"
    if query.distinct_fields:
        return ""
    if any(alias in query.annotation_select for alias in aliases):
        return "SELECT DISTINCT on an aliased encrypted column"
    for expression in items:
        found = encrypted_item(expression) if expression is not None else None
        if found and not _beside_primary_key(items, found[0], expression):
            return "SELECT DISTINCT (distinct())"
    return ""


def wrapped_problem(query: Any) -> str:
    """The inner query of ``SELECT agg(...) FROM (...) subquery``: its aliases are aggregated."""
    if any(alias in query.annotation_select for alias in _encrypted_aliases(query)):
        return "an aggregate over a sliced or distinct queryset"
    return ""


def select_problem(query: Any) -> str:
    """What is wrong with this query's use of its selected encrypted columns, or ``""``."""
    if (
        query.group_by is None
        and not (query.combinator or query.distinct or query.order_by or query.extra_order_by)
        and not (query.default_ordering and query.get_meta().ordering)
    ):
        # Nothing sorts, groups, deduplicates or combines rows: most queries, judged here
        # without building the aliases or walking an ordering.
        return ""
    aliases = _encrypted_aliases(query) if query.annotations else set()
    if query.combinator:
        found = combination_problem(query)
        if found:
            return found
    found = _ordering_problem(query, aliases)
    if found or (query.group_by is None and not query.distinct):
        return found
    items = select_items(query)
    return _grouping_problem(query, items, aliases) or _distinct_problem(query, items, aliases)


def _layout(part: Any, outer: Any) -> list[Any]:
    if part.combinator:
        return _layout(part.combined_queries[0], part)
    if outer.selected is not None and part.selected is None:
        part = part.clone()  # what Django itself compiles for this part
        part.set_values(outer.selected)
    layout: list[Any] = []
    for expression in select_items(part):
        if isinstance(expression, Col) and expression.target.primary_key:
            layout.append(("pk", expression.target.model))
        elif expression is not None and (found := encrypted_item(expression)) is not None:
            layout.append(("subquery", *found) if through_subquery(expression) else found)
        else:
            layout.append(None)
    return layout


def combination_problem(query: Any) -> str:
    """Whether a set operation would combine or compare ciphertext.

    Each position of the combined select lists is decrypted with the first query's field, and
    rows are compared by their stored text: a position holding an encrypted value must hold
    the same field (and JSON path) in every query, and unless the operation is ``UNION ALL``
    the primary key of that field's model must sit at one position in all of them, so rows the
    plaintext would merge are the same rows.
    """
    what = f"a set operation ({query.combinator.upper()})"
    layouts = [_layout(part, query) for part in query.combined_queries]
    width = len(layouts[0])
    if any(len(layout) != width for layout in layouts):
        return ""  # Django refuses mismatched column counts itself
    columns = [tuple(layout[i] for layout in layouts) for i in range(width)]
    secrets = {column[0] for column in columns if any(is_secret(c) for c in column)}
    for column in columns:
        if any(is_secret(c) for c in column) and len(set(column)) != 1:
            return f"{what} combining an encrypted column with another column"
    if query.combinator == "union" and query.combinator_all:
        return ""
    for secret in secrets:
        if secret[0] == "subquery":  # no primary key says which row a subquery's value is of
            return f"{what} comparing a subquery's encrypted value"
        key = ("pk", secret[0].model)
        if not any(column == (key,) * len(layouts) for column in columns):
            return f"{what} without the row's primary key at the same position"
    return ""


def is_secret(item: Any) -> bool:
    return item is not None and item[0] != "pk"
