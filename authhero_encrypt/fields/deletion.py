"""Deleting rows whose secrets no longer decrypt: a delete never needs the plaintext.

``QuerySet.delete()`` and cascades load the rows they delete whenever a signal receiver or a
relation needs the instances (``Collector.collect``), and loading decrypts every encrypted column.
A value that no configured key opens would then make the row impossible to delete. A read that
fails inside that fetch leaves the field deferred instead, as ``.defer()`` would: the row is
deleted by its primary key, and a ``pre_delete`` / ``post_delete`` receiver that reads the field
loads it again and gets the usual ``DecryptionError``. Any other read still raises at once.
"""

from __future__ import annotations

import sys
from types import FrameType

from django.db.models.base import DEFERRED
from django.db.models.deletion import Collector

__all__ = ["DEFERRED", "deleting"]

_COLLECT = Collector.collect.__code__
_OURS = ("django.", "authhero_encrypt.")


def deleting() -> bool:
    """Whether the failing read is a deletion's fetch, with no code of the project in between.

    Only called on the error path. The walk stops at the first frame outside Django and this
    package: a read made by project code (an ``on_delete`` callable, a receiver) is not a
    deletion's fetch and still raises.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _COLLECT:
            return True
        if not frame.f_globals.get("__name__", "").startswith(_OURS):
            return False
        frame = frame.f_back
    return False
