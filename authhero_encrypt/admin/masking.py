"""Masking JSON documents for the admin: :data:`MASK` stands in for every encrypted string.

Pure logic over parsed documents, shared by the masked form field and the list columns: a page
shows the shape of a document and its plaintext keys, never a secret's plaintext or ciphertext.
"""

from __future__ import annotations

import json
from typing import Any

from authhero_encrypt.json_paths import Path, PathTrie

__all__ = ["MASK", "leaf_at", "mask_all", "same_json"]

MASK = "********"
"""Stands in for every encrypted string of a JSON document in the change form."""


def mask_all(node: PathTrie, document: Any) -> Any:
    """``document`` with every string at an encrypted path of ``node`` replaced by :data:`MASK`."""
    return node.transform(document, lambda _path, _leaf: MASK)


def leaf_at(document: Any, path: Path) -> Any:
    """The value at ``path`` of ``document``, or ``None`` where the path is missing."""
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def same_json(a: Any, b: Any) -> bool:
    """Whether two documents are equal as Django's ``JSONField.has_changed`` compares them."""
    # Key order does not matter, and True is not 1.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
