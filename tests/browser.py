"""A real browser for the Airflow UI: Chromium from the system (scripts/chromium.sh installs it) driven by
Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


def chromium_path() -> str:
    """The Chromium to drive; a missing one fails the test (the test command installs it)."""
    for candidate in (os.environ.get("MLPIPE_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail(
        "Chromium is not installed: run `bash scripts/chromium.sh` (the test command does) or set MLPIPE_CHROMIUM"
    )


@contextmanager
def signed_in_page(url: str, user: str, password: str) -> Iterator[Any]:
    """A page of the Airflow UI at `url`, signed in through the simple auth manager's login form."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(url + "/")
            page.get_by_label("Username").fill(user)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Dags").first.wait_for()
            yield page
        finally:
            browser.close()
