"""The timed cases and the comparisons made between them.

A case is one thing timed once per repetition (a loop of codec calls, one ORM query, one
``bulk_create``); a comparison is the ratio of two cases, computed repetition by repetition so
that both sides of each ratio ran close together in time.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Model

from authhero_encrypt.crypto import decrypt_value, encrypt_value
from authhero_encrypt.keys import load_encryption_key
from benchmarks.suite import models
from benchmarks.suite.recipe import BinasciiFloor, Floor

OURS = "authhero_encrypt"
PLAIN = "plain"
CONVERTER_ONLY = "converter-only"
RECIPE = "recipe"


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
    """Load every row as an instance and read one attribute of it."""

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


def _values(model: type[Model], attname: str, clock: Clock) -> Callable[[], float]:
    def run() -> float:
        queryset = model._default_manager.values(attname)
        start = clock()
        for _row in queryset:
            pass
        elapsed = clock() - start
        del queryset
        return elapsed

    return run


def _bulk_create(
    model: type[Model], rows: Sequence[dict[str, Any]], batch_size: int | None, clock: Clock
) -> Callable[[], float]:
    def run() -> float:
        truncate(model)
        objs = [model(**row) for row in rows]
        gc.collect()
        start = clock()
        model._default_manager.bulk_create(objs, batch_size=batch_size)
        return clock() - start

    return run


@dataclass(frozen=True)
class Kind:
    """A kind of row: its models by library, the secret's attribute and what is timed on it."""

    column: str
    secret: str
    models: dict[str, type[Model]]
    # work -> the attribute read, for reads that touch another column than the secret
    other_reads: dict[str, str]
    listing: str  # "values_list" (the secret, flat) or "values" (dicts)


def orm_cases(
    kind: Kind, rows: Sequence[dict[str, Any]], batch_size: int | None, clock: Clock
) -> list[Case]:
    """Write, read and listing cases for each library's model of one row kind."""
    listing = _values_list if kind.listing == "values_list" else _values
    n = len(rows)
    cases = []
    for library, model in kind.models.items():
        prefix = kind.column
        cases += [
            Case(
                f"{prefix}.write.{library}",
                library,
                n,
                _bulk_create(model, rows, batch_size, clock),
            ),
            Case(f"{prefix}.read.{library}", library, n, _read(model, kind.secret, clock)),
            Case(
                f"{prefix}.{kind.listing}.{library}",
                library,
                n,
                listing(model, kind.secret, clock),
            ),
        ]
        for work, attname in kind.other_reads.items():
            cases.append(
                Case(f"{prefix}.{work}.{library}", library, n, _read(model, attname, clock))
            )
    return cases


def _with_peers(found: dict[str, type[Model]], suffix: str) -> dict[str, type[Model]]:
    for library, prefix in ((models.FERNET, "Fernet"), (models.MODEL_FIELDS, "ModelFields")):
        model = getattr(models, prefix + suffix, None)
        if model is not None:
            found[library] = model
    return found


def char_kind() -> Kind:
    found: dict[str, type[Model]] = {
        PLAIN: models.PlainSecret,
        CONVERTER_ONLY: models.PassThroughSecret,
        RECIPE: models.RecipeSecret,
        OURS: models.OursSecret,
    }
    return Kind("char", "token", _with_peers(found, "Secret"), {}, "values_list")


def client_kind() -> Kind:
    found: dict[str, type[Model]] = {
        PLAIN: models.PlainClient,
        CONVERTER_ONLY: models.PassThroughClient,
        RECIPE: models.RecipeClient,
        OURS: models.OursClient,
    }
    others = {"read_client_id": "client_id"}
    return Kind("client", "client_secret", _with_peers(found, "Client"), others, "values_list")


def json_kind() -> Kind:
    found: dict[str, type[Model]] = {
        PLAIN: models.PlainOptions,
        RECIPE: models.RecipeOptions,
        OURS: models.OursOptions,
    }
    if hasattr(models, "FernetOptions"):
        found[models.FERNET] = models.FernetOptions
    return Kind("json", "options", found, {}, "values")


@dataclass(frozen=True)
class Work:
    """One line of the summary table: a case key without its library."""

    what: str
    label: str


SUMMARY = [
    Work("char.read", "read instances, 2-column model"),
    Work("char.values_list", "`values_list` of the secret, 2-column model"),
    Work("char.write", "`bulk_create`, 2-column model"),
    Work("client.read", "read instances, OAuth client row (8 columns, 1 secret)"),
    Work("client.read_client_id", "load instances, read only `client_id`, OAuth client row"),
    Work("client.values_list", "`values_list` of the secret, OAuth client row"),
    Work("client.write", "`bulk_create`, OAuth client row"),
    Work("json.read", "read `JSONPathEncryptedField` (connection options, 10 keys)"),
    Work("json.values", "`values()` of that JSON field"),
    Work("json.write", "`bulk_create` of that JSON field"),
]
SUMMARY_LIBRARIES = (CONVERTER_ONLY, RECIPE, OURS, models.FERNET, models.MODEL_FIELDS)


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
        _compare("json", f"values(): {ours_json}", "json.values", ours, plain),
        _compare("json", f"bulk_create: {ours_json}", "json.write", ours, plain),
        _compare("json", f"read instances: {peer_json}", "json.read", fernet, ours),
        _compare("json", f"bulk_create: {peer_json}", "json.write", fernet, ours),
    ]
    return rows
