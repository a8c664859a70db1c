"""Blind index rotation under load: four writers on their own connections while
``encryption_migrate`` moves the tags to a new index key (PostgreSQL and MariaDB)."""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, OperationalError, connection, connections
from django.test import override_settings

from authhero_encrypt.blind_index.swap import IndexSwapper
from authhero_encrypt.status import status
from tests.indexapp.models import Member
from tests.test_blind_index import ROTATING, raw
from tests.test_blind_index_rotation import email_tag, set_raw

pytestmark = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="concurrent writers need PostgreSQL or MariaDB"
)

WRITERS = 4


def deadlocked(exc: OperationalError) -> bool:
    """InnoDB picks a victim when two transactions lock in opposite orders (errno 1213); an
    application retries it, as these writers do."""
    return "deadlock" in str(exc).lower() or (bool(exc.args) and exc.args[0] == 1213)


def retried_on_deadlock(write: Any) -> Any:
    for _attempt in range(10):
        try:
            return write()
        except OperationalError as exc:
            if not deadlocked(exc):
                raise
            time.sleep(0.01)
    return write()


@pytest.mark.django_db(transaction=True)
def test_writers_during_an_index_key_change_over(monkeypatch: pytest.MonkeyPatch) -> None:
    seeds: dict[Any, str] = {}
    for i in range(80):
        email = f"seed{i}@x"
        pk = Member.objects.create(name=str(i), email=email).pk  # tagged under i1
        if i % 4 == 1:  # from before encryption: plaintext, no tag
            set_raw(Member, pk, email=email, email_index=None, email_index_previous=None)
        elif i % 4 == 2:  # written by AuthHero: ciphertext, no tag
            set_raw(Member, pk, email_index=None, email_index_previous=None)
        seeds[pk] = email
    anchors = [Member.objects.create(name=f"anchor{i}", email=f"anchor{i}@x").pk for i in range(5)]
    owned = sorted(seeds)

    # Rows only the hook below writes: between the pass's read of a batch and its write, it
    # has a writer on its own connection commit a new value to one of them, as a user saving
    # it at that moment would. Without the compare-and-swap that row would keep a stale tag.
    hooked = set(owned[::8])
    owned = [pk for pk in owned if pk not in hooked]
    requests: queue.Queue[Any] = queue.Queue()
    answers: queue.Queue[Any] = queue.Queue()
    original = IndexSwapper.swap

    def slow_swap(self: IndexSwapper, updates: Any) -> set[Any]:
        for update in updates:
            if update.pk in hooked:
                hooked.discard(update.pk)  # once per row, so the pass can settle it
                requests.put(update.pk)
                answers.get(timeout=30)
                break
        return original(self, updates)

    def hook_writer() -> None:
        try:
            n = 0
            while (pk := requests.get()) is not None:
                n += 1
                value = f"hook-{n}@x"
                retried_on_deadlock(
                    lambda: Member.objects.filter(pk=pk).update(email=value)  # noqa: B023
                )
                last[pk] = value
                answers.put(pk)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            answers.put(None)
        finally:
            connections.close_all()

    monkeypatch.setattr(IndexSwapper, "swap", slow_swap)
    last: dict[Any, str] = {}
    accepted_duplicates: list[str] = []
    refused = [0]
    errors: list[BaseException] = []
    stop = threading.Event()

    def write(n: int) -> None:
        mine = owned[n::WRITERS]  # each row has one writer, so its last value is well defined
        rng = random.Random(n)
        try:
            i = 0
            while not stop.is_set():
                i += 1
                choice = i % 5
                if choice == 4:
                    # A duplicate of a value every row of which is tagged: refused at every
                    # moment, whichever column holds the key it is under.
                    taken = f"ANCHOR{rng.randrange(len(anchors))}@X "
                    try:
                        retried_on_deadlock(
                            lambda: Member.objects.create(name="dup", email=taken)  # noqa: B023
                        )
                        accepted_duplicates.append(taken)
                    except IntegrityError:
                        refused[0] += 1
                    continue
                value = f"w{n}-{i}@x"
                if choice == 3:
                    pk = retried_on_deadlock(
                        lambda: Member.objects.create(name=f"new{n}", email=value).pk  # noqa: B023
                    )
                elif choice == 2:
                    pk = rng.choice(mine)

                    def save(pk: Any = pk, value: str = value) -> None:
                        member = Member.objects.get(pk=pk)
                        member.email = value
                        member.save()

                    retried_on_deadlock(save)
                else:
                    pk = rng.choice(mine)
                    retried_on_deadlock(
                        lambda: Member.objects.filter(pk=pk).update(email=value)  # noqa: B023
                    )
                last[pk] = value
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    with override_settings(**ROTATING):
        threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
        threads.append(threading.Thread(target=hook_writer))
        for thread in threads:
            thread.start()
        retried = 0
        try:
            time.sleep(0.1)
            finished = False
            problems: list[str] = []
            for _attempt in range(6):
                out = StringIO()
                try:
                    call_command(
                        "encryption_migrate",
                        "indexapp.Member",
                        batch_size=5,
                        format="json",
                        stdout=out,
                    )
                    finished = True
                except CommandError as exc:  # rows that kept changing: a rerun picks them up
                    problems.append(str(exc))
                except OperationalError as exc:  # a deadlock victim: the run resumes
                    if not deadlocked(exc):
                        raise
                    problems.append(str(exc))
                    continue
                retried += json.loads(out.getvalue())["index_totals"]["retried"]
                if finished:
                    break
        finally:
            stop.set()
            requests.put(None)
            for thread in threads:
                thread.join()
        assert not errors, errors
        assert finished, problems
        assert not accepted_duplicates
        assert refused[0] > 0

        # No lost update: every row holds the last value its writer gave it.
        expected = {**seeds, **last, **{pk: f"anchor{i}@x" for i, pk in enumerate(anchors)}}
        stored = dict(Member.objects.values_list("pk", "email"))
        assert stored == expected
        # No stale tag: every row's tags are those of its plaintext, under the active key and
        # under the oldest, whether the run or a writer (after the run went past) wrote them.
        for pk, email in expected.items():
            assert raw(pk, "email_index") == email_tag("i2", email), pk
            assert raw(pk, "email_index_previous") == email_tag("i1", email), pk
            assert raw(pk, "email").startswith("enc:v1:"), pk
        assert retried > 0  # the writers did get in the way
        checked = status(["indexapp.Member"], verify=True)
        assert checked.indexes_ok
        assert next(t for t in checked.indexes if t.index.name == "email_index").checked == len(
            expected
        )
