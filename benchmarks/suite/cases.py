"""The timed cases and the comparisons made between them.

A case is one thing timed once per repetition (a loop of codec calls, one ORM query, one
``bulk_create``); a comparison is the ratio of two cases, computed repetition by repetition so
that both sides of each ratio ran close together in time.
"""

from __future__ import annotations

import base64
import binascii
import gc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Model

from authhero_encrypt.crypto import decrypt_value, encrypt_value
from authhero_encrypt.keys import load_encryption_key
from benchmarks.suite import models

OURS = "authhero_encrypt"
PLAIN = "plain"
CONVERTER_ONLY = "converter-only"
IV_BYTES = 12


@dataclass(frozen=True)
class Case:
    key: str
    library: str
    items: int  # values or rows per sample, to show a time per item
    run: Callable[[], float]  # one timed sample, in seconds


@dataclass(frozen=True)
class Target:
    text: str
    check: Callable[[float], bool]


def at_most(limit: float) -> Target:
    return Target(f"<= {limit:.1f}x", lambda ratio: ratio <= limit)


def at_least(limit: float) -> Target:
    return Target(f">= {limit:.0f}x", lambda ratio: ratio >= limit)


@dataclass(frozen=True)
class Comparison:
    """``subject / baseline``, and the target that ratio should meet, if any.

    With ``above``, the ratio is of the costs above that case instead: ``(subject - above) /
    (baseline - above)``, what each library adds to the plain model.
    """

    section: str
    label: str
    subject: str
    baseline: str
    target: Target | None = None
    above: str = ""


# The floor: what any AES-GCM + base64url code must do, and nothing else. ``Floor`` is the recipe
# as one writes it with the ``base64`` module; ``BinasciiFloor`` skips the module's wrappers.
class Floor:
    def __init__(self, secret: bytes) -> None:
        self.aead = AESGCM(secret)

    def encrypt(self, text: str) -> str:
        iv = os.urandom(IV_BYTES)
        token = base64.urlsafe_b64encode(iv + self.aead.encrypt(iv, text.encode(), None))
        return "enc:v1:" + token.rstrip(b"=").decode()

    def decrypt(self, stored: str) -> str:
        payload = stored[7:]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        return self.aead.decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None).decode()


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = ("", "===", "==", "=")


class BinasciiFloor(Floor):
    def encrypt(self, text: str) -> str:
        iv = os.urandom(IV_BYTES)
        raw = iv + self.aead.encrypt(iv, text.encode(), None)
        token = binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=")
        return "enc:v1:" + token.decode()

    def decrypt(self, stored: str) -> str:
        payload = stored[7:]
        text = (payload + _PADDING[len(payload) % 4]).encode().translate(_TO_STANDARD)
        raw = binascii.a2b_base64(text)
        return self.aead.decrypt(raw[:IV_BYTES], raw[IV_BYTES:], None).decode()


Clock = Callable[[], float]


def _loop(fn: Callable[[Any], Any], inputs: Sequence[Any], clock: Clock) -> Callable[[], float]:
    def run() -> float:
        start = clock()
        for item in inputs:
            fn(item)
        return clock() - start

    return run


def codec_cases(plaintexts: Sequence[str], clock: Clock) -> list[Case]:
    secret = load_encryption_key(settings.ENCRYPTION_KEY)
    floor, fast_floor = Floor(secret), BinasciiFloor(secret)
    stored = [encrypt_value(text) for text in plaintexts]
    # The floors and the codec must agree byte for byte, or the comparison means nothing.
    for fn in (floor.decrypt, fast_floor.decrypt, decrypt_value):
        if [fn(s) for s in stored[:100]] != list(plaintexts[:100]):
            raise AssertionError(f"{fn.__qualname__} does not read what encrypt_value wrote")
    for encrypt in (floor.encrypt, fast_floor.encrypt):
        if decrypt_value(encrypt(plaintexts[0])) != plaintexts[0]:
            raise AssertionError(f"{encrypt.__qualname__} does not write what decrypt_value reads")
    n = len(plaintexts)
    return [
        Case("codec.encrypt.floor", "floor", n, _loop(floor.encrypt, plaintexts, clock)),
        Case("codec.encrypt.binascii", "floor", n, _loop(fast_floor.encrypt, plaintexts, clock)),
        Case(f"codec.encrypt.{OURS}", OURS, n, _loop(encrypt_value, plaintexts, clock)),
        Case("codec.decrypt.floor", "floor", n, _loop(floor.decrypt, stored, clock)),
        Case("codec.decrypt.binascii", "floor", n, _loop(fast_floor.decrypt, stored, clock)),
        Case(f"codec.decrypt.{OURS}", OURS, n, _loop(decrypt_value, stored, clock)),
    ]


def truncate(model: type[Model]) -> None:
    statements = connection.ops.sql_flush(no_style(), [model._meta.db_table], reset_sequences=True)
    connection.ops.execute_sql_flush(statements)


