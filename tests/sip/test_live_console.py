"""Live dots in Chromium: a page subscribed to the service's event stream with a person's token
from the identity provider shows a device's dot turn green when the reference edge registers a
phone (sipp) for it, and grey again when the phone unregisters."""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers.browser import chromium
from tests.helpers.idp import IdentityProvider, require_provider
from tests.helpers.ports import reserve_port

from .harness import find_tool, own_edge

pytestmark = [pytest.mark.sip, pytest.mark.browser]
CONSOLE = Path(__file__).parent / "console"


@pytest.fixture
def console_origin() -> Iterator[str]:
    """The page, from an origin of its own (the service allows it by CORS)."""
    if find_tool("chromium") is None or find_tool("chromedriver") is None:
        message = "chromium and chromium-driver are not installed (apt-get install chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(CONSOLE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[IdentityProvider]:
    require_provider()
    provider = IdentityProvider(tmp_path / "idp")
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path) as driver:
        yield driver


def test_a_devices_dot_turns_green_when_the_edge_registers_its_phone(
    tmp_path: Path, idp: IdentityProvider, console_origin: str, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings = {
        "ANTRING_OIDC_ISSUER": idp.issuer,
        "ANTRING_OIDC_AUDIENCE": idp.audience,
        "ANTRING_CORS_ORIGINS": json.dumps([console_origin]),
    }
    with own_edge(tmp_path, "Live", "live.test", settings=settings) as edge:
        agent = edge.tenant.create_user("Hoa")
        [phone] = agent.devices
        idp.add_account(
            "hoa.viewer", tenant_id=edge.tenant.id, roles=["viewer"], name="Hoa", email=None
        )
        token = idp.person_token("hoa.viewer")

        page = (
            f"{console_origin}/index.html?service={quote(edge.service.url)}"
            f"&devices={phone.id}#token={quote(token)}"
        )
        browser.get(page)
        state = browser.find_element(By.ID, "state")
        WebDriverWait(browser, 10).until(lambda _: state.text != "connecting")
        assert state.text == "subscribed", state.text
        dot = browser.find_element(By.ID, f"dot-{phone.id}")
        assert "online" not in (dot.get_attribute("class") or "")

        domain, port = edge.tenant.sip_domain, reserve_port()
        registered = edge.sipp.register(phone.name, phone.password, domain, contact_port=port)
        assert registered.final is not None and registered.final[0] == 200, registered.log
        # The page learns it from the stream, within a second of the edge's report.
        WebDriverWait(browser, 2, poll_frequency=0.05).until(
            lambda _: "online" in (dot.get_attribute("class") or "")
        )

        gone = edge.sipp.register(phone.name, phone.password, domain, contact_port=port, expires=0)
        assert gone.final is not None and gone.final[0] == 200, gone.log
        WebDriverWait(browser, 2, poll_frequency=0.05).until(
            lambda _: "online" not in (dot.get_attribute("class") or "")
        )
