"""``manage.py encryption_status``: how many values are encrypted, legacy plaintext or empty.

Every encrypted field of every installed model (and every declared path of a JSON field) is
counted in the database: one aggregate query per model covers its scalar fields and fixed JSON
paths, with prefix tests on the stored text, so no row is loaded into Python however large the
table. ``*`` paths (whose keys the database cannot enumerate portably) and ``--verify`` (which
must decrypt) stream the rows in keyset-paginated batches instead, in constant memory.

The default run never needs the key: it only looks at prefixes. That is what lets it diagnose a
deployment whose key settings are broken; the key problem is reported in the key section.

Exit status: 0; with ``--check``, 1 when any plaintext remains, when values are under a key id
that is not configured (or fail to decrypt, with ``--verify``), when the key settings cannot
open what is stored, or when a blind index tag is missing, stale or (with ``--verify``) wrong,
after the report is printed, as ``makemigrations --check`` does. With
``--require-active-key`` (which implies ``--check``), also 1 while any encrypted value is not
shown to be under the active key: the gate before an old key is dropped.
The command parses its options and renders; the engine is :mod:`authhero_encrypt.status`.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.management.options import add_shared_arguments, check_database, docs_page
from authhero_encrypt.status import TableReadError, status
from authhero_encrypt.status.render import render_json, render_text

DOCS = docs_page("encryption_status.md")


class Command(BaseCommand):
    help = (
        "Count, per model, field and JSON path, the values stored encrypted, as legacy "
        "plaintext, empty and NULL, and the key ids of the encrypted ones; per blind index, "
        "the tags filled, missing and stale, per index key id, and a leakage figure. Counts "
        "in SQL; "
        f"--verify also decrypts every value. Reference: {DOCS}."
    )
    # Must run with broken key settings: diagnosing them is one of its jobs.
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        add_shared_arguments(parser, verb="inspect", json_doc=DOCS)
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with status 1 when any plaintext remains, when values are under a key "
            "id that is not configured, when the key settings are invalid, or when encrypted "
            "values exist and no key is configured, or when a blind index tag is missing or not "
            "under its key (with --verify: also when any value fails to decrypt or a tag does "
            "not match its value).",
        )
        parser.add_argument(
            "--require-active-key",
            action="store_true",
            help="As --check, and also exit with status 1 while any encrypted value is not "
            "under the active key: under a fallback or another key id, or without a key id "
            "while fallback keys are configured (add --verify to have those opened and "
            "attributed). Run it before dropping an old key.",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Also decrypt every encrypted value, in batches, and report those that fail. "
            "Needs the key.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows per batch when rows are streamed (* paths, --verify); default 1000.",
        )

    def handle(
        self,
        *args: Any,
        selectors: list[str],
        database: str,
        format: str,
        check: bool,
        require_active_key: bool,
        verify: bool,
        batch_size: int,
        verbosity: int,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be a positive number of rows.")
        check_database(database)
        try:
            report = status(
                selectors,
                using=database,
                verify=verify,
                batch_size=batch_size,
                progress=self.stderr.write if verbosity >= 2 else None,
                require_active_key=require_active_key,
            )
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        except (EncryptionError, TableReadError) as exc:
            raise CommandError(str(exc)) from exc
        if verbosity >= 1:
            if format == "json":
                self.stdout.write(render_json(report))
            else:
                for line in render_text(report):
                    self.stdout.write(line)
        if (check and not report.ok) or (require_active_key and not report.on_active_key):
            sys.exit(1)
