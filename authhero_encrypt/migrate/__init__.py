"""The rotation engine behind ``manage.py encryption_migrate``, usable from Python::

    from authhero_encrypt.migrate import migrate

    report = migrate(["authhero.Connection"], using="default")
    if not report.ok:
        raise SystemExit("; ".join(report.problems()))

Modules, top down: :mod:`~.engine` (``migrate()``), :mod:`~.batches` (one field, batch by
batch, with retries), :mod:`~.swap` (compare-and-swap writes), :mod:`~.report` (the report
objects) and :mod:`~.render` (text, JSON and the progress line). The rules that decide what
each value becomes are in :mod:`authhero_encrypt.rotation`.
"""

from __future__ import annotations

from authhero_encrypt.migrate.engine import MigrationInterrupted, MigrationStopped, migrate
from authhero_encrypt.migrate.report import FieldReport, MigrationReport

__all__ = ["FieldReport", "MigrationInterrupted", "MigrationReport", "MigrationStopped", "migrate"]
