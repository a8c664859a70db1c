"""Closing the chunked cursor a failed read leaves suspended.

``QuerySet.iterator()`` (and so ``dumpdata``) reads through Django's ``cursor_iter`` generator,
which closes its cursor in a ``finally`` when it is finished or collected. When a field's
converter raises, the traceback keeps the frames that hold that generator alive, and with them
the open cursor: a command such as ``dumpdata`` prints its error, closes the database
connections, and only then drops the exception, so the cursor's close fails on a closed
connection and Python prints ``Exception ignored in: <generator object cursor_iter ...>``
after the real error. The iteration is over once the converter has raised (the exception goes
through the generators that drive it), so the read error closes that cursor before it leaves.
"""

from __future__ import annotations

import gc
import inspect
import itertools
import os
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["close_suspended_cursors"]

# Django's generator over a chunked cursor (django/db/models/sql/compiler.py), and where the
# frames that drive it live. Only those frames are looked into: reading ``f_locals`` of any
# other running frame would keep its variables alive after the caller deletes them.
_CURSOR_ITER = "cursor_iter"
_DJANGO_DB = os.path.join("django", "db", "")
# ``values()`` and ``values_list()`` wrap the cursor in ``chain`` and ``map`` objects.
_WRAPPERS = (itertools.chain, map)


def _cursor_iters(value: Any, depth: int = 3) -> Iterator[Any]:
    if inspect.isgenerator(value):
        if value.gi_code.co_name == _CURSOR_ITER:
            yield value
    elif depth and isinstance(value, _WRAPPERS):
        for inner in gc.get_referents(value):
            yield from _cursor_iters(inner, depth - 1)


def close_suspended_cursors() -> int:
    """Close every suspended ``cursor_iter`` generator that a Django query frame of the calling
    stack is reading from; returns how many were closed."""
    closed = 0
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if _DJANGO_DB in frame.f_code.co_filename:
            for value in list(frame.f_locals.values()):
                for generator in _cursor_iters(value):
                    if inspect.getgeneratorstate(generator) == inspect.GEN_SUSPENDED:
                        generator.close()  # its ``finally`` closes the cursor while it can
                        closed += 1
        frame = frame.f_back
    return closed
