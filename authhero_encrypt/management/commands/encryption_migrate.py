"""``manage.py encryption_migrate``: bring every encrypted value to the active key, online.

Legacy plaintext is encrypted, values under a fallback key or another key id are re-encrypted,
values already under the active key are left byte for byte (see :mod:`authhero_encrypt.rotation`).
Blind index tags are filled where missing and moved to their key (the declared column to the
active index key, a unique index's ``_previous`` column to the oldest), before the values of
their field (see :mod:`authhero_encrypt.blind_index.migrate`).

The command is built to run against a live database:

* each field is walked in keyset batches by primary key, and each batch is written in its own
  short transaction, so no lock is held for long and memory stays flat;
* every write is a compare-and-swap (``UPDATE ... WHERE pk = %s AND col = <value read>``): a row
  that changed after it was read is never overwritten; it is re-read and retried, and whatever
  still will not settle is reported for a rerun;
* a row is rewritten whole or not at all, so stopping it at any point (Ctrl-C, ``kill -9``, a
  lost connection) leaves nothing half-written, and a rerun finishes the job.

Exit status: 0 when every value ends under the active key; ``CommandError`` (status 1) when a
value failed to decrypt, a row kept changing underneath, the database refused a row, or a
recount after the run finds values still not under the active key (written meanwhile by a
process with the old key settings), after the summary is printed. With ``--check`` (which
implies ``--dry-run``), 1 when the run would write anything, as ``makemigrations --check``.
The command parses its options and renders; the engine is :mod:`authhero_encrypt.migrate`.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.management.options import add_shared_arguments, check_database, docs_page
from authhero_encrypt.migrate import MigrationInterrupted, MigrationStopped, migrate
from authhero_encrypt.migrate.render import Progress, render_json, render_text

DOCS = docs_page("key_rotation.md")


class Command(BaseCommand):
    help = (
        "Encrypt legacy plaintext and re-encrypt values under fallback keys with the active "
        "key (ENCRYPTION_KEY / ENCRYPTION_KEY_ID), in small batches that never overwrite a "
        "concurrent change; fill missing blind index tags and move stale ones to their index "
        "key. Safe to stop and rerun. Exits with status 1 when a value fails to "
        "decrypt (it is left untouched), a row kept changing (rerun for it), or values are still "
        "not under the active key after the run; with --check, when it would write anything. "
        f"Reference: {DOCS}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_shared_arguments(parser, verb="migrate", json_doc=DOCS)
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows read and written per batch, each batch in its own transaction "
            "(default: 500).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would change and write nothing.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with status 1 when the run would write anything (a value or a blind "
            "index tag); implies --dry-run.",
        )

    def handle(
        self,
        *args: Any,
        selectors: list[str],
        database: str,
        batch_size: int,
        dry_run: bool,
        check: bool,
        format: str,
        verbosity: int,
        **options: Any,
    ) -> None:
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, not {batch_size}.")
        check_database(database)
        live = verbosity >= 1 and self.stderr.isatty()

        def progress(label: str, total: int) -> Progress:
            return Progress(self.stderr, label, total, live=live)

        try:
            report = migrate(
                selectors,
                using=database,
                batch_size=batch_size,
                dry_run=dry_run or check,
                progress=progress if live or verbosity >= 2 else None,
                log=self.stderr.write if verbosity >= 1 else None,
            )
        except (EncryptionError, LookupError) as exc:
            raise CommandError(str(exc)) from exc
        except (MigrationInterrupted, MigrationStopped) as exc:
            if live:
                self.stderr.write("")  # end the progress line
            raise CommandError(str(exc)) from exc.__cause__
        if verbosity >= 1:
            if format == "json":
                self.stdout.write(render_json(report))
            else:
                for line in render_text(report):
                    self.stdout.write(line)
        problems = report.problems()
        if problems:
            raise CommandError("; ".join(problems) + ".")
        if check and report.would_write:
            sys.exit(1)
