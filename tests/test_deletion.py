"""A delete never needs the plaintext: rows whose secrets no longer decrypt can be deleted.

The stored values are sealed under a key that is not configured (KEY_C), as after a key was
dropped from the ring too early. Deleting works with and without signal receivers (which make
Django load the rows), directly and in cascade; reading the value still raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_delete, pre_delete
from django.test import override_settings

from authhero_encrypt.crypto import encrypt_value
from authhero_encrypt.envelope.codec import seal
from authhero_encrypt.envelope.config import active_provider
from authhero_encrypt.exceptions import DecryptionError
from tests.keys import KEY_C
from tests.testapp.models import GuardAccount, GuardPremiumAccount, GuardVaultItem

pytestmark = pytest.mark.django_db


def write_raw(model: Any, pk: object, column: str, value: str) -> None:
    qn = connection.ops.quote_name
    table, pk_column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(table)} SET {qn(column)} = %s WHERE {qn(pk_column)} = %s", [value, pk]
        )


def count(model: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(model._meta.db_table)}")
        return int(cursor.fetchone()[0])


@pytest.fixture
def foreign() -> dict[str, str]:
    """Values no configured key opens: enc:v1, a JSON document holding one, and env:v1."""
    with override_settings(ENCRYPTION_KEY=KEY_C):
        value = encrypt_value("lost")
        pem = seal(active_provider(), "lost pem", "testapp.guardvaultitem.pem")
    return {"enc": value, "json": f'{{"client_secret": "{value}"}}', "env": pem}


@pytest.fixture
def undecryptable(foreign: dict[str, str]) -> GuardAccount:
    account = GuardAccount.objects.create(name="a", client_secret="s", options={"client_id": "x"})
    write_raw(GuardAccount, account.pk, "client_secret", foreign["enc"])
    write_raw(GuardAccount, account.pk, "options", foreign["json"])
    for _ in range(2):
        item = GuardVaultItem.objects.create(account=account, secret="s", pem="p")
        write_raw(GuardVaultItem, item.pk, "secret", foreign["enc"])
        write_raw(GuardVaultItem, item.pk, "pem", foreign["env"])
    with pytest.raises(DecryptionError):
        GuardAccount.objects.get(pk=account.pk)
    with pytest.raises(DecryptionError):
        list(GuardVaultItem.objects.all())
    return account


@pytest.fixture(params=["no receivers", "receivers"])
def receivers(request: Any) -> Iterator[list[tuple[str, Any]]]:
    """With receivers Django loads every row it deletes (the case that used to fail)."""
    seen: list[tuple[str, Any]] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append((sender.__name__, instance.pk))

    if request.param == "receivers":
        for signal in (pre_delete, post_delete):
            for model in (GuardAccount, GuardVaultItem):
                signal.connect(receiver, sender=model, weak=False, dispatch_uid=id(model))
    yield seen
    for signal in (pre_delete, post_delete):
        for model in (GuardAccount, GuardVaultItem):
            signal.disconnect(sender=model, dispatch_uid=id(model))


def test_a_queryset_delete_of_undecryptable_rows_cascades(undecryptable, receivers):
    deleted, per_model = GuardAccount.objects.filter(pk=undecryptable.pk).delete()
    assert deleted == 3
    assert per_model == {"testapp.GuardAccount": 1, "testapp.GuardVaultItem": 2}
    assert (count(GuardAccount), count(GuardVaultItem)) == (0, 0)
    if receivers:
        assert len(receivers) == 6  # pre and post for the account and both items


def test_deleting_the_undecryptable_children_alone(undecryptable, receivers):
    assert GuardVaultItem.objects.all().delete()[0] == 2
    assert (count(GuardAccount), count(GuardVaultItem)) == (1, 0)


def test_an_instance_delete_with_the_secret_deferred(undecryptable, receivers):
    account = GuardAccount.objects.defer("client_secret", "options").get(pk=undecryptable.pk)
    account.delete()
    assert (count(GuardAccount), count(GuardVaultItem)) == (0, 0)


def test_a_multi_table_child_with_an_undecryptable_parent_secret(foreign):
    row = GuardPremiumAccount.objects.create(name="p", client_secret="s", api_key="k")
    write_raw(GuardAccount, row.pk, "client_secret", foreign["enc"])
    write_raw(GuardPremiumAccount, row.pk, "api_key", foreign["enc"])
    GuardPremiumAccount.objects.all().delete()
    assert (count(GuardAccount), count(GuardPremiumAccount)) == (0, 0)


def test_a_receiver_that_reads_the_secret_still_gets_the_decryption_error(undecryptable):
    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        instance.client_secret  # noqa: B018 - the read is the point

    pre_delete.connect(receiver, sender=GuardAccount, weak=False, dispatch_uid="reads")
    try:
        with (
            pytest.raises(DecryptionError, match=r"GuardAccount\.client_secret"),
            transaction.atomic(),
        ):
            GuardAccount.objects.all().delete()
    finally:
        pre_delete.disconnect(sender=GuardAccount, dispatch_uid="reads")
    assert count(GuardAccount) == 1