def _read(model: type[Model], attname: str, clock: Clock) -> Callable[[], float]:
    """Load every row as an instance and touch the column's attribute."""

    def run() -> float:
        queryset = model._default_manager.all()
        start = clock()
        for obj in queryset:
            getattr(obj, attname)
        elapsed = clock() - start
        del queryset  # freeing 100,000 instances is not part of loading them
        return elapsed

    return run


def _values_list(model: type[Model], attname: str, clock: Clock) -> Callable[[], float]:
    def run() -> float:
        queryset = model._default_manager.values_list(attname, flat=True)
        start = clock()
        for _value in queryset:
            pass
        elapsed = clock() - start
        del queryset
        return elapsed

    return run


def _bulk_create(
    model: type[Model], attname: str, values: Sequence[Any], batch_size: int | None, clock: Clock
) -> Callable[[], float]:
    def run() -> float:
        truncate(model)
        objs = [model(**{attname: value}) for value in values]
        gc.collect()
        start = clock()
        model._default_manager.bulk_create(objs, batch_size=batch_size)
        return clock() - start

    return run


def orm_cases(
    column: str,
    subjects: dict[str, type[Model]],
    values: Sequence[Any],
    batch_size: int | None,
    clock: Clock,
) -> list[Case]:
    """Write, read and ``values_list`` cases for each library's model of one column kind."""
    attname = "token" if column == "char" else "options"
    cases = []
    for library, model in subjects.items():
        n = len(values)
        cases += [
            Case(
                f"{column}.write.{library}",
                library,
                n,
                _bulk_create(model, attname, values, batch_size, clock),
            ),
            Case(f"{column}.read.{library}", library, n, _read(model, attname, clock)),
            Case(
                f"{column}.values_list.{library}", library, n, _values_list(model, attname, clock)
            ),
        ]
    return cases


def char_models() -> dict[str, type[Model]]:
    found: dict[str, type[Model]] = {
        PLAIN: models.PlainSecret,
        CONVERTER_ONLY: models.PassThroughSecret,
        OURS: models.OursSecret,
    }
    if hasattr(models, "FernetSecret"):
        found[models.FERNET] = models.FernetSecret
    if hasattr(models, "ModelFieldsSecret"):
        found[models.MODEL_FIELDS] = models.ModelFieldsSecret
    return found


def json_models() -> dict[str, type[Model]]:
    found: dict[str, type[Model]] = {PLAIN: models.PlainOptions, OURS: models.OursOptions}
    if hasattr(models, "FernetOptions"):
        found[models.FERNET] = models.FernetOptions
    return found


def _compare(
    section: str,
    label: str,
    what: str,
    subject: str,
    baseline: str,
    target: Target | None = None,
    above: str = "",
) -> Comparison:
    """Compare two libraries (or floors) on ``what``, a case key without its library."""
    return Comparison(
        section,
        label,
        f"{what}.{subject}",
        f"{what}.{baseline}",
        target,
        f"{what}.{above}" if above else "",
    )


def comparisons() -> list[Comparison]:
    fernet, model_fields, ours, plain = models.FERNET, models.MODEL_FIELDS, OURS, PLAIN
    no_op = CONVERTER_ONLY
    rows = [
        _compare("codec", "encrypt_value / floor", "codec.encrypt", ours, "floor", at_most(1.2)),
        _compare("codec", "decrypt_value / floor", "codec.decrypt", ours, "floor", at_most(1.2)),
        _compare("codec", "encrypt_value / binascii floor", "codec.encrypt", ours, "binascii"),
        _compare("codec", "decrypt_value / binascii floor", "codec.decrypt", ours, "binascii"),
        _compare(
            "char", "read instances: encrypted / plain", "char.read", ours, plain, at_most(1.5)
        ),
        _compare("char", "read instances: no-op from_db_value / plain", "char.read", no_op, plain),
        _compare("char", "values_list: encrypted / plain", "char.values_list", ours, plain),
        _compare(
            "char", "values_list: no-op from_db_value / plain", "char.values_list", no_op, plain
        ),
        _compare("char", "bulk_create: encrypted / plain", "char.write", ours, plain, at_most(1.2)),
    ]
    for peer, target in ((fernet, at_least(3)), (model_fields, None)):
        for kind, name in (("read", "read instances"), ("write", "bulk_create")):
            what, label = f"char.{kind}", f"{name}: {peer} / ours"
            rows.append(_compare("peers", label, what, peer, ours, target))
            rows.append(
                _compare("peers", f"{label}, cost above plain", what, peer, ours, target, plain)
            )
        rows.append(
            _compare("peers", f"values_list: {peer} / ours", "char.values_list", peer, ours)
        )
    ours_json, peer_json = (
        "JSONPathEncryptedField / JSONField",
        f"{fernet} EncryptedJSONField / ours",
    )
    rows += [
        _compare("json", f"read instances: {ours_json}", "json.read", ours, plain),
        _compare("json", f"values_list: {ours_json}", "json.values_list", ours, plain),
        _compare("json", f"bulk_create: {ours_json}", "json.write", ours, plain),
        _compare("json", f"read instances: {peer_json}", "json.read", fernet, ours),
        _compare("json", f"bulk_create: {peer_json}", "json.write", fernet, ours),
    ]
    return rows
