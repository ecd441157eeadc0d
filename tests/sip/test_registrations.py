"""Devices show whether they are online: the reference edge reports every registration change
to the service, and the service ends registrations at the edge."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import reserve_port

from .harness import (
    Device,
    Kamailio,
    MakeTenant,
    Sipp,
    SippResult,
    Tenant,
    own_edge,
)

pytestmark = pytest.mark.sip


def _ok(result: SippResult) -> None:
    assert result.final is not None and result.final[0] == 200, (
        f"expected 200, got {result.final}\n{result.log}\n{result.output[-2000:]}"
    )


def _device(tenant: Tenant, device_id: str) -> dict[str, Any]:
    resp = tenant.api.get(f"/v1/devices/{device_id}")
    assert resp.status_code == 200, resp.text
    device: dict[str, Any] = resp.json()
    return device


def _contacts(tenant: Tenant, device_id: str) -> list[dict[str, Any]]:
    resp = tenant.api.get(f"/v1/devices/{device_id}/registrations")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def _wait_registered(tenant: Tenant, device: Device, registered: bool, seconds: float) -> float:
    """Seconds until the service shows the device `registered` (fails after `seconds`)."""
    started = time.monotonic()
    while True:
        shown = _device(tenant, device.id)
        if shown["registered"] is registered:
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, (
            f"{device.name} still shows registered={shown['registered']} after {seconds} s"
        )
        time.sleep(0.05)


def _changes(tenant: Tenant, device: Device) -> list[str]:
    """The device's registration events, oldest first, from the audit trail."""
    resp = tenant.api.get("/v1/audit-events", params={"resource_id": device.id})
    assert resp.status_code == 200, resp.text
    actions = [entry["action"] for entry in reversed(resp.json()["items"])]
    return [action for action in actions if action.startswith("device.") and "register" in action]


def _listed(
    tenant: Tenant, user_id: str, *devices: Device, expected: dict[str, bool]
) -> dict[str, bool]:
    """These devices of the user as the Users table shows them (name -> registered), once they
    are as `expected` or a second has passed."""
    deadline = time.monotonic() + 1.0
    while True:
        resp = tenant.api.get(f"/v1/users/{user_id}")
        assert resp.status_code == 200, resp.text
        shown = {d["name"]: d["registered"] for d in resp.json()["devices"]}
        listed = {device.name: shown[device.name] for device in devices}
        if listed == expected or time.monotonic() > deadline:
            return listed
        time.sleep(0.05)


def test_a_device_shows_its_registrations_as_the_edge_sees_them(
    make_tenant: MakeTenant, sipp: Sipp, kamailio: Kamailio
) -> None:
    tenant = make_tenant("Presence")
    # Two phones on one account (below): the tenant lets an IP phone hold two contacts.
    resp = tenant.api.patch("/v1/outbound-policy", json={"registration_limits": {"ip_phone": 2}})
    assert resp.status_code == 200, resp.text
    agent = tenant.create_user("Hoa", devices=3)
    desk, soft, tcp_phone = agent.devices
    domain = tenant.sip_domain

    # A short registration first: it runs out while the rest is checked.
    _ok(sipp.register(soft.name, soft.password, domain, expires=30))
    short_until = time.monotonic() + 30

    desk_port = reserve_port()
    _ok(sipp.register(desk.name, desk.password, domain, contact_port=desk_port))
    assert _wait_registered(tenant, desk, True, 1.0) < 1.0
    shown = _device(tenant, desk.id)
    assert shown["contact_count"] == 1
    [contact] = _contacts(tenant, desk.id)
    # The Contact as the phone sent it (sipp writes the transport in capitals).
    assert contact["contact"] == f"sip:{desk.name}@127.0.0.1:{desk_port};transport=UDP"
    assert contact["transport"] == "udp"
    assert contact["source_address"] == "127.0.0.1"
    assert contact["user_agent"] == "sipp"
    expires_at = datetime.fromisoformat(contact["expires_at"])
    assert 290 <= (expires_at - datetime.now(UTC)).total_seconds() <= 301
    expected = {desk.name: True, soft.name: True, tcp_phone.name: False}
    assert _listed(tenant, agent.id, desk, soft, tcp_phone, expected=expected) == expected

    # The Users page shows the same.
    resp = tenant.api.get("/v1/users", params={"search": desk.name})
    assert resp.status_code == 200, resp.text
    [row] = resp.json()["items"]
    shown = {d["name"]: (d["registered"], d["contact_count"]) for d in row["devices"]}
    assert {name: shown[name] for name in (desk.name, soft.name, tcp_phone.name)} == {
        desk.name: (True, 1),
        soft.name: (True, 1),
        tcp_phone.name: (False, 0),
    }

    # A second contact of the same account (another phone on it), then de-registering one.
    other_port = reserve_port()
    _ok(sipp.register(desk.name, desk.password, domain, contact_port=other_port))
    deadline = time.monotonic() + 1.0
    while _device(tenant, desk.id)["contact_count"] != 2:
        assert time.monotonic() < deadline, _contacts(tenant, desk.id)
        time.sleep(0.05)
    _ok(sipp.register(desk.name, desk.password, domain, contact_port=other_port, expires=0))
    deadline = time.monotonic() + 1.0
    while _device(tenant, desk.id)["contact_count"] != 1:
        assert time.monotonic() < deadline, _contacts(tenant, desk.id)
        time.sleep(0.05)
    _ok(sipp.register(desk.name, desk.password, domain, contact_port=desk_port, expires=0))
    assert _wait_registered(tenant, desk, False, 1.0) < 1.0
    assert _contacts(tenant, desk.id) == []

    # Over TCP: sipp closes its connection when it is done, and the contact goes with it. The
    # edge may notice that so soon that both reports go together: the audit trail shows both.
    _ok(sipp.register(tcp_phone.name, tcp_phone.password, domain, transport="tcp"))
    gone_after = _wait_registered(tenant, tcp_phone, False, 10.0)
    deadline = time.monotonic() + 10.0
    while (changes := _changes(tenant, tcp_phone)) != ["device.registered", "device.unregistered"]:
        assert time.monotonic() < deadline, changes
        time.sleep(0.1)
    print(f"\nTCP connection closed -> shown offline after {gone_after:.1f} s")

    # The short registration ran out: nobody said so but the edge's expiry.
    time.sleep(max(0.0, short_until - time.monotonic()))
    expired_after = _wait_registered(tenant, soft, False, 10.0)
    print(f"registration expired -> shown offline after {expired_after:.1f} s")
    expected = {desk.name: False, soft.name: False, tcp_phone.name: False}
    assert _listed(tenant, agent.id, desk, soft, tcp_phone, expected=expected) == expected


