"""The reference web phone (deploy/webphone) in headless Chromium, Debian's binary driven by
its chromedriver, against the reference edge over secure WebSocket: a web device registers
with nothing but its web view."""

from __future__ import annotations

import functools
import json
import os
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .harness import ROOT, Kamailio, MakeTenant, Sipp, Tenant, find_tool

pytestmark = [pytest.mark.sip, pytest.mark.browser]
WEBPHONE = ROOT / "deploy" / "webphone"


def _missing_browser() -> str | None:
    if find_tool("chromium") is None or find_tool("chromedriver") is None:
        return "chromium and chromium-driver are not installed (apt-get install chromium-driver)"
    if not (WEBPHONE / "node_modules" / "sip.js").is_dir():
        return "the web phone's packages are missing: run `npm ci` in deploy/webphone"
    return None


@pytest.fixture(scope="module")
def webphone_url() -> Iterator[str]:
    missing = _missing_browser()
    if missing is not None:
        # In CI a missing browser is a broken setup, not a reason to skip.
        if os.environ.get("CI") == "true":
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(WEBPHONE))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()


@pytest.fixture
def browser(webphone_url: str, tmp_path: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    options = webdriver.ChromeOptions()
    options.binary_location = str(find_tool("chromium"))
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        # The edge's certificate is the tests' own, self-signed.
        "--ignore-certificate-errors",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=ChromeService(executable_path=str(find_tool("chromedriver"))), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


def _web_view(tenant: Tenant, device_id: str) -> dict[str, Any]:
    resp = tenant.api.get(f"/v1/devices/{device_id}/config")
    assert resp.status_code == 200, resp.text
    view: dict[str, Any] = resp.json()["web"]
    return view


def _open(driver: Any, url: str, view: dict[str, Any], timeout: float = 15) -> tuple[str, int]:
    """Opens the phone with this view; returns its registration state and when it got there
    (ms since the page started loading)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get(f"{url}#config={quote(json.dumps(view))}")
    status = driver.find_element(By.ID, "status")
    WebDriverWait(driver, timeout).until(
        lambda _: status.get_attribute("data-state") in ("registered", "failed")
    )
    return status.text, int(status.get_attribute("data-ms") or 0)


def test_a_web_device_registers_from_the_browser_with_only_its_web_view(
    make_tenant: MakeTenant, kamailio: Kamailio, browser: Any, webphone_url: str, sipp: Sipp
) -> None:
    tenant = make_tenant("Browser")
    resp = tenant.api.post("/v1/users", json={"display_name": "Mai"})
    assert resp.status_code == 201, resp.text
    device = resp.json()["devices"][0]
    assert device["kind"] == "web"
    view = _web_view(tenant, device["id"])
    assert view["websocket_url"] == f"wss://127.0.0.1:{kamailio.wss_port}/ws"

    timings = []
    for _ in range(3):
        state, after_ms = _open(browser, webphone_url, view)
        assert state == "registered", state
        timings.append(after_ms)
    print(
        f"\npage load -> registered: {statistics.median(timings)} ms median "
        f"({min(timings)}-{max(timings)} ms over {len(timings)} loads)"
    )

    state, _ = _open(browser, webphone_url, {**view, "password": "Wrongpassword42"})
    assert state.startswith("failed: 401"), state

    resp = tenant.api.patch(f"/v1/devices/{device['id']}", json={"enabled": False})
    assert resp.status_code == 200, resp.text
    state, _ = _open(browser, webphone_url, view)
    assert state.startswith("failed: 403"), state
    # Enabled again, the same page registers at once.
    resp = tenant.api.patch(f"/v1/devices/{device['id']}", json={"enabled": True})
    assert resp.status_code == 200, resp.text
    started = time.monotonic()
    state, _ = _open(browser, webphone_url, view)
    assert state == "registered", state
    assert time.monotonic() - started < 15

    # The browser's contact lives as long as its socket: once the tab is gone, an extension
    # call finds nobody registered (no contact left behind for the registration's hour).
    resp = tenant.api.post(f"/v1/users/{resp.json()['user_id']}/extensions", json={"number": "120"})
    assert resp.status_code == 201, resp.text
    caller = tenant.create_user("Nam").devices[0]
    phone_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    other_tab = browser.current_window_handle
    browser.switch_to.window(phone_tab)
    browser.close()
    browser.switch_to.window(other_tab)
    deadline = time.monotonic() + 5
    while True:
        result = sipp.call(caller.name, caller.password, tenant.sip_domain, "120")
        if result.code == 480 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.code == 480, result.log
