"""The reference web phone (deploy/webphone) in headless Chromium, Debian's binary driven by
its chromedriver, against the reference edge over secure WebSocket and rtpengine: a web device
registers with nothing but its web view, and calls phones and the outside world with audio
both ways."""

from __future__ import annotations

import functools
import json
import os
import re
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers.browser import chromium
from tests.helpers.ports import reserve_port

from .harness import (
    ROOT,
    Kamailio,
    MakeTenant,
    Rtpengine,
    Service,
    Sipp,
    Tenant,
    find_tool,
    new_edge_plan,
    start_kamailio,
    start_rtpengine,
    start_service,
)

pytestmark = [pytest.mark.sip, pytest.mark.browser]
WEBPHONE = ROOT / "deploy" / "webphone"
OUTSIDE_NUMBER = "0912345678"


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
    arguments = (
        # The edge's certificate is the tests' own, self-signed.
        "--ignore-certificate-errors",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--allow-loopback-in-peer-connection",
    )
    with chromium(tmp_path, arguments) as driver:
        yield driver


def _web_view(tenant: Tenant, device_id: str) -> dict[str, Any]:
    resp = tenant.api.get(f"/v1/devices/{device_id}/config?reveal=password")
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
    # The service shows it online, over secure WebSocket, with the browser's user agent.
    contacts = _wait_online(tenant, device["id"], True)
    assert [(c["transport"], c["source_address"]) for c in contacts] == [("wss", "127.0.0.1")]
    assert "SIP.js" in (contacts[0]["user_agent"] or ""), contacts

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
    # ... and the service shows the device offline.
    assert _wait_online(tenant, device["id"], False) == []


def _wait_online(
    tenant: Tenant, device_id: str, online: bool, timeout: float = 10
) -> list[dict[str, Any]]:
    """The device's contacts once the service shows it `online` (registered) or not."""
    deadline = time.monotonic() + timeout
    while True:
        resp = tenant.api.get(f"/v1/devices/{device_id}")
        assert resp.status_code == 200, resp.text
        if resp.json()["registered"] is online:
            break
        assert time.monotonic() < deadline, f"registered is not {online} after {timeout} s"
        time.sleep(0.1)
    resp = tenant.api.get(f"/v1/devices/{device_id}/registrations")
    assert resp.status_code == 200, resp.text
    contacts: list[dict[str, Any]] = resp.json()["items"]
    return contacts


# --- calls with audio ---------------------------------------------------------------------


def _element(driver: Any, element: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element)


def _attribute(driver: Any, element: str, name: str) -> str | None:
    value = _element(driver, element).get_attribute(name)
    return None if value is None else str(value)


def _state(driver: Any, element: str) -> tuple[str, str]:
    return str(_attribute(driver, element, "data-state")), str(_element(driver, element).text)


def _wait_state(driver: Any, element: str, *states: str, timeout: float = 15) -> str:
    """Waits until the element's state is one of `states`; returns its text."""
    deadline = time.monotonic() + timeout
    while True:
        state, text = _state(driver, element)
        if state in states:
            return text
        assert time.monotonic() < deadline, f"{element} stayed {state!r} ({text})"
        time.sleep(0.05)


def _state_ms(driver: Any, element: str) -> float:
    """When the element last changed state, in ms since the page loaded."""
    return float(_attribute(driver, element, "data-ms") or 0)


def _call_id(driver: Any) -> str:
    return str(_attribute(driver, "call-status", "data-call-id"))


def _click(driver: Any, button: str) -> float:
    """Clicks a button; returns the page's clock (ms since it loaded) just before."""
    now = float(driver.execute_script("return performance.now()"))
    _element(driver, button).click()
    return now


def _dial(driver: Any, number: str) -> float:
    field = _element(driver, "number")
    field.clear()
    field.send_keys(number)
    return _click(driver, "call")


def _packets(driver: Any) -> tuple[int, int]:
    """Audio packets the browser has sent and received on its call so far."""
    sent = _attribute(driver, "media", "data-sent")
    received = _attribute(driver, "media", "data-received")
    return int(sent or 0), int(received or 0)


def _wait_for_audio(driver: Any, packets: int = 50, timeout: float = 10) -> tuple[int, int]:
    """Waits until the browser has both sent and received `packets` audio packets."""
    deadline = time.monotonic() + timeout
    while True:
        sent, received = _packets(driver)
        if sent >= packets and received >= packets:
            return sent, received
        assert time.monotonic() < deadline, f"audio: {sent} sent, {received} received"
        time.sleep(0.2)


