"""Normalizers: what a blind index does to a value before it is tagged.

A normalizer decides which plaintexts an index treats as equal (``casefold`` makes
``Bob@Example.com`` and ``bob@example.com`` one value). Indexes name them in ``normalize=``, by
the names below or as module-level functions ``str -> str``; either is written into the
migration as given, so a migration records exactly how its tags were made. Changing them changes
every tag: ``encryption_migrate`` recomputes the index afterwards.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence

__all__ = ["NORMALIZERS", "Normalizer", "NormalizerSpec", "compose", "folds_case", "resolve"]

Normalizer = Callable[[str], str]
NormalizerSpec = str | Normalizer

_SPACES = re.compile(r"\s+")
_NOT_DIGITS = re.compile(r"\D+")


def _digits(value: str) -> str:
    # ASCII digits only: "+1 (555) 010-9999" and "15550109999" are one phone number.
    return "".join(c for c in _NOT_DIGITS.sub("", value) if "0" <= c <= "9")


NORMALIZERS: dict[str, Normalizer] = {
    "strip": str.strip,
    "casefold": str.casefold,
    "lower": str.lower,
    "nfkc": lambda value: unicodedata.normalize("NFKC", value),
    "collapse_whitespace": lambda value: _SPACES.sub(" ", value).strip(),
    "digits": _digits,
}
# The normalizers after which ``iexact`` and ``exact`` ask the same question of the index.
_CASE_FOLDING = frozenset({"casefold", "lower"})


def resolve(specs: Iterable[NormalizerSpec]) -> tuple[Normalizer, ...]:
    """The functions ``specs`` name, in order; ``ValueError`` for an unknown name or a lambda."""
    functions: list[Normalizer] = []
    for spec in specs:
        if isinstance(spec, str):
            if spec not in NORMALIZERS:
                known = ", ".join(sorted(NORMALIZERS))
                raise ValueError(f"Unknown normalizer {spec!r}; the known ones are {known}.")
            functions.append(NORMALIZERS[spec])
        elif callable(spec):
            if getattr(spec, "__name__", "<lambda>") == "<lambda>":
                raise ValueError(
                    "A normalizer must be a name or a module-level function: migrations record "
                    "it, and a lambda cannot be written into one."
                )
            functions.append(spec)
        else:
            raise ValueError(
                f"A normalizer is a name or a function str -> str, not {type(spec).__name__}."
            )
    return tuple(functions)


def as_specs(value: NormalizerSpec | Sequence[NormalizerSpec] | None) -> tuple[NormalizerSpec, ...]:
    """``normalize=`` as a tuple: one name or function, or a sequence of them."""
    if value is None:
        return ()
    if isinstance(value, str) or callable(value):
        return (value,)
    return tuple(value)


def compose(functions: Sequence[Normalizer]) -> Normalizer:
    def normalize(value: str) -> str:
        for function in functions:
            value = function(value)
        return value

    return normalize


def folds_case(specs: Iterable[NormalizerSpec]) -> bool:
    """Whether the index treats values that differ only in case as equal."""
    return any(isinstance(spec, str) and spec in _CASE_FOLDING for spec in specs)
