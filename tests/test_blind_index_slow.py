"""Slow blind indexes (``slow=``): PBKDF2 tags for low-entropy values, and the import order."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Q

from authhero_encrypt.blind_index import BlindIndexField
from authhero_encrypt.blind_index.field import SLOW_ITERATIONS
from authhero_encrypt.blind_index.lookups import INDEXED_LOOKUPS
from authhero_encrypt.fields import base
from tests.blind_index_helpers import index_subkey, raw_value
from tests.indexapp.models import Pin
from tests.keys import INDEX_KEY_A
from tests.test_blind_index import expected_tag

pytestmark = pytest.mark.django_db

LABEL = "indexapp.pin.pin.pin_index"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "blind_index.md"


def slow_tag(label: str, normalized: str, iterations: int) -> str:
    """PBKDF2-HMAC-SHA256, the subkey as salt: computed here from the documented recipe."""
    subkey = index_subkey(INDEX_KEY_A, label)
    digest = hashlib.pbkdf2_hmac("sha256", normalized.encode(), subkey, iterations)
    return f"i1:{digest.hex()}"


def raw(pk: Any, column: str) -> Any:
    return raw_value(Pin, pk, column)


def test_a_slow_tag_is_pbkdf2_and_not_the_fast_one() -> None:
    made = Pin.objects.create(name="a", pin="12-34")
    stored = raw(made.pk, "pin_index")
    assert stored == slow_tag(LABEL, "1234", 1000)
    assert stored != expected_tag(INDEX_KEY_A, "i1", LABEL, "1234")  # HMAC, same subkey
    assert stored != slow_tag(LABEL, "1234", 999)  # the iteration count is part of the tag
    assert raw(made.pk, "fast_index") == expected_tag(
        INDEX_KEY_A, "i1", "indexapp.pin.pin.fast_index", "1234"
    )


def test_queries_through_a_slow_index() -> None:
    Pin.objects.create(name="a", pin="1234")
    Pin.objects.create(name="b", pin="12 35")
    Pin.objects.create(name="c")
    found = Pin.objects.filter(pin="1-2-3-4")
    assert sorted(found.values_list("name", flat=True)) == ["a"]
    assert "pin_index" in str(found.query)
    assert sorted(Pin.objects.filter(pin__in=["1235", "0000"]).values_list("name", flat=True)) == [
        "b"
    ]
    assert sorted(
        Pin.objects.exclude(Q(pin="1234") | Q(pin="1235")).values_list("name", flat=True)
    ) == ["c"]
    Pin.objects.filter(pin="1235").update(pin="9999")
    assert Pin.objects.get(pin="9999").name == "b"


def test_slow_is_recorded_and_validated() -> None:
    assert BlindIndexField("pin", slow=True).iterations == SLOW_ITERATIONS
    assert BlindIndexField("pin").iterations == 0
    assert Pin._meta.get_field("pin_index").deconstruct()[3]["slow"] == 1000
    assert "slow" not in Pin._meta.get_field("fast_index").deconstruct()[3]
    for bad in (-1, "many", 1.5):
        with pytest.raises(ValueError, match="slow must be"):
            BlindIndexField("pin", slow=bad)


def test_the_docs_state_the_default_iterations() -> None:
    assert f"{SLOW_ITERATIONS:,}" in DOCS.read_text()


def test_the_indexed_lookup_names_agree() -> None:
    assert base._INDEXED_LOOKUPS == INDEXED_LOOKUPS


def test_the_blind_index_package_can_be_imported_first() -> None:
    # An import cycle (fields -> blind_index -> fields) once broke this order.
    code = "import authhero_encrypt.blind_index, authhero_encrypt.fields"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=DOCS.parent.parent)
