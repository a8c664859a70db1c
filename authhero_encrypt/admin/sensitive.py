"""Keeping posted secrets out of error reports: POST parameters named after secrets are sensitive.

Django's ``sensitive_post_parameters`` takes fixed names, but the names a form posts depend on
the form (formset and inline prefixes), so the admin mixin marks them per request.
``SafeExceptionReporterFilter`` then cleanses them from the 500 page and ``AdminEmailHandler``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["mark_secrets_sensitive"]


def mark_secrets_sensitive(request: HttpRequest, names: Iterable[str]) -> None:
    """Mark the POST parameters of ``request`` named ``names`` (or ``<prefix>-<name>``) sensitive.

    What ``sensitive_post_parameters`` does, for names that depend on the form: a formset's
    fields are posted as ``form-0-client_secret``, an inline's as ``<prefix>-0-client_secret``.
    Field names cannot hold ``-``, so the part after the last one is the field's name.
    """
    if request.method != "POST":
        return
    current: Any = getattr(request, "sensitive_post_parameters", None)
    if current == "__ALL__":
        return
    wanted = set(names)
    found = [key for key in request.POST if key.rpartition("-")[2] in wanted]
    if found:
        request.sensitive_post_parameters = [*(current or ()), *found]  # type: ignore[attr-defined]
