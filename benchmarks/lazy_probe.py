"""What each read path hands back under the decrypt-on-access prototype (benchmarks/suite/lazy.py).

Run from the repository root; not part of the test run::

    .venv/bin/python benchmarks/lazy_probe.py

Prints, for each Django read path, the type of the secret it sees (``str``: plaintext as today;
``Sealed``: the marker) and what an undecryptable value raises, and where.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.suite.settings"
    import django

    django.setup()
    from django.core import serializers
    from django.db import connection
    from django.db.models import F

    from authhero_encrypt.exceptions import DecryptionError
    from benchmarks.suite import data, database, models

    database.create()
    try:

        class TrackedClient(models.LazyClient):
            """Django's documented from_db() override that keeps the loaded values."""

            loaded: dict[str, Any]

            class Meta:
                proxy = True
                app_label = "bench_suite"

            @classmethod
            def from_db(cls, db: Any, field_names: Any, values: Any) -> Any:
                instance = super().from_db(db, field_names, values)
                instance.loaded = dict(zip(field_names, values, strict=False))
                return instance

        rows = data.client_rows(2, 7)
        model = models.LazyClient
        model.objects.bulk_create([model(**row) for row in rows])
        column = "client_secret"
        table = model._meta.db_table

        def kind(value: object) -> str:
            return type(value).__name__

        first = model.objects.first()
        assert first is not None
        seen = [
            ("instance, __dict__ before access", kind(first.__dict__[column])),
            ("instance, attribute", kind(getattr(first, column))),
            ("instance, __dict__ after access", kind(first.__dict__[column])),
            ("values()", kind(model.objects.values(column)[0][column])),
            ("values_list(flat=True)", kind(model.objects.values_list(column, flat=True)[0])),
            ("values_list() of every field", kind(model.objects.values_list()[0][-1])),
            (
                "annotate(s=F(column)), the annotation",
                kind(model.objects.annotate(s=F(column))[0].s),
            ),
            ("iterator(), __dict__", kind(next(model.objects.iterator()).__dict__[column])),
            (
                "raw(), __dict__",
                kind(next(iter(model.objects.raw(f"SELECT * FROM {table}"))).__dict__[column]),
            ),
            (
                "union(), then values_list()",
                kind(
                    model.objects.filter(pk=1)
                    .union(model.objects.filter(pk=2))
                    .values_list(column, flat=True)[0]
                ),
            ),
            (
                "serializers (dumpdata), starts with",
                serializers.serialize("python", model.objects.all()[:1])[0]["fields"][column][:7],
            ),
            (
                "Model.from_db() override, its values",
                kind(TrackedClient.objects.first().loaded[column]),
            ),  # type: ignore[union-attr]
        ]
        untouched = model.objects.get(pk=2)
        untouched.name = "renamed"
        untouched.save()
        saved = model.objects.values_list(column, flat=True).get(pk=2) == rows[1][column]
        seen.append(("save() of an untouched secret reads back", str(saved)))
        deferred = model.objects.defer(column).get(pk=2)
        seen.append(("defer(), then the attribute", kind(getattr(deferred, column))))
        width = max(len(label) for label, _ in seen)
        for label, what in seen:
            print(f"{label.ljust(width)}  {what}")

        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = 1", ["enc:v1:" + "A" * 40])
        loaded = model.objects.get(pk=1)
        print(f"{'load of an undecryptable row'.ljust(width)}  no error")
        try:
            getattr(loaded, column)
        except DecryptionError as exc:
            print(f"{'first access'.ljust(width)}  {type(exc).__name__}: {exc}")
    finally:
        database.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
