"""Outbound calls that cannot run up a bill, through the reference edge with sipp: a number of
a class the agent may not call is refused whichever way it is reached (a call, a transfer, an
IVR's call out), and an account holds no more contacts than its kind allows, the oldest
replaced."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.ports import reserve_port

from .harness import Kamailio, MakeTenant, Service, Sipp, SippResult, start_kamailio

pytestmark = pytest.mark.sip
OUTSIDE_NUMBER = "0912345678"
PREMIUM_NUMBER = "19001234"


def _final(result: SippResult, code: int, reason: str | None = None) -> None:
    detail = f"\nsipp log:\n{result.log}\nsipp output:\n{result.output[-2000:]}"
    assert result.final is not None, f"no final response logged{detail}"
    assert result.final[0] == code, f"expected {code}, got {result.final}{detail}"
    if reason is not None:
        assert reason in result.final[1], f"expected {reason!r} in {result.final}{detail}"


def test_a_premium_number_is_refused_as_a_call_and_as_a_transfer(
    make_tenant: MakeTenant, sipp: Sipp, kamailio: Kamailio
) -> None:
    tenant = make_tenant("Premium")
    bob = tenant.create_user("Bob")
    phone = bob.devices[0]
    gateway = sipp.uas("uas_answer.xml", kamailio.gateway_port)

    refused = sipp.call(phone.name, phone.password, tenant.sip_domain, PREMIUM_NUMBER)
    _final(refused, 403, "destination_not_allowed premium")
    assert gateway.invites() == []

    # A call to a mobile number goes out; the transfer of the other side to the premium
    # number is refused at the edge and never reaches it.
    transfer = sipp.transfer(
        phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER, PREMIUM_NUMBER
    )
    _final(transfer, 200)
    [referred] = transfer.lines("REFERRED ")
    assert "403" in referred and "destination_not_allowed premium" in referred, transfer.log
    answered = gateway.finish()
    assert not [line for line in answered.log.splitlines() if line.startswith("REFER ")]
    assert len(answered.lines("INVITE ")) == 1


def test_an_ivr_calls_out_only_on_an_agent_s_behalf_and_within_the_agent_s_classes(
    make_tenant: MakeTenant, service: Service, tmp_path: Path
) -> None:
    tenant = make_tenant("Ivr Out")
    agent = tenant.create_user("Kim")
    phone = agent.devices[0]
    ivr_port = reserve_port()
    trusted = tmp_path / "trusted.list"
    trusted.write_text(f"2 127.0.0.1 32 {ivr_port} {tenant.sip_domain}\n")
    kam = start_kamailio(
        tmp_path / "kamailio",
        service.url,
        service.call_control_key,
        defines=(f'TRUSTED_ADDRESSES="{trusted}"',),
    )
    runner = Sipp(kam, tmp_path)
    customer = "0987654321"
    try:
        gateway = runner.uas("uas_answer.xml", kam.gateway_port)
        premium = runner.trusted_call(
            PREMIUM_NUMBER, tenant.sip_domain, customer, port=ivr_port, agent=phone.name
        )
        _final(premium, 403, "destination_not_allowed premium")
        nobody = runner.trusted_call(OUTSIDE_NUMBER, tenant.sip_domain, customer, port=ivr_port)
        _final(nobody, 404)
        assert gateway.invites() == []

        # On the agent's behalf, to a mobile number: made and recorded as the agent's call.
        out = runner.trusted_call(
            OUTSIDE_NUMBER, tenant.sip_domain, customer, port=ivr_port, agent=phone.name
        )
        _final(out, 200)
        [invite] = gateway.finish().lines("INVITE ")
        assert f"INVITE sip:{OUTSIDE_NUMBER}@" in invite
        deadline = time.monotonic() + 10
        while not tenant.calls(agent.id) and time.monotonic() < deadline:
            time.sleep(0.2)
        [recorded] = tenant.calls(agent.id)
        assert recorded["destination"] == OUTSIDE_NUMBER
    finally:
        runner.stop_all()
        kam.stop()


def test_a_fourth_contact_replaces_the_oldest_of_three(make_tenant: MakeTenant, sipp: Sipp) -> None:
    tenant = make_tenant("Contacts")
    limits = {"ip_phone": 3}
    resp = tenant.api.patch("/v1/outbound-policy", json={"registration_limits": limits})
    assert resp.status_code == 200, resp.text
    agent = tenant.create_user("Desk")
    desk = agent.devices[0]  # the harness's devices are IP phones
    ports = [reserve_port() for _ in range(4)]

    for port in ports:
        _final(sipp.register(desk.name, desk.password, tenant.sip_domain, contact_port=port), 200)
        time.sleep(1.1)  # the edge times contacts in whole seconds

    deadline = time.monotonic() + 10
    while True:
        resp = tenant.api.get(f"/v1/devices/{desk.id}/registrations")
        assert resp.status_code == 200, resp.text
        held = sorted(int(c["contact"].split(":")[2].split(";")[0]) for c in resp.json()["items"])
        if held == sorted(ports[1:]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert held == sorted(ports[1:])
    # A refresh of a contact it holds replaces nothing.
    _final(sipp.register(desk.name, desk.password, tenant.sip_domain, contact_port=ports[1]), 200)
    time.sleep(0.5)
    resp = tenant.api.get(f"/v1/devices/{desk.id}/registrations")
    assert len(resp.json()["items"]) == 3
