"""Code that uses the sample models; tests/test_typing.py asserts what mypy reveals on each line.

Each ``reveal_type`` line ends with the type expected; ``# error`` marks a line mypy must refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.typing.sample_app.models import Client

if TYPE_CHECKING:
    from typing_extensions import reveal_type


def attributes(c: Client) -> None:
    reveal_type(c.client_secret)  # str
    reveal_type(c.backup_secret)  # str | None
    reveal_type(c.notes)  # str
    reveal_type(c.old_notes)  # str | None
    reveal_type(c.private_key)  # str
    reveal_type(c.old_private_key)  # str | None
    reveal_type(c.options)  # Any
    reveal_type(c.old_options)  # Any | None
    reveal_type(c.plain_options)  # Any
    reveal_type(c.typed_options)  # dict[str, Any]
    reveal_type(c.typed_plain_options)  # dict[str, Any]


def writes(c: Client, options: dict[str, Any]) -> None:
    c.client_secret = "new"
    c.backup_secret = None
    c.typed_options = options
    n: int = c.client_secret  # noqa: F841 # error
    c.notes = None  # error


def queries() -> None:
    # Refused at run time (FieldError when filter() builds them); mypy must not crash on them.
    clients = Client.objects.filter(client_secret__icontains="x")
    reveal_type(clients)  # QuerySet[Client, Client]
    by_leaf = Client.objects.filter(options__client_secret__icontains="x")
    reveal_type(by_leaf.first())  # Client | None
    reveal_type(Client.objects.filter(notes__lower__exact="x").count())  # int
    # Allowed: isnull, and plaintext JSON keys.
    reveal_type(Client.objects.filter(backup_secret__isnull=True).get())  # Client
    ids = Client.objects.filter(options__client_id="x").values_list("pk", flat=True)
    reveal_type(ids)  # QuerySet[Client, int]
