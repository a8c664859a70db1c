"""What a write of an indexed value costs: one HMAC per index per key generation, on every
write path, with one index key and during a change-over (the unique index keeps a tag under
the oldest key too). And ``save()`` of a row loaded without its source keeps its tag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from authhero_encrypt.blind_index import field as field_module
from tests.indexapp.models import Member
from tests.test_blind_index import ROTATING

pytestmark = pytest.mark.django_db


@pytest.fixture
def hmacs(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], Any]], int]:
    """Count the tags computed (one HMAC each) while running an action."""
    calls = []
    compute = field_module.compute_tag

    def counted(*args: Any, **kwargs: Any) -> str:
        calls.append(1)
        return compute(*args, **kwargs)

    monkeypatch.setattr(field_module, "compute_tag", counted)

    def count(action: Callable[[], Any]) -> int:
        calls.clear()
        action()
        return len(calls)

    return count


def writes(loaded: list[Member]) -> dict[str, tuple[int, Callable[[], Any]]]:
    """Each write of one email (and only the email index's source), with its row count."""
    target = {"unique_fields": ["id"]} if connection.vendor != "mysql" else {}

    def bulk_update() -> None:
        for i, member in enumerate(loaded):
            member.email = f"bu{i}@a"
        Member.objects.bulk_update(loaded, ["email"])

    return {
        "save": (1, lambda: Member(email="s@a").save()),
        "create": (1, lambda: Member.objects.create(email="c@a")),
        "bulk_create": (
            3,
            lambda: Member.objects.bulk_create([Member(email=f"b{i}@a") for i in "123"]),
        ),
        "update": (1, lambda: Member.objects.filter(pk=loaded[0].pk).update(email="u@a")),
        "save loaded": (1, lambda: loaded[1].save()),
        "bulk_update": (len(loaded), bulk_update),
        "upsert": (
            1,
            lambda: Member.objects.bulk_create(
                [Member(pk=loaded[2].pk, email="up@a")],
                update_conflicts=True,
                update_fields=["email"],
                **target,
            ),
        ),
    }


@pytest.mark.parametrize("keys", [{}, ROTATING], ids=["one key", "change-over"])
@pytest.mark.parametrize("write", list(writes([])))
def test_one_hmac_per_index_per_key_generation(
    hmacs: Callable[[Callable[[], Any]], int], keys: dict[str, Any], write: str
) -> None:
    Member.objects.bulk_create([Member(name=str(i), email=f"l{i}@a") for i in range(3)])
    loaded = list(Member.objects.order_by("pk"))
    with override_settings(**keys):
        rows, action = writes(loaded)[write]
        generations = 2 if keys else 1  # a change-over: the active key's and the oldest's
        assert hmacs(action) == rows * generations
        # And the tags were written: every row is found by its email, under the keys it has.
        for member in Member.objects.all():
            assert Member.objects.filter(email=member.email).get().pk == member.pk


def test_save_of_a_row_loaded_without_its_source_keeps_its_tag() -> None:
    Member.objects.create(name="a", email="q@a")
    member = Member.objects.defer("email").get()
    member.name = "b"
    member.email_index = "i1:" + "0" * 64  # by hand: not written, the row keeps its tag
    member.save()
    assert Member.objects.get(email="q@a").name == "b"
