"""Refused lookups and transforms are classes (Django's convention) that raise when built."""

from __future__ import annotations

import pytest
from django.core.exceptions import FieldError
from django.db.models import Lookup, Transform

from authhero_encrypt.fields.refused import RefusedLookup, RefusedTransform
from tests.testapp.models import Connection, Secret


@pytest.mark.parametrize(
    ("model", "lookup", "kind"),
    [
        (Secret, "token__icontains", Lookup),
        (Secret, "notes__regex", Lookup),
        (Secret, "token__lower", Transform),
        (Connection, "options__icontains", Lookup),
    ],
)
def test_get_lookup_answers_with_a_class_not_an_exception(model, lookup, kind):
    # Tools that ask without using the answer (django-stubs' mypy plugin, admin search,
    # django-filter) must get a class back; before, get_lookup() raised FieldError.
    name, lookup_name = lookup.split("__")
    field = model._meta.get_field(name)
    found = (field.get_lookup if kind is Lookup else field.get_transform)(lookup_name)
    assert isinstance(found, type)
    assert issubclass(found, RefusedLookup if kind is Lookup else RefusedTransform)
    assert issubclass(found, kind)
    assert found.lookup_name == lookup_name
    # A type checker that looks the class up by its qualified name finds the base class.
    assert (
        found.__qualname__ == (RefusedLookup if kind is Lookup else RefusedTransform).__qualname__
    )


@pytest.mark.parametrize(
    ("model", "lookup", "message"),
    [
        (Secret, "token__icontains", r"testapp\.Secret\.token .*'icontains'"),
        (Secret, "token__lower", r"testapp\.Secret\.token .*'lower'"),
        (Connection, "options__icontains", r"testapp\.Connection\.options holds encrypted paths"),
        (Connection, "options__client_secret__icontains", r"'client_secret' is an encrypted path"),
        (Connection, "options__configuration__iexact", r"'configuration' holds encrypted paths"),
    ],
)
def test_using_a_refused_lookup_raises_at_filter_time(model, lookup, message):
    with pytest.raises(FieldError, match=message):
        model.objects.filter(**{lookup: "x"})


def test_each_refusal_is_a_fresh_error():
    # One stored exception raised again and again would collect every caller's traceback.
    errors = []
    for _ in range(2):
        with pytest.raises(FieldError) as excinfo:
            Secret.objects.filter(token__icontains="x")
        errors.append(excinfo.value)
    assert errors[0] is not errors[1]
    assert str(errors[0]) == str(errors[1])