def _leg_packets(engine: Rtpengine, call_id: str) -> dict[str, int]:
    """RTP packets rtpengine has received on each leg of the call, by the leg's profile
    ("UDP/TLS/RTP/SAVPF" towards a browser, "RTP/AVP" towards a phone)."""
    legs: dict[str, int] = {}
    profile = None
    for line in engine.session(call_id).splitlines():
        if match := re.search(r"Media #\d+ \(audio over (\S+)\)", line):
            profile = match.group(1)
        elif profile and "(RTCP)" not in line and (match := re.search(r", (\d+) p,", line)):
            legs[profile] = legs.get(profile, 0) + int(match.group(1))
    return legs


def _wait_for_legs(engine: Rtpengine, call_id: str, timeout: float = 5) -> dict[str, int]:
    """Waits until rtpengine has had RTP from both the browser's and the phone's side."""
    deadline = time.monotonic() + timeout
    while True:
        legs = _leg_packets(engine, call_id)
        if legs.get("UDP/TLS/RTP/SAVPF", 0) > 0 and legs.get("RTP/AVP", 0) > 0:
            return legs
        assert time.monotonic() < deadline, f"{legs}\n{engine.session(call_id)}"
        time.sleep(0.2)


def _web_user(tenant: Tenant, name: str, extension: str) -> tuple[str, dict[str, Any]]:
    """A user with its default web device and an extension; returns its id and web view."""
    resp = tenant.api.post("/v1/users", json={"display_name": name})
    assert resp.status_code == 201, resp.text
    user = resp.json()
    resp = tenant.api.post(f"/v1/users/{user['id']}/extensions", json={"number": extension})
    assert resp.status_code == 201, resp.text
    return user["id"], _web_view(tenant, user["devices"][0]["id"])


def _phone_user(
    tenant: Tenant, sipp: Sipp, name: str, extension: str, port: int
) -> tuple[str, Any]:
    """A user with an IP phone registered at 127.0.0.1:`port` and an extension."""
    user = tenant.create_user(name)
    resp = tenant.api.post(f"/v1/users/{user.id}/extensions", json={"number": extension})
    assert resp.status_code == 201, resp.text
    phone = user.devices[0]
    registered = sipp.register(phone.name, phone.password, tenant.sip_domain, contact_port=port)
    assert registered.code == 200, registered.log
    return user.id, phone


def test_browser_and_ip_phone_call_each_other_with_audio_both_ways(
    make_tenant: MakeTenant,
    kamailio: Kamailio,
    rtpengine: Rtpengine,
    browser: Any,
    webphone_url: str,
    sipp: Sipp,
) -> None:
    tenant = make_tenant("Media")
    _, view = _web_user(tenant, "Mai", "210")
    phone_port = reserve_port()
    _, phone = _phone_user(tenant, sipp, "Pat", "211", phone_port)
    state, _ = _open(browser, webphone_url, view)
    assert state == "registered", state

    # Browser -> the phone's extension: WebRTC on the browser's leg, plain RTP on the phone's.
    setup_ms = []
    for _ in range(3):
        desk = sipp.uas("uas_answer.xml", phone_port, echo=True)
        clicked = _dial(browser, "211")
        _wait_state(browser, "call-status", "connected", "refused", "ended")
        status, text = _state(browser, "call-status")
        assert status == "connected", (text, desk.log())
        setup_ms.append(int(_state_ms(browser, "call-status")) - clicked)
        # The phone sends back what it hears, so the browser hears itself through both legs.
        _wait_for_audio(browser)
        _wait_for_legs(rtpengine, _call_id(browser))
        # The browser hangs up; the phone gets the BYE.
        _click(browser, "hangup")
        _wait_state(browser, "call-status", "ended")
        assert desk.finish().returncode == 0, desk.log()
    print(
        f"\ncall set-up browser -> IP phone: {statistics.median(setup_ms):.0f} ms median "
        f"({min(setup_ms):.0f}-{max(setup_ms):.0f} ms over {len(setup_ms)} calls)"
    )

    # The phone -> the browser's extension, answered in the browser; the phone hangs up.
    with ThreadPoolExecutor(max_workers=1) as pool:
        calling = pool.submit(
            sipp.call, phone.name, phone.password, tenant.sip_domain, "210",
            hold_ms=4000, echo=True,
        )  # fmt: skip
        assert "ringing" in _wait_state(browser, "call-status", "ringing")
        _click(browser, "answer")
        _wait_state(browser, "call-status", "connected")
        _wait_for_audio(browser)
        _wait_for_legs(rtpengine, _call_id(browser))
        _wait_state(browser, "call-status", "ended", timeout=10)
        call = calling.result(timeout=30)
    assert call.code == 200 and call.lines("HUNGUP"), call.log


