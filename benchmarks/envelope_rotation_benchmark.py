"""Per-row cost of rotating a 3 KB PEM through the migrate engine: rewrap against re-encryption.

Run from the repository root (not part of the test run)::

    .venv/bin/python benchmarks/envelope_rotation_benchmark.py [--rows 1000] [--rounds 5]

Uses the test settings (SQLite in memory, ``tests.testapp``) and the 3 KB ``SAMPLE_PEM`` of
``tests/keys.py``. Each round loads ``--rows`` rows stored under ring key ``k1`` (raw inserts
of texts sealed once beforehand), switches the settings to ``k2`` with ``k1`` as a fallback,
and times ``authhero_encrypt.migrate.migrate()`` over them, three ways, alternating their order:

* **rewrap**: ``EnvelopeEncryptedTextField`` values (``env:v1``), the engine's own rule: unwrap
  the data key, open the payload to verify it, wrap the key under ``k2``; payload untouched;
* **envelope re-encryption**: the same values, with the rule swapped for a full one: open the
  value and seal it again under a fresh data key wrapped by ``k2`` (what rotation would cost
  without rewrapping);
* **enc:v1 re-encryption**: the same PEM in an ``EncryptedTextField`` (``Secret.notes``),
  decrypted with ``k1`` and encrypted with ``k2``, as rotation does for every other field.

Reported: the median over the rounds of µs per row, CPU time of this process and elapsed time
(both include reading the batch, the compare-and-swap ``UPDATE`` and the commit).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1000, help="Rows per round (1000).")
    parser.add_argument("--rounds", type=int, default=5, help="Rounds per case (5).")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    from authhero_encrypt.envelope.codec import open_value, seal
    from authhero_encrypt.envelope.config import reset_envelope
    from authhero_encrypt.envelope.format import PREFIX
    from authhero_encrypt.envelope.rotation import EnvelopeRotation
    from authhero_encrypt.migrate import engine, migrate
    from authhero_encrypt.rotation import Outcome
    from tests.keys import KEY_A, KEY_B, SAMPLE_PEM
    from tests.testapp.models import PrivateKey, Secret

    class Reseal(EnvelopeRotation):
        """A full re-encryption of every env:v1 value: open it, seal it under a fresh DEK."""

        def value(self, stored: str) -> tuple[Outcome, str, str | None]:
            if not stored.startswith(PREFIX):
                return super().value(stored)
            plaintext = open_value(self.resolve, stored, self.context)
            return Outcome.REENCRYPTED, seal(self.target, plaintext, self.context), None

    call_command("migrate", verbosity=0, run_syncdb=True)
    old = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "k1", "ENCRYPTION_KEY_FALLBACKS": []}
    new = {"ENCRYPTION_KEY": KEY_B, "ENCRYPTION_KEY_ID": "k2"}
    new["ENCRYPTION_KEY_FALLBACKS"] = [f"k1:{KEY_A}"]  # type: ignore[assignment]
    pem_field = PrivateKey._meta.get_field("pem")
    notes_field = Secret._meta.get_field("notes")
    with override_settings(**old):
        # Distinct data keys and IVs per row, as a real table holds.
        sealed = [pem_field.get_prep_value(SAMPLE_PEM) for _ in range(args.rows)]
        encrypted = [notes_field.get_prep_value(SAMPLE_PEM) for _ in range(args.rows)]

    def load(model: Any, column: str, values: list[str]) -> None:
        qn = connection.ops.quote_name
        table = qn(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")
            extra = ", " + qn("label") if model is Secret else ", " + qn("name")
            cursor.executemany(
                f"INSERT INTO {table} ({qn(column)}{extra}) VALUES (%s, %s)",
                [(value, f"row {n}") for n, value in enumerate(values)],
            )

    def timed(model: Any, column: str, values: list[str], label: str) -> tuple[float, float]:
        load(model, column, values)
        with override_settings(**new):
            reset_envelope()
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            report = migrate([label])
            cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
        written = sum(field.written for field in report.fields)
        assert written == args.rows, (label, written)
        return cpu / args.rows * 1e6, wall / args.rows * 1e6

    original = engine.EnvelopeRotation
    cases = {
        "rewrap (env:v1, the engine's rule)": lambda: timed(
            PrivateKey, "pem", sealed, "testapp.PrivateKey"
        ),
        "envelope re-encryption (open, seal anew)": lambda: _patched(
            engine, Reseal, original, lambda: timed(PrivateKey, "pem", sealed, "testapp.PrivateKey")
        ),
        "enc:v1 re-encryption (EncryptedTextField)": lambda: timed(
            Secret, "notes", encrypted, "testapp.Secret"
        ),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    names = list(cases)
    for n in range(args.rounds):
        order = names if n % 2 == 0 else names[::-1]
        for name in order:
            results[name].append(cases[name]())
    print(
        f"{args.rows} rows of a {len(SAMPLE_PEM):,}-character PEM, SQLite in memory, median of "
        f"{args.rounds} rounds, µs per row (CPU / elapsed):"
    )
    for name, runs in results.items():
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        print(f"  {name:<45} {cpu:8.1f} / {wall:8.1f}")
    print(f"load average: {os.getloadavg()[0]:.1f}")


def _patched(module: Any, replacement: Any, original: Any, run: Any) -> Any:
    module.EnvelopeRotation = replacement
    try:
        return run()
    finally:
        module.EnvelopeRotation = original


if __name__ == "__main__":
    main()
