"""How the status report classifies stored values, in pure Python (no Django, no database).

The aggregate query sorts each stored value into a class code and counts the codes;
:func:`decode` turns those counts into encrypted / plaintext / empty / null. The rows that are
streamed instead (``*`` paths, ``--verify``) are classified one value at a time with
:func:`value_class`, from the values :func:`values_at` finds in a row: both definitions agree,
which the tests check on every backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authhero_encrypt.crypto import PREFIX
from authhero_encrypt.json_paths import WILDCARD, Path

__all__ = [
    "EMPTY_CODE",
    "KNOWN_CODE",
    "OTHER_CODE",
    "PLAINTEXT_CODE",
    "UNTAGGED_CODE",
    "Classes",
    "decode",
    "value_class",
    "values_at",
]

# The class the aggregate query sorts each stored value into; no class (NULL) is ``null``.
UNTAGGED_CODE = 1  # prefixed, without a key id
OTHER_CODE = 2  # prefixed, with a key id that is not configured (named by a second query)
EMPTY_CODE = 3
PLAINTEXT_CODE = 4
KNOWN_CODE = 5  # and up: prefixed with the n-th configured key id

_MISSING = object()


@dataclass(frozen=True)
class Classes:
    """The counts of one target, decoded from the histogram of its class codes."""

    encrypted: int
    plaintext: int  # "" included: it is legacy plaintext too
    empty: int
    null: int
    untagged: int
    other: int  # under key ids that are not configured: named by a second query
    known: tuple[int, ...]  # per configured key id, in the order the query numbered them


def decode(codes: Mapping[int, int], rows: int, known_ids: int) -> Classes:
    """The counts behind ``codes`` (class code -> values) of a table of ``rows`` rows with
    ``known_ids`` configured key ids; ``null`` is what is left of the rows."""
    known = tuple(codes.get(KNOWN_CODE + n, 0) for n in range(known_ids))
    untagged, other = codes.get(UNTAGGED_CODE, 0), codes.get(OTHER_CODE, 0)
    encrypted = untagged + other + sum(known)
    empty = codes.get(EMPTY_CODE, 0)
    plaintext = codes.get(PLAINTEXT_CODE, 0) + empty
    null = rows - encrypted - plaintext
    return Classes(encrypted, plaintext, empty, null, untagged, other, known)


def value_class(value: Any) -> str:
    """``"null"``, ``"encrypted"``, ``"empty"`` or ``"plaintext"`` for one streamed value, as
    the SQL sorts it: anything but a string (a number, an object, SQL NULL, no value at the
    path) is null, and ``""`` is legacy plaintext that is also counted as empty."""
    if not isinstance(value, str):
        return "null"
    if value.startswith(PREFIX):
        return "encrypted"
    return "empty" if value == "" else "plaintext"


def _walk(document: Any, segments: Sequence[str]) -> Any:
    for segment in segments:
        if not isinstance(document, dict):
            return _MISSING
        document = document.get(segment, _MISSING)
    return document


def values_at(path: Path | None, stored: Any) -> Iterator[Any]:
    """The values at ``path`` in one row: the column's (``path`` is ``None``), or for a JSON
    field (``stored`` is then the parsed document) the one at the path, or every one in the
    object for a ``*`` path."""
    if path is None:
        yield stored.decode("utf-8") if isinstance(stored, (bytes, bytearray)) else stored
        return
    if path[-1] != WILDCARD:
        yield _walk(stored, path)
        return
    parent = _walk(stored, path[:-1])
    if isinstance(parent, dict):
        yield from parent.values()
    else:
        yield None  # no object to hold values: one null for the row, as a fixed path counts