def test_the_browser_answers_by_itself_only_when_auto_answer_is_on(
    make_tenant: MakeTenant, kamailio: Kamailio, browser: Any, webphone_url: str, sipp: Sipp
) -> None:
    tenant = make_tenant("Auto")
    user_id, view = _web_user(tenant, "Ana", "220")
    _, phone = _phone_user(tenant, sipp, "Bob", "221", reserve_port())
    state, _ = _open(browser, webphone_url, view)
    assert state == "registered", state

    resp = tenant.api.patch(f"/v1/users/{user_id}/toggles", json={"auto_answer": True})
    assert resp.status_code == 200, resp.text
    with ThreadPoolExecutor(max_workers=1) as pool:
        calling = pool.submit(
            sipp.call, phone.name, phone.password, tenant.sip_domain, "220",
            hold_ms=2000, echo=True,
        )  # fmt: skip
        # Nobody presses anything.
        _wait_state(browser, "call-status", "connected", timeout=10)
        arrived = float(_attribute(browser, "call-status", "data-arrived-ms") or 0)
        answered_after_ms = _state_ms(browser, "call-status") - arrived
        assert 0 <= answered_after_ms < 2000, answered_after_ms
        _wait_for_audio(browser)
        _wait_state(browser, "call-status", "ended", timeout=10)
        call = calling.result(timeout=30)
    assert call.code == 200 and call.lines("HUNGUP"), call.log
    print(f"\nauto-answer: connected {answered_after_ms:.0f} ms after the INVITE arrived")

    resp = tenant.api.patch(f"/v1/users/{user_id}/toggles", json={"auto_answer": False})
    assert resp.status_code == 200, resp.text
    with ThreadPoolExecutor(max_workers=1) as pool:
        calling = pool.submit(sipp.call, phone.name, phone.password, tenant.sip_domain, "220")
        _wait_state(browser, "call-status", "ringing")
        # It rings, and keeps ringing: no answer without the agent.
        time.sleep(3)
        assert _state(browser, "call-status")[0] == "ringing"
        _click(browser, "hangup")
        call = calling.result(timeout=30)
    assert call.code == 480 and not call.lines("ANSWERED"), call.log


def test_the_browser_calls_outside_within_its_switch_and_its_quota(
    make_tenant: MakeTenant,
    kamailio: Kamailio,
    rtpengine: Rtpengine,
    browser: Any,
    webphone_url: str,
    sipp: Sipp,
    service: Service,
) -> None:
    tenant = make_tenant("Outside", billing_increment_seconds=1)
    user_id, view = _web_user(tenant, "Ola", "230")
    state, _ = _open(browser, webphone_url, view)
    assert state == "registered", state
    gateway = sipp.uas("uas_answer.xml", kamailio.gateway_port, echo=True)

    resp = tenant.api.patch(f"/v1/users/{user_id}/toggles", json={"outbound_allowed": False})
    assert resp.status_code == 200, resp.text
    _dial(browser, OUTSIDE_NUMBER)
    refused = _wait_state(browser, "call-status", "refused", "connected")
    assert refused.startswith("refused: 403") and "outbound_disabled" in refused, refused
    assert gateway.invites() == []

    # Outbound on, with 4 seconds of the month's minute left.
    resp = tenant.api.patch(f"/v1/users/{user_id}/toggles", json={"outbound_allowed": True})
    assert resp.status_code == 200, resp.text
    resp = tenant.api.put(f"/v1/users/{user_id}/quota", json={"limit_minutes": 1})
    assert resp.status_code == 200, resp.text
    with service.client(service.call_control_key) as call_control:
        resp = call_control.post(
            "/v1/call-control/usage",
            json={
                "domain": tenant.sip_domain,
                "username": view["authorization_user"],
                "call_id": f"earlier-{uuid.uuid4().hex}",
                "destination": OUTSIDE_NUMBER,
                "started_at": int(time.time()) - 600,
                "duration_seconds": 56,
            },
        )
    assert resp.status_code == 201, resp.text

    _dial(browser, OUTSIDE_NUMBER)
    _wait_state(browser, "call-status", "connected", "refused")
    assert _state(browser, "call-status")[0] == "connected"
    connected_ms = _state_ms(browser, "call-status")
    _wait_for_audio(browser, packets=25)
    _wait_for_legs(rtpengine, _call_id(browser))
    # Kamailio, not the browser or the gateway, ends it when the 4 seconds are used.
    _wait_state(browser, "call-status", "ended", timeout=10)
    held_ms = _state_ms(browser, "call-status") - connected_ms
    assert 3500 <= held_ms <= 6500, held_ms
    gw = gateway.finish()
    assert "Call time limit reached" in gw.lines("BYE ")[0], gw.log

    recorded = tenant.wait_for_call(user_id, _call_id(browser))
    assert [(c["duration_seconds"], c["charged_seconds"]) for c in recorded] == [(4, 4)]
    quota = tenant.api.get(f"/v1/users/{user_id}/quota").json()
    assert quota["used_seconds"] == 60 and quota["remaining_seconds"] == 0, quota


