from __future__ import annotations

import pytest

from authhero_encrypt.crypto import decrypt_value, is_encrypted
from tests.testapp.models import Secret


@pytest.mark.django_db
def test_round_trip_is_ciphertext_at_rest(raw_column):
    obj = Secret.objects.create(label="a", token="s3cr3t", notes="")
    stored = raw_column(Secret, obj.pk, "token")
    assert is_encrypted(stored)
    assert "s3cr3t" not in stored
    assert decrypt_value(stored) == "s3cr3t"
    assert is_encrypted(raw_column(Secret, obj.pk, "notes"))
    fresh = Secret.objects.get(pk=obj.pk)
    assert (fresh.token, fresh.notes) == ("s3cr3t", "")
