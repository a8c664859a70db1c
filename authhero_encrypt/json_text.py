"""JSON text read and written back exactly, but for the values that are meant to change.

``encryption_migrate`` rewrites the secret leaves of stored documents. Going through Python's
``float`` would change the others: ``3.141592653589793238462643383279`` would lose digits and
``1e400`` would become ``Infinity``, which no JSON column accepts. Here every number (and any
``NaN`` / ``Infinity`` constant) is kept as its source text, and strings, objects (in their key
order), arrays and literals are written back as Django's ``JSONField`` writes them.

Pure Python, no Django.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["RawNumber", "dumps_exact", "loads_exact"]


class RawNumber:
    """A JSON number (or constant) kept as the text it was read from."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"RawNumber({self.text!r})"


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON text; numbers become :class:`RawNumber`, everything else as ``json.loads``."""
    return json.loads(text, parse_float=RawNumber, parse_int=RawNumber, parse_constant=RawNumber)


def dumps_exact(value: Any) -> str:
    """Serialise what :func:`loads_exact` returned (with any strings changed) as JSON text.

    The separators and the ASCII escaping are ``json.dumps``'s defaults, which are what
    Django's ``JSONField`` writes, so an unchanged document comes back as it was written.
    """
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, RawNumber):
        return value.text
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        items = (f"{json.dumps(key)}: {dumps_exact(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dumps_exact(item) for item in value) + "]"
    raise TypeError(f"dumps_exact cannot write a {type(value).__name__}.")
