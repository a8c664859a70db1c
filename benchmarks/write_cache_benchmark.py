"""KMS calls and µs per write with the envelope write cache off and on, against moto and bao.

Run from the repository root (not part of the test run)::

    .venv/bin/python benchmarks/write_cache_benchmark.py [--writes 1000]

Uses the test settings (SQLite in memory) and the 3 KB ``SAMPLE_PEM``. For each provider
(aws-kms against ``moto_server``, Vault Transit against ``bao server -dev``, both started here on
127.0.0.1 as the tests do) it creates ``--writes`` rows with ``ENCRYPTION_ENVELOPE_WRITE_CACHE``
off and on (``MAX_AGE`` 300 s, ``MAX_VALUES`` 50, ``MAX_BYTES`` 1 MB, the AWS Encryption SDK
example's limits), counting the provider's wrap calls (KMS ``Encrypt``, Transit ``encrypt``) and
timing the writes (CPU time of this process and elapsed time; µs per write).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

LIMITS = {"MAX_AGE": 300, "MAX_VALUES": 50, "MAX_BYTES": 1_000_000}


def counted(wrap: Any, calls: list[int]) -> Any:
    """``wrap`` counting its calls in ``calls[0]``."""

    def counting(self: Any, dek: bytes, context: str) -> Any:
        calls[0] += 1
        return wrap(self, dek, context)

    return counting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--writes", type=int, default=1000, help="Rows written per case (1000).")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings

    from authhero_encrypt.envelope.backends.base import KeyProvider
    from authhero_encrypt.envelope.config import reset_envelope
    from tests.keys import SAMPLE_PEM
    from tests.kms_server import DUMMY_CREDENTIALS, MotoServer, kms_providers
    from tests.testapp.models import PrivateKey
    from tests.vault_server import BaoServer, bao_binary

    call_command("migrate", verbosity=0, run_syncdb=True)
    os.environ.update(DUMMY_CREDENTIALS)
    rows: list[tuple[str, str, int, float, float]] = []

    def run(label: str, name: str, providers: dict[str, Any], backend: type[KeyProvider]) -> None:
        for cache, limits in (("off", None), ("on", LIMITS)):
            calls = [0]
            original = backend.wrap
            backend.wrap = counted(original, calls)  # type: ignore[method-assign]
            try:
                with override_settings(
                    ENCRYPTION_ENVELOPE_PROVIDER=name,
                    ENCRYPTION_ENVELOPE_PROVIDERS=providers,
                    ENCRYPTION_ENVELOPE_WRITE_CACHE=limits,
                ):
                    reset_envelope()
                    PrivateKey.objects.create(name="warm-up", pem=SAMPLE_PEM)
                    calls[0] = 0
                    cpu, wall = time.process_time(), time.perf_counter()
                    for n in range(args.writes):
                        PrivateKey.objects.create(name=str(n), pem=SAMPLE_PEM)
                    cpu = (time.process_time() - cpu) / args.writes * 1e6
                    wall = (time.perf_counter() - wall) / args.writes * 1e6
            finally:
                backend.wrap = original  # type: ignore[method-assign]
            rows.append((label, cache, calls[0], cpu, wall))
            print(
                f"{label:<24} cache {cache:<3} {calls[0]:>6} calls {cpu:>9.1f} us CPU "
                f"{wall:>9.1f} us elapsed",
                flush=True,
            )

    from authhero_encrypt.envelope.backends.aws_kms import AwsKmsKeyProvider
    from authhero_encrypt.envelope.backends.vault import VaultTransitKeyProvider

    moto = MotoServer().start()
    try:
        key = moto.client().create_key()["KeyMetadata"]["Arn"]
        run(
            "aws-kms (moto)",
            "aws-kms",
            kms_providers(moto.url, key, max_attempts=3),
            AwsKmsKeyProvider,
        )
    finally:
        moto.stop()
    bao = BaoServer(bao_binary()).start()
    try:
        run(
            "Vault Transit (bao)",
            "vault",
            bao.providers(bao.create_key("bench")),
            VaultTransitKeyProvider,
        )
    finally:
        bao.stop()

    header = f"wrap calls per {args.writes:,} writes"
    print(f"\n| provider | write cache | {header} | µs CPU | µs elapsed |")
    print("| --- | --- | ---: | ---: | ---: |")
    for label, cache, calls, cpu, wall in rows:
        print(f"| {label} | {cache} | {calls:,} | {cpu:,.1f} | {wall:,.1f} |")


if __name__ == "__main__":
    main()
