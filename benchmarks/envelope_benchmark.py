"""Envelope encryption of a 3 KB PEM against EncryptedTextField, and rewrap against re-encryption.

Run from the repository root (not part of the test run)::

    .venv/bin/python benchmarks/envelope_benchmark.py [--rounds 5] [--number 200] [--no-aws]

Uses the test settings (SQLite in memory, ``tests.testapp``) and the 3 KB ``SAMPLE_PEM`` of
``tests/keys.py``. Each case runs ``--number`` operations per round; the median of ``--rounds``
rounds is reported in microseconds per operation, twice: this process's CPU time
(``time.process_time``; for the local cases all the work happens here, so other processes on a
shared machine barely disturb it) and elapsed time (which for aws-kms includes the HTTP round
trip and the moto server's work).

* codec: decrypting the stored text alone, ``enc:v1`` against ``env:v1`` (data key cached);
* ORM write: ``Model.objects.create`` of one row holding the PEM, for ``EncryptedTextField``
  (``enc:v1``) and ``EnvelopeEncryptedTextField`` (local provider; aws-kms against moto);
* ORM read: ``Model.objects.get`` of that row; for the envelope field with the data key cached
  (hit) and with the cache emptied before each read (miss: one unwrap, a KMS ``Decrypt`` with
  aws-kms);
* per row rotation, on stored text alone (no database): ``rewrap`` (unwrap the data key, open
  the payload to verify it, wrap the key again; payload untouched), ``rewrap(verify=False)``,
  and a full re-encryption (open the value, seal it again under a fresh data key).

aws-kms cases start ``moto_server`` on 127.0.0.1 (as the tests do) unless ``--no-aws``; a KMS
call there is a local HTTP round trip, far cheaper than a real KMS call (typically 5 to 20 ms
within a region), so read those rows as a floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def median_us(operation: Callable[[], object], number: int, rounds: int) -> tuple[float, float]:
    """Median µs per operation over ``rounds``: (CPU time of this process, elapsed time)."""
    operation()  # warm-up
    cpu, wall = [], []
    for _ in range(rounds):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        for _ in range(number):
            operation()
        cpu.append((time.process_time() - start_cpu) / number * 1e6)
        wall.append((time.perf_counter() - start_wall) / number * 1e6)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5, help="Rounds per case (default 5).")
    parser.add_argument("--number", type=int, default=200, help="Operations a round (200).")
    parser.add_argument("--no-aws", action="store_true", help="Skip the aws-kms (moto) cases.")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings

    from authhero_encrypt.crypto import decrypt_value, encrypt_value
    from authhero_encrypt.envelope.codec import open_value, seal
    from authhero_encrypt.envelope.config import dek_cache, provider_named
    from authhero_encrypt.envelope.rotation import rewrap
    from tests.keys import SAMPLE_PEM
    from tests.testapp.models import PrivateKey, Secret

    call_command("migrate", verbosity=0, run_syncdb=True)
    context = PrivateKey._meta.get_field("pem").context
    rows: list[tuple[str, float, float]] = []

    def case(name: str, operation: Callable[[], object], number: int | None = None) -> None:
        cpu, wall = median_us(operation, number or args.number, args.rounds)
        rows.append((name, cpu, wall))
        print(f"{name:<58} {cpu:>10.1f} us CPU {wall:>10.1f} us elapsed", flush=True)

    def miss(pk: int) -> Callable[[], object]:
        def read() -> object:
            dek_cache().clear()
            return PrivateKey.objects.get(pk=pk).pem

        return read

    def envelope_cases(label: str, number: int | None = None) -> None:
        case(
            f"ORM write, envelope ({label})",
            lambda: PrivateKey.objects.create(pem=SAMPLE_PEM),
            number,
        )
        pk = PrivateKey.objects.create(pem=SAMPLE_PEM).pk
        case(
            f"ORM read, envelope ({label}), cache hit",
            lambda: PrivateKey.objects.get(pk=pk).pem,
            number,
        )
        case(f"ORM read, envelope ({label}), cache miss", miss(pk), number)
        provider = provider_named(label)
        stored = seal(provider, SAMPLE_PEM, context)
        target = provider_named(label)

        def reencrypt() -> object:
            dek_cache().clear()
            return seal(target, open_value(provider_named, stored, context), context)

        def rewrap_row(verify: bool) -> Callable[[], object]:
            def run() -> object:
                dek_cache().clear()
                # The value is under the active key already; _Other makes rewrap do the work.
                return rewrap(
                    stored,
                    context,
                    resolve=provider_named,
                    target=_Other(target),  # type: ignore[arg-type]
                    verify=verify,
                )

            return run

        case(f"rotate one row, rewrap ({label})", rewrap_row(True), number)
        case(f"rotate one row, rewrap without verify ({label})", rewrap_row(False), number)
        case(f"rotate one row, full re-encryption ({label})", reencrypt, number)

    encrypted = encrypt_value(SAMPLE_PEM)
    sealed = seal(provider_named("local"), SAMPLE_PEM, context)
    case("codec: decrypt enc:v1", lambda: decrypt_value(encrypted), args.number * 10)
    case(
        "codec: open env:v1 (local, cache hit)",
        lambda: open_value(provider_named, sealed, context),
        args.number * 10,
    )
    case("ORM write, EncryptedTextField (enc:v1)", lambda: Secret.objects.create(notes=SAMPLE_PEM))
    pk = Secret.objects.create(notes=SAMPLE_PEM).pk
    case("ORM read, EncryptedTextField (enc:v1)", lambda: Secret.objects.get(pk=pk).notes)
    envelope_cases("local")

    if not args.no_aws:
        from tests.kms_server import DUMMY_CREDENTIALS, MotoServer, kms_providers

        os.environ.update(DUMMY_CREDENTIALS)
        server = MotoServer().start()
        try:
            key = server.client().create_key()["KeyMetadata"]["Arn"]
            with override_settings(
                ENCRYPTION_ENVELOPE_PROVIDER="aws-kms",
                ENCRYPTION_ENVELOPE_PROVIDERS=kms_providers(server.url, key, max_attempts=3),
            ):
                envelope_cases("aws-kms", max(20, args.number // 10))
        finally:
            server.stop()

    print("\n| case | µs CPU | µs elapsed |\n| --- | ---: | ---: |")
    for name, cpu, wall in rows:
        print(f"| {name} | {cpu:,.1f} | {wall:,.1f} |")


class _Other:
    """The target provider under a different name for its key id, so rewrap always rewraps."""

    def __init__(self, provider: object) -> None:
        self.provider = provider

    def __getattr__(self, name: str) -> object:
        return getattr(self.provider, name)

    def is_active(self, key_id: str, wrapped: bytes, context: str) -> bool:
        return False


if __name__ == "__main__":
    main()
