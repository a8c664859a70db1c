"""The options ``encryption_status`` and ``encryption_migrate`` share, declared once."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

__all__ = ["add_shared_arguments", "check_database", "docs_page"]


def docs_page(name: str) -> str:
    """Where a reference page is, for ``--help``: the package has no public web site yet, and
    the pages ship in the source distribution, not in the wheel."""
    return f"docs/{name} in the authhero-encrypt source distribution (sdist) or source tree"


def add_shared_arguments(parser: CommandParser, *, verb: str, json_doc: str) -> None:
    """``app_label[.Model] ...``, ``--database`` and ``--format text|json``.

    ``verb`` is what the command does to the selection ("inspect", "migrate"); ``json_doc``
    names the page that describes its JSON output.
    """
    parser.add_argument(
        "selectors",
        nargs="*",
        metavar="app_label[.Model]",
        help="Only these apps or models (default: every installed model).",
    )
    parser.add_argument(
        "--database",
        default=DEFAULT_DB_ALIAS,
        help=f'The database alias to {verb} (default: "default").',
    )
    parser.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help=f"text (the default) or json (see {json_doc}).",
    )


def check_database(database: str) -> None:
    """Refuse an alias that is not in ``DATABASES``, with a ``CommandError``."""
    if database not in connections:
        raise CommandError(f"Unknown database alias {database!r}; see settings.DATABASES.")
