from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from example_project.authhero.demo_data import DEMO_ROWS, load_demo_data


class Command(BaseCommand):
    help = (
        "Create the demo rows of the example project, some of them as legacy plaintext written "
        "with raw SQL. Rows that already exist are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database", default="default", help="The database to load into (default: default)."
        )

    def handle(self, *args: Any, database: str, verbosity: int, **options: Any) -> None:
        created, legacy = load_demo_data(using=database)
        if verbosity:
            if created:
                self.stdout.write(
                    f"Loaded {created} demo rows; {legacy} of those rows keep their secrets "
                    "as legacy plaintext, written raw as before encryption was switched on "
                    "(encryption_status counts values: a row may hold several)."
                )
            else:
                self.stdout.write(f"The {len(DEMO_ROWS)} demo rows are already loaded.")
