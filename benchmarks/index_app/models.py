"""The two tables ``benchmarks/blind_index_benchmark.py`` looks members up in: an encrypted email
with a blind index, and its plaintext twin with an ordinary index."""

from __future__ import annotations

from django.db import models

from authhero_encrypt.blind_index import BlindIndexField
from authhero_encrypt.fields import EncryptedCharField


class IndexedMember(models.Model):
    """An encrypted email, unique after strip and casefold, found through its blind index."""

    email = EncryptedCharField(max_length=254)
    email_index = BlindIndexField("email", normalize=["strip", "casefold"], unique=True)

    class Meta:
        app_label = "index_app"
        db_table = "bench_indexed_member"

    def __str__(self) -> str:
        return f"IndexedMember {self.pk}"


class PlainMember(models.Model):
    """The same email in plaintext, with an ordinary b-tree index: the yardstick."""

    email = models.CharField(max_length=254, db_index=True)

    class Meta:
        app_label = "index_app"
        db_table = "bench_plain_member"

    def __str__(self) -> str:
        return f"PlainMember {self.pk}"
