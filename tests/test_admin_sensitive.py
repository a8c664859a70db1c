"""Error reports: the POST parameters that carry secrets are cleansed from them."""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.signals import got_request_exception
from django.db import models
from django.db.models.signals import pre_save
from django.test.utils import isolate_apps
from django.views.debug import ExceptionReporter

from authhero_encrypt.admin.sensitive import mark_secrets_sensitive
from authhero_encrypt.fields import EncryptedCharField
from example_project.authhero import models as demo
from example_project.authhero.demo_data import load_demo_data
from tests.admin_helpers import custom_admin, form_data, render, temporary_table, url

pytestmark = pytest.mark.django_db


POSTED = "POSTEDSECRET-7Hq2"


@contextmanager
def failing_save(model: type[models.Model]) -> Iterator[None]:
    """Any save of ``model`` raises, as a faulty ``pre_save`` receiver would."""

    def explode(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("pre_save failed on purpose")

    pre_save.connect(explode, sender=model, dispatch_uid="test_admin.explode")
    try:
        yield
    finally:
        pre_save.disconnect(sender=model, dispatch_uid="test_admin.explode")


def error_report(request: Any, exc: BaseException, tb: Any = None) -> str:
    """The report AdminEmailHandler mails (HTML and text), with DEBUG off as in production."""
    assert settings.DEBUG is False
    reporter = ExceptionReporter(request, type(exc), exc, tb or exc.__traceback__)
    return html.unescape(reporter.get_traceback_html()) + reporter.get_traceback_text()


def failed_post_report(client: Any, path: str, data: dict[str, str]) -> str:
    """The report of a POST that fails, made where Django makes it: in the request handler,
    whose traceback starts there (not in the test client, whose frames hold the posted data)."""
    reports: list[str] = []

    def capture(sender: Any, request: Any, **kwargs: Any) -> None:
        _type, exc, tb = sys.exc_info()
        assert exc is not None
        reports.append(error_report(request, exc, tb))

    got_request_exception.connect(capture)
    try:
        with pytest.raises(RuntimeError, match="on purpose"):
            client.post(path, data)
    finally:
        got_request_exception.disconnect(capture)
    return reports[0]


def assert_cleansed(report: str, *names: str, shown: str) -> None:
    assert POSTED not in report
    for name in names:
        assert f"{name} = '********************'" in report  # the text report's POST section
    # Not a report that lost its POST data: the other parameters are still shown.
    assert shown in report


def test_posted_secret_is_cleansed_from_the_report_of_a_failed_change(admin_client, demo_rows):
    obj = demo.Client.objects.get(client_id="demo-m2m-4d88c2")
    page = admin_client.get(url(demo.Client, "change", obj.pk)).content.decode()
    data = {**form_data(page, demo.Client), "client_secret": POSTED, "name": "Shown-name-1"}
    with failing_save(demo.Client):
        report = failed_post_report(admin_client, url(demo.Client, "change", obj.pk), data)
    assert_cleansed(report, "client_secret", shown="Shown-name-1")


def test_posted_secret_is_cleansed_from_the_report_of_a_failed_add(admin_client):
    page = admin_client.get(url(demo.Client, "add")).content.decode()
    data = {
        **form_data(page, demo.Client),
        "client_id": "added-1",
        "name": "Shown-name-2",
        "client_secret": POSTED,
    }
    with failing_save(demo.Client):
        report = failed_post_report(admin_client, url(demo.Client, "add"), data)
    assert_cleansed(report, "client_secret", shown="Shown-name-2")
    assert not demo.Client.objects.filter(client_id="added-1").exists()


def test_posted_document_is_cleansed_from_the_report_of_a_failed_change(admin_client, demo_rows):
    obj = demo.Connection.objects.get(name="corporate-oidc")
    page = admin_client.get(url(demo.Connection, "change", obj.pk)).content.decode()
    data = form_data(page, demo.Connection)
    document = json.loads(data["options"])
    document["client_secret"] = POSTED
    data.update(options=json.dumps(document), strategy="Shown-strategy-3")
    with failing_save(demo.Connection):
        report = failed_post_report(admin_client, url(demo.Connection, "change", obj.pk), data)
    assert_cleansed(report, "options", shown="Shown-strategy-3")


def failed_view_report(view: Any, request: Any, *args: Any) -> str:
    """The report of ``view`` failing on ``request``, made as the request handler makes it."""
    try:
        view(request, *args)
    except RuntimeError:
        _type, exc, tb = sys.exc_info()
        assert exc is not None
        return error_report(request, exc, tb)
    raise AssertionError("the view did not fail")


def post_request(rf: Any, user: Any, model: type[models.Model], data: dict[str, str]) -> Any:
    request = rf.post(url(model), data)
    request.user = user
    request._dont_enforce_csrf_checks = True
    return request


def test_posted_secret_is_cleansed_from_the_report_of_a_failed_list_edit(rf, admin_user, demo_rows):
    obj = demo.Client.objects.get(client_id="demo-m2m-4d88c2")
    model_admin = custom_admin(
        demo.Client, list_display=["client_id", "name"], list_editable=["name"]
    )
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(obj.pk),
        "form-0-name": "Shown-name-4",
        "form-0-client_secret": POSTED,
        "_save": "Save",
    }
    request = post_request(rf, admin_user, demo.Client, data)
    with failing_save(demo.Client):
        report = failed_view_report(model_admin.changelist_view, request)
    assert_cleansed(report, "form-0-client_secret", shown="Shown-name-4")


@pytest.fixture
def client_token(transactional_db):
    """A table of tokens, each with a foreign key to ``Client``, for an inline."""
    with isolate_apps("example_project.authhero"):

        class ClientToken(models.Model):
            client = models.ForeignKey(demo.Client, on_delete=models.CASCADE)
            token = EncryptedCharField(max_length=50, blank=True)

            class Meta:
                app_label = "authhero"

            def __str__(self) -> str:
                return f"token {self.pk}"

    with temporary_table(ClientToken):
        yield ClientToken


def test_posted_inline_secret_is_cleansed_from_the_report(rf, admin_user, client_token):
    load_demo_data()
    obj = demo.Client.objects.get(client_id="demo-m2m-4d88c2")
    inline = type("TokenInline", (admin.TabularInline,), {"model": client_token, "extra": 1})
    model_admin = custom_admin(demo.Client, inlines=[inline])
    get = rf.get(url(demo.Client, "change", obj.pk))
    get.user = admin_user
    data = form_data(render(model_admin.change_view(get, str(obj.pk))), demo.Client)
    names = [name for name in data if name.endswith("-0-token")]
    assert len(names) == 1
    data.update({names[0]: POSTED, "name": "Shown-name-5"})
    request = post_request(rf, admin_user, demo.Client, data)
    with failing_save(demo.Client):
        report = failed_view_report(model_admin.change_view, request, str(obj.pk))
    assert_cleansed(report, names[0], shown="Shown-name-5")


def test_sensitive_parameters_already_set_are_kept(rf, admin_user):
    request = post_request(rf, admin_user, demo.Client, {"a": "1", "client_secret": POSTED})
    request.sensitive_post_parameters = ["a"]
    mark_secrets_sensitive(request, ["client_secret"])
    assert request.sensitive_post_parameters == ["a", "client_secret"]
    request.sensitive_post_parameters = "__ALL__"
    mark_secrets_sensitive(request, ["client_secret"])
    assert request.sensitive_post_parameters == "__ALL__"
    get = rf.get(url(demo.Client), {"client_secret": "x"})
    mark_secrets_sensitive(get, ["client_secret"])
    assert not hasattr(get, "sensitive_post_parameters")
