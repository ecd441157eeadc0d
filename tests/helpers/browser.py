"""Headless Chromium for the tests that drive a page: Debian's binary and its chromedriver
(packages chromium and chromium-driver, deploy/kamailio/install-deps.sh), through selenium.
Nothing is downloaded: without them the tests skip, and fail in CI.

    require_chromium()
    with chromium(tmp_path) as driver:
        driver.get(url)
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import reserve_port

# Where Debian puts them, besides PATH.
_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/lib/chromium"])


def _tool(name: str) -> str | None:
    return shutil.which(name, path=_SEARCH)


def missing_chromium() -> str | None:
    """Why Chromium cannot be driven here, or None when it can."""
    if _tool("chromium") is None or _tool("chromedriver") is None:
        return "chromium and chromium-driver are not installed (apt-get install chromium-driver)"
    return None


def require_chromium() -> None:
    """Skips the test without Chromium; fails it in CI, where that is a broken setup."""
    reason = missing_chromium()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def chromium(workdir: Path, arguments: Sequence[str] = ()) -> Iterator[Any]:
    """A headless Chromium with a profile of its own in `workdir`, quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = workdir / "chromium"
    options = webdriver.ChromeOptions()
    options.binary_location = str(_tool("chromium"))
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1024",
        f"--user-data-dir={profile}",
        *arguments,
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=Service(executable_path=str(_tool("chromedriver")), port=reserve_port()),
        options=options,
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
