"""Blind index rotation under load: four writers on their own connections while
``encryption_migrate`` moves the tags to a new index key (PostgreSQL)."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections
from django.test import override_settings

from authhero_encrypt.blind_index.swap import IndexSwapper
from authhero_encrypt.migrate import migrate
from authhero_encrypt.status import status
from tests.indexapp.models import Member
from tests.test_blind_index import ROTATING, raw
from tests.test_blind_index_rotation import email_tag, set_raw

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers: run on PostgreSQL"
)

WRITERS = 4


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

    # Widen the gap between the pass's read and its write, where a writer can get in.
    original = IndexSwapper.swap

    def slow_swap(self: IndexSwapper, updates: Any) -> set[Any]:
        time.sleep(0.02)
        return original(self, updates)

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
                        Member.objects.create(name="dup", email=taken)
                        accepted_duplicates.append(taken)
                    except IntegrityError:
                        refused[0] += 1
                    continue
                value = f"w{n}-{i}@x"
                if choice == 3:
                    pk = Member.objects.create(name=f"new{n}", email=value).pk
                elif choice == 2:
                    pk = rng.choice(mine)
                    member = Member.objects.get(pk=pk)
                    member.email = value
                    member.save()
                else:
                    pk = rng.choice(mine)
                    Member.objects.filter(pk=pk).update(email=value)
                last[pk] = value
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    with override_settings(**ROTATING):
        threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        retried = 0
        try:
            time.sleep(0.1)
            for _attempt in range(4):
                report = migrate(["indexapp.Member"], batch_size=5)
                retried += sum(r.retried for r in report.indexes)
                if not report.index_problems():
                    break
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not errors, errors
        assert not report.index_problems(), report.index_problems()
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
