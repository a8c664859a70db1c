"""The counting engine behind ``manage.py encryption_status``, usable from Python::

    from authhero_encrypt.status import status

    report = status(["authhero.Connection"], using="default")
    report.plaintext_total, report.ok  # ok is what --check tests

Modules, top down: :mod:`~.engine` (``status()``), :mod:`~.aggregate` (the per-model query),
:mod:`~.dialects` (its SQL per backend), :mod:`~.verify` (streamed rows and decryption),
:mod:`~.report` (the report objects), :mod:`~.classify` (the classes, in pure Python) and
:mod:`~.render` (text and JSON).
"""

from __future__ import annotations

from authhero_encrypt.status.engine import TableReadError, status
from authhero_encrypt.status.report import KeyStatus, StatusReport, Tally

__all__ = ["KeyStatus", "StatusReport", "TableReadError", "Tally", "status"]
