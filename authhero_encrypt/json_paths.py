"""Which leaves of a JSON document are secret, following AuthHero's rules.

A path is dot-separated object keys: ``"client_secret"``, ``"configuration.client_secret"``. A
``*`` as the last segment stands for every string value directly in that object (``"*"``: the top
level, ``"configuration.*"``: inside ``configuration``); it does not recurse into nested objects or
arrays. Only string values are secret (``""`` included): numbers, booleans, null, objects and
arrays at a listed path are left alone, and a missing path or parent is never created.

Pure Python, no Django: the field, the status and migration commands and the admin share it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["WILDCARD", "Path", "PathTrie", "parse_paths", "path_text"]

WILDCARD = "*"
Path = tuple[str, ...]


def parse_paths(paths: object) -> tuple[Path, ...]:
    """Validate an ``encrypted_paths`` declaration, raising ``ValueError`` for a malformed one."""
    if isinstance(paths, str) or not isinstance(paths, Sequence):
        raise ValueError(
            "encrypted_paths must be a list of dot-separated key paths, e.g. "
            f'["client_secret", "configuration.client_secret"], not {type(paths).__name__}.'
        )
    if not paths:
        raise ValueError(
            "encrypted_paths is empty, so nothing would be encrypted; list at least one path "
            '(or "*" for every top-level string), or use models.JSONField.'
        )
    parsed: list[Path] = []
    for index, path in enumerate(paths):
        if not isinstance(path, str):
            raise ValueError(
                f"encrypted_paths[{index}] must be a string, not {type(path).__name__}."
            )
        segments = tuple(path.split("."))
        if any(segment == "" for segment in segments):
            raise ValueError(
                f"encrypted_paths[{index}] = {path!r} has an empty segment; write keys "
                'separated by single dots, e.g. "configuration.client_secret".'
            )
        if WILDCARD in segments[:-1]:
            raise ValueError(
                f"encrypted_paths[{index}] = {path!r} uses '*' before the last segment; '*' "
                'may only end a path ("*" or "configuration.*").'
            )
        if segments not in parsed:
            parsed.append(segments)
    return tuple(parsed)


def path_text(path: Path) -> str:
    return ".".join(path)


class PathTrie:
    """The declared paths as a tree, so one walk of a document visits every secret leaf.

    A node says which of its keys are secret leaves (``leaves``), whether every string directly
    in it is (``wildcard``), and which keys lead further down (``children``); ``path`` is where
    the node sits, from the root.
    """

    __slots__ = ("children", "leaves", "path", "wildcard")

    def __init__(self, path: Path = ()) -> None:
        self.children: dict[str, PathTrie] = {}
        self.leaves: set[str] = set()
        self.wildcard = False
        self.path = path

    @classmethod
    def build(cls, paths: Sequence[Path]) -> PathTrie:
        root = cls()
        for path in paths:
            node = root
            for segment in path[:-1]:
                node = node.children.setdefault(segment, cls((*node.path, segment)))
            if path[-1] == WILDCARD:
                node.wildcard = True
            else:
                node.leaves.add(path[-1])
        return root

    def is_secret(self, key: str) -> bool:
        """Whether a string stored under ``key`` in an object at this node is encrypted."""
        return self.wildcard or key in self.leaves

    def child(self, key: str) -> PathTrie | None:
        return self.children.get(key)

    def node_at(self, path: Sequence[str]) -> PathTrie | None:
        """The node for the object at ``path``, or ``None`` when nothing below it is secret."""
        node: PathTrie | None = self
        for key in path:
            if node is None:
                break
            node = node.child(key)
        return node

    def transform(
        self,
        document: Any,
        fn: Callable[[Path, str], str],
        *,
        copy: bool = True,
        _at: Path = (),
    ) -> Any:
        """Return ``document`` with ``fn(path, value)`` applied to every secret string leaf.

        With ``copy`` (the default) every object on the way to a changed leaf is copied and the
        caller's document is left untouched; without it the document is changed in place, which
        is right only for one nobody else holds (just parsed from the database).
        """
        if not isinstance(document, dict):
            return document
        changes: dict[str, Any] = {}
        for key, value in document.items():
            if isinstance(value, str):
                if self.wildcard or key in self.leaves:
                    changes[key] = fn((*_at, key), value)
            elif key in self.children and isinstance(value, dict):
                new = self.children[key].transform(value, fn, copy=copy, _at=(*_at, key))
                if new is not value:
                    changes[key] = new
        if not changes:
            return document
        target = dict(document) if copy else document
        target.update(changes)
        return target

    def replace_in_place(self, document: Any, fn: Callable[[Path, str, str], str]) -> None:
        """Set every secret string leaf of ``document`` to ``fn(parent path, key, value)``.

        The read hot path: the document was just parsed and nobody else holds it. Only the
        declared keys are looked up (every key only under a wildcard), and the paths, fixed per
        node, are not built per value: ``fn`` gets the parent's path and the key.
        """
        if not isinstance(document, dict):
            return
        if self.wildcard:
            for key, value in document.items():
                if isinstance(value, str):
                    document[key] = fn(self.path, key, value)  # no new key: safe while iterating
        else:
            for key in self.leaves:
                value = document.get(key)
                if isinstance(value, str):
                    document[key] = fn(self.path, key, value)
        for key, child in self.children.items():
            value = document.get(key)
            if isinstance(value, dict):
                child.replace_in_place(value, fn)

    def secrets(self, document: Any, _at: Path = ()) -> Iterator[tuple[Path, str]]:
        """Every secret string leaf of ``document`` with its concrete path."""
        if not isinstance(document, dict):
            return
        for key, value in document.items():
            if isinstance(value, str):
                if self.wildcard or key in self.leaves:
                    yield (*_at, key), value
            elif key in self.children:
                yield from self.children[key].secrets(value, (*_at, key))

    def text_documents(self, document: Any, _at: Path = ()) -> Iterator[Path]:
        """Where ``document`` holds JSON text that parses to an object reaching a secret.

        A document handed over as a string (``Value('{"client_secret": "x"}')``, or the same
        text assigned to the field) is stored as one JSON string, so the secret inside it would
        be written in the clear. A string at a secret leaf is encrypted whole, so only strings
        where an object with secrets below it belongs are looked at.
        """
        if isinstance(document, str):
            parsed = _parse_object(document)
            if parsed is not None and (
                next(self.secrets(parsed), None) is not None
                or next(self.text_documents(parsed), None) is not None
            ):
                yield _at
            return
        if not isinstance(document, dict):
            return
        for key, value in document.items():
            child = self.children.get(key)
            if child is not None and not (isinstance(value, str) and self.is_secret(key)):
                yield from child.text_documents(value, (*_at, key))

    def containment_conflicts(self, document: Any, _at: Path = ()) -> Iterator[Path]:
        """Where a ``contains`` / ``contained_by`` document could match a secret's plaintext.

        A string at a secret leaf is compared with ciphertext. So is an array there, or an
        array where an object with secrets belongs: MySQL and MariaDB match a value against the
        elements of an array (``JSON_CONTAINS('["s"]', '"s"')`` is true), so the answer would
        depend on the plaintext. Numbers, booleans, null and objects never equal a string, so
        the answer is the same for ciphertext and plaintext.
        """
        if isinstance(document, list):
            yield _at
            return
        if not isinstance(document, dict):
            return
        for key, value in document.items():
            if self.is_secret(key) and isinstance(value, (str, list)):
                yield (*_at, key)
            elif key in self.children:
                yield from self.children[key].containment_conflicts(value, (*_at, key))


def _parse_object(text: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
