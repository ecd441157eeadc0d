"""Linphone set up from its QR code alone: Debian's linphonec (liblinphone 5.1) takes the code's
one-time link as its remote provisioning URL, registers through the reference edge and answers a
call to its agent's extension."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image

from .harness import Kamailio, Linphonec, MakeTenant, Sipp, Tenant

pytestmark = pytest.mark.sip


def _qr_text(data_uri: str) -> str:
    """What a phone's camera reads from the PNG."""
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(data_uri.removeprefix(prefix))))
    (found,) = zxingcpp.read_barcodes(image)
    text: str = found.text
    return text


def _fetches(tenant: Tenant, device_id: str) -> list[tuple[str, int]]:
    """The device's provisioning fetches the service recorded, newest first."""
    resp = tenant.api.get(f"/v1/devices/{device_id}/provisioning")
    assert resp.status_code == 200, resp.text
    return [(f["outcome"], f["status_code"]) for f in resp.json()["last_fetches"]]


@pytest.fixture
def linphonec(kamailio: Kamailio, tmp_path: Path) -> Iterator[Callable[[str], Linphonec]]:
    """Starts linphonec with a remote provisioning URL, trusting the edge's certificate."""
    started: list[Linphonec] = []

    def start(config_uri: str) -> Linphonec:
        phone = Linphonec(
            tmp_path / f"linphonec-{len(started) + 1}", config_uri, ca_file=kamailio.certificate
        )
        started.append(phone)
        return phone

    try:
        yield start
    finally:
        for phone in started:
            phone.stop()


def test_linphonec_registers_and_rings_from_the_qr_code_link_alone(
    make_tenant: MakeTenant, sipp: Sipp, linphonec: Callable[[str], Linphonec]
) -> None:
    tenant = make_tenant("Linphone")
    agent = tenant.create_user("Lina", devices=0)
    resp = tenant.api.post(
        f"/v1/users/{agent.id}/devices",
        json={"name": "lina-mobile", "kind": "softphone", "password": f"Pw{uuid.uuid4().hex}"},
    )
    assert resp.status_code == 201, resp.text
    device_id = resp.json()["id"]
    resp = tenant.api.post(f"/v1/users/{agent.id}/extensions", json={"number": "241"})
    assert resp.status_code == 201, resp.text
    resp = tenant.api.patch(f"/v1/users/{agent.id}/toggles", json={"auto_answer": True})
    assert resp.status_code == 200, resp.text
    caller = tenant.create_user("Carl").devices[0]

    resp = tenant.api.post(f"/v1/devices/{device_id}/provisioning-links", json={"app": "linphone"})
    assert resp.status_code == 201, resp.text
    link = _qr_text(resp.json()["png"])
    assert link == resp.json()["payload"]

    # Nothing but the link (and where to listen, and the edge's certificate to trust).
    phone = linphonec(link)
    status = phone.wait_registered()
    assert f'identity="Lina" <sip:lina-mobile@{tenant.sip_domain}>' in status, status

    # It fetched the link, which works only once.
    assert _fetches(tenant, device_id) == [("served", 200)]
    assert httpx.get(link, timeout=10).status_code == 410
    assert _fetches(tenant, device_id) == [("link_used", 410), ("served", 200)]
    # The account it registered came from the file: over TLS, the edge's best transport,
    # authenticated with the digest HA1 (the file has no password).
    log = phone.log()
    assert "Set auth_info_0|ha1 = " in log
    assert "Set auth_info_0|passwd" not in log
    config = phone.config.read_text()
    assert "transport=tls" in config
    # ... and it will not ask for the used link again at its next start.
    assert "config-uri" not in config

    # The edge knows where it is: a call to the agent's extension rings it, and it answers.
    since = len(phone.output())
    with ThreadPoolExecutor(max_workers=1) as pool:
        calling = pool.submit(
            sipp.call, caller.name, caller.password, tenant.sip_domain, "241", hold_ms=2000
        )
        incoming = phone.wait_for(
            r"Receiving new incoming call from (.*), assigned id (\d+)", timeout=20, since=since
        )
        phone.send(f"answer {incoming.group(2)}")
        call = calling.result(timeout=60)
    assert call.final is not None and call.final[0] == 200, f"{call.log}\n{call.output[-2000:]}"
    assert f"sip:{caller.name}@{tenant.sip_domain}" in incoming.group(1)
    phone.wait_for(r"Media streams established with .* \(audio\)", since=since)
    phone.wait_for(r"Call \d+ with .* ended", timeout=15, since=since)
    # The user's auto-answer reached it as the edge's Call-Info header.
    assert "The caller asked to automatically answer the call" in phone.log()
