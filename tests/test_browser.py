"""End to end in a real browser: Debian's Chromium, driven by Selenium, against a live server.

Nothing here downloads a browser or a driver: both paths are given to Selenium explicitly, so
Selenium Manager never runs. Without Chromium the test is skipped with a reason, except under
``CI=true``, where a missing browser is a failure (``.ci/run`` installs it). Screenshots go to
``build/screenshots/`` for CI to keep as artifacts.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.db import connection

from authhero_encrypt.inventory import load_json
from example_project.authhero.demo_data import load_demo_data
from example_project.authhero.models import Connection, SigningKey

SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"
CHROMIUM = ("chromium", "/usr/bin/chromium")
CHROMEDRIVER = ("chromedriver", "/usr/bin/chromedriver")
CLIENT_ID = "fb-demo-app-5550101"
SECRET = "fb-demo-secret-77f2Ma"
# A PEM as a file holds it: LF newlines, a trailing one.
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "\n".join(
        f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{n:02d}xyz+/=" for n in range(12)
    )
    + "\n-----END PRIVATE KEY-----\n"
)


def _find(candidates: tuple[str, str]) -> str | None:
    name, default = candidates
    found = shutil.which(name)
    if found:
        return found
    return default if os.access(default, os.X_OK) else None


def _browser_or_skip() -> tuple[str, str]:
    """The Chromium and chromedriver paths; skips (or fails under CI) when they are missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        raise unittest.SkipTest(
            "selenium is not installed: pip install -e '.[browser]' to run the browser test"
        ) from None
    chromium, driver = _find(CHROMIUM), _find(CHROMEDRIVER)
    if chromium and driver:
        return chromium, driver
    reason = (
        "Chromium and its driver are needed for the browser test; on Debian: "
        "apt-get install chromium chromium-driver"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the browser is missing. {reason}")
    raise unittest.SkipTest(reason)


def raw_options(pk: Any) -> Any:
    table = connection.ops.quote_name(Connection._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT options FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.mark.browser
class ConnectionAdminInChromiumTests(StaticLiveServerTestCase):
    driver: Any
    profile: str

    @classmethod
    def setUpClass(cls) -> None:
        chromium, driver_path = _browser_or_skip()
        super().setUpClass()
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        cls.profile = tempfile.mkdtemp(prefix="authhero-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={cls.profile}",
            "--window-size=1280,900",
        ):
            options.add_argument(argument)
        try:
            cls.driver = webdriver.Chrome(
                service=Service(executable_path=driver_path), options=options
            )
        except Exception:
            super().tearDownClass()
            shutil.rmtree(cls.profile, ignore_errors=True)
            raise
        cls.driver.implicitly_wait(5)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.driver.quit()
        shutil.rmtree(cls.profile, ignore_errors=True)
        super().tearDownClass()

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SCREENSHOTS / name))

    def assert_no_secret(self) -> None:
        text = self.driver.find_element("tag name", "body").text
        source = self.driver.page_source
        for shown in (text, source):
            assert SECRET not in shown
            assert "enc:v1:" not in shown

    def test_search_open_rename_keeps_the_secret(self) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        load_demo_data()
        get_user_model()._default_manager.create_superuser("admin", password="pw-browser-1")
        facebook = Connection.objects.get(name="facebook")
        stored_before = raw_options(facebook.pk)
        driver, wait = self.driver, WebDriverWait(self.driver, 10)

        driver.get(f"{self.live_server_url}/admin/login/?next=/admin/authhero/connection/")
        driver.find_element(By.NAME, "username").send_keys("admin")
        driver.find_element(By.NAME, "password").send_keys("pw-browser-1", Keys.ENTER)
        search = wait.until(expected_conditions.presence_of_element_located((By.ID, "searchbar")))
        search.send_keys(CLIENT_ID, Keys.ENTER)
        wait.until(expected_conditions.url_contains("q="))
        rows = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert len(rows) == 1
        assert CLIENT_ID in rows[0].text
        self.assert_no_secret()
        self.screenshot("connection_list_search.png")

        rows[0].find_element(By.LINK_TEXT, "facebook").click()
        name = wait.until(expected_conditions.presence_of_element_located((By.ID, "id_name")))
        body = driver.find_element(By.TAG_NAME, "body").text
        options = driver.find_element(By.ID, "id_options").get_property("value")
        assert CLIENT_ID in options
        assert "********" in options
        assert "app_secret: encrypted" in body
        self.assert_no_secret()
        self.screenshot("connection_change.png")

        name.clear()
        name.send_keys("facebook-renamed")
        driver.find_element(By.NAME, "_save").click()
        wait.until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".messagelist"))
        )
        assert "facebook-renamed" in driver.find_element(By.TAG_NAME, "body").text
        self.assert_no_secret()
        self.screenshot("connection_list_saved.png")

        assert Connection.objects.get(pk=facebook.pk).name == "facebook-renamed"
        stored_after = raw_options(facebook.pk)
        assert load_json(stored_after)["app_secret"] == load_json(stored_before)["app_secret"]
        assert stored_after == stored_before

    def test_a_pasted_pem_reads_back_byte_identical(self) -> None:
        """SigningKey.pkcs7 (envelope-encrypted) edited in its write-only textarea: the PEM is
        typed in as a paste would put it, the browser submits it (with CRLF newlines), and the
        plaintext read back is the file's bytes."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        load_demo_data()
        get_user_model()._default_manager.create_superuser("admin", password="pw-browser-1")
        key = SigningKey.objects.order_by("pk").first()
        assert key is not None
        driver, wait = self.driver, WebDriverWait(self.driver, 10)
        driver.get(
            f"{self.live_server_url}/admin/login/?next=/admin/authhero/signingkey/{key.pk}/change/"
        )
        driver.find_element(By.NAME, "username").send_keys("admin")
        driver.find_element(By.NAME, "password").send_keys("pw-browser-1", Keys.ENTER)
        area = wait.until(expected_conditions.presence_of_element_located((By.NAME, "pkcs7")))
        assert area.tag_name == "textarea"
        assert area.get_property("value") == ""  # write-only: nothing of the stored key
        assert "env:v1:" not in driver.page_source
        area.send_keys(PEM)
        assert area.get_property("value") == PEM  # what the page holds before it is sent
        self.screenshot("signingkey_pem_pasted.png")
        driver.find_element(By.NAME, "_save").click()
        wait.until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".messagelist"))
        )
        assert "env:v1:" not in driver.page_source
        read_back = SigningKey.objects.get(pk=key.pk).pkcs7
        assert read_back.encode() == PEM.encode()
        table = connection.ops.quote_name(SigningKey._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pkcs7 FROM {table} WHERE id = %s", [key.pk])
            assert cursor.fetchone()[0].startswith("env:v1:")


@pytest.mark.parametrize(
    ("ci", "outcome"), [("", unittest.SkipTest), ("true", pytest.fail.Exception)]
)
def test_missing_browser_skips_outside_ci_and_fails_under_ci(monkeypatch, ci, outcome):
    pytest.importorskip("selenium")
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", ("no-such-chromium", "/nonexistent"))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="apt-get install chromium chromium-driver"):
        _browser_or_skip()