def test_the_browser_cannot_call_out_without_the_service_or_the_media_bridge(
    sip_tools: None, browser: Any, webphone_url: str, tmp_path: Path
) -> None:
    # A service, an rtpengine and a Kamailio of their own, so stopping them spares the others.
    plan = new_edge_plan()
    own_service = start_service(tmp_path / "service", plan)
    engine: Rtpengine | None = None
    kam: Kamailio | None = None
    runner: Sipp | None = None
    try:
        engine = start_rtpengine(tmp_path / "rtpengine")
        tenant = own_service.create_tenant("Down", "down.test")
        kam = start_kamailio(
            tmp_path / "kamailio",
            own_service.url,
            own_service.call_control_key,
            plan=plan,
            rtpengine=engine,
        )
        user_id, view = _web_user(tenant, "Dan", "240")
        resp = tenant.api.put(f"/v1/users/{user_id}/quota", json={"limit_minutes": 1})
        assert resp.status_code == 200, resp.text
        state, _ = _open(browser, webphone_url, view)
        assert state == "registered", state
        runner = Sipp(kam, tmp_path)
        gateway = runner.uas("uas_answer.xml", kam.gateway_port)

        # No media bridge: the call is refused, and the minute it was granted is given back.
        engine.stop()
        _dial(browser, OUTSIDE_NUMBER)
        refused = _wait_state(browser, "call-status", "refused", "connected")
        assert refused.startswith("refused: 503"), refused
        [attempt] = tenant.wait_for_call(user_id, _call_id(browser))
        assert attempt["charged_seconds"] == 0, attempt
        quota = tenant.api.get(f"/v1/users/{user_id}/quota").json()
        assert quota["used_seconds"] == 0 and quota["remaining_seconds"] == 60, quota

        # No service: refused too (fail closed).
        own_service.stop()
        _dial(browser, OUTSIDE_NUMBER)
        refused = _wait_state(browser, "call-status", "refused", "connected")
        assert refused.startswith("refused: 503"), refused
        assert gateway.invites() == []
    finally:
        # The gateway gets no call: it would wait out its own timeout, on a port of this run.
        if runner is not None:
            runner.stop_all()
        if kam is not None:
            kam.stop()
        if engine is not None:
            engine.stop()
        own_service.stop()


def test_an_extension_call_rings_a_browser_and_a_desk_phone_each_with_its_own_media(
    make_tenant: MakeTenant,
    kamailio: Kamailio,
    rtpengine: Rtpengine,
    browser: Any,
    webphone_url: str,
    sipp: Sipp,
) -> None:
    tenant = make_tenant("Fork")
    agent_id, view = _web_user(tenant, "Eve", "250")
    desk_port = reserve_port()
    desk = tenant.add_device(agent_id, "eve-desk")
    assert (
        sipp.register(desk.name, desk.password, tenant.sip_domain, contact_port=desk_port).code
        == 200
    )
    _, caller = _phone_user(tenant, sipp, "Fay", "251", reserve_port())
    resp = tenant.api.patch(f"/v1/users/{agent_id}/toggles", json={"auto_answer": True})
    assert resp.status_code == 200, resp.text
    state, _ = _open(browser, webphone_url, view)
    assert state == "registered", state

    ringing = sipp.uas("uas_ring.xml", desk_port)
    with ThreadPoolExecutor(max_workers=1) as pool:
        calling = pool.submit(
            sipp.call, caller.name, caller.password, tenant.sip_domain, "250",
            hold_ms=2000, echo=True,
        )  # fmt: skip
        # The browser answers (auto-answer) with WebRTC media; the caller's audio comes back.
        _wait_state(browser, "call-status", "connected", timeout=10)
        _wait_for_audio(browser)
        _wait_for_legs(rtpengine, _call_id(browser))
        call = calling.result(timeout=30)
    assert call.code == 200, call.log
    # The desk phone rang with a plain RTP offer, and was cancelled once the browser answered.
    rang = ringing.finish()
    assert rang.returncode == 0, rang.log
    [media] = rang.lines("MEDIA ")
    assert " RTP/AVP " in media, media