def _ring(
    sipp: Sipp, caller: Device, tenant: Tenant, number: str, phone_port: int
) -> tuple[SippResult, list[str]]:
    """Calls `number`; returns the result and the INVITEs the phone on `phone_port` got."""
    phone = sipp.uas("uas_answer.xml", phone_port)
    result = sipp.call(caller.name, caller.password, tenant.sip_domain, number)
    if result.code == 200:
        phone.finish()
    invites = phone.invites()
    phone.proc.stop()
    return result, invites


def test_a_rotation_a_deletion_or_an_operator_ends_the_old_phones_registration(
    make_tenant: MakeTenant, sipp: Sipp
) -> None:
    tenant = make_tenant("Takeover")
    agent = tenant.create_user("Khanh")
    caller = tenant.create_user("Linh").devices[0]
    phone = agent.devices[0]
    domain = tenant.sip_domain
    resp = tenant.api.post(f"/v1/users/{agent.id}/extensions", json={"number": "301"})
    assert resp.status_code == 201, resp.text

    old_port = reserve_port()
    _ok(sipp.register(phone.name, phone.password, domain, contact_port=old_port))
    result, invites = _ring(sipp, caller, tenant, "301", old_port)
    assert result.code == 200 and len(invites) == 1, result.log

    # Rotated: the old phone's contact is gone from the edge at once, not at its re-register.
    resp = tenant.api.post(f"/v1/devices/{phone.id}/password", json={})
    assert resp.status_code == 200, resp.text
    new_password = resp.json()["password"]
    assert _wait_registered(tenant, phone, False, 1.0) < 1.0
    result, invites = _ring(sipp, caller, tenant, "301", old_port)
    assert result.code == 480 and invites == [], result.log

    # The operator ends the new phone's registration.
    new_port = reserve_port()
    _ok(sipp.register(phone.name, new_password, domain, contact_port=new_port))
    _wait_registered(tenant, phone, True, 1.0)
    resp = tenant.api.delete(f"/v1/devices/{phone.id}/registrations")
    assert resp.status_code == 204, resp.text
    assert _device(tenant, phone.id)["registered"] is False
    time.sleep(0.5)
    result, invites = _ring(sipp, caller, tenant, "301", new_port)
    assert result.code == 480 and invites == [], result.log
    assert _changes(tenant, phone)[-1] == "device.unregistered"

    # Deleted: a new device given the same name does not inherit the old phone's contact.
    _ok(sipp.register(phone.name, new_password, domain, contact_port=new_port))
    _wait_registered(tenant, phone, True, 1.0)
    resp = tenant.api.delete(f"/v1/devices/{phone.id}")
    assert resp.status_code == 204, resp.text
    time.sleep(0.5)
    successor = tenant.add_device(agent.id, phone.name)
    result, invites = _ring(sipp, caller, tenant, "301", new_port)
    assert result.code == 480 and invites == [], result.log
    assert _device(tenant, successor.id)["registered"] is False


def test_phones_register_while_the_service_is_down_and_it_catches_up(
    sip_tools: None, tmp_path: Path
) -> None:
    with own_edge(tmp_path, "Outage", "presence-outage.test") as edge:
        tenant, runner = edge.tenant, edge.sipp
        agent = tenant.create_user("Minh", devices=2)
        staying, returning = agent.devices
        domain = tenant.sip_domain
        staying_port, returning_port = reserve_port(), reserve_port()
        # Both accounts are known to the edge (cached); one is offline when the service stops.
        _ok(runner.register(staying.name, staying.password, domain, contact_port=staying_port))
        _ok(
            runner.register(returning.name, returning.password, domain, contact_port=returning_port)
        )
        _ok(
            runner.register(
                returning.name, returning.password, domain, contact_port=returning_port, expires=0
            )
        )
        _wait_registered(tenant, staying, True, 1.0)
        _wait_registered(tenant, returning, False, 1.0)

        edge.service.stop()
        # Not one REGISTER fails while the service is down.
        _ok(runner.register(staying.name, staying.password, domain, contact_port=staying_port))
        _ok(
            runner.register(
                staying.name, staying.password, domain, contact_port=staying_port, expires=0
            )
        )
        _ok(
            runner.register(returning.name, returning.password, domain, contact_port=returning_port)
        )
        time.sleep(1.0)

        edge.restart_service()
        caught_up = _wait_registered(tenant, staying, False, 10.0)
        _wait_registered(tenant, returning, True, 10.0)
        print(f"\nservice back -> state caught up after {caught_up:.1f} s")
