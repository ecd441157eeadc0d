"""End-to-end: accounts made through the REST API, enforced by Kamailio, proven with sipp."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers.ports import reserve_port

from .harness import (
    Device,
    Kamailio,
    MakeTenant,
    Service,
    Sipp,
    SippResult,
    SippUas,
    Tenant,
    baresip_register,
    own_edge,
    start_kamailio,
)

pytestmark = pytest.mark.sip
OUTSIDE_NUMBER = "0912345678"


def _assert_final(result: SippResult, code: int, reason: str | None = None) -> None:
    detail = f"\nsipp log:\n{result.log}\nsipp output:\n{result.output[-2000:]}"
    assert result.final is not None, f"no final response logged{detail}"
    assert result.final[0] == code, f"expected {code}, got {result.final}{detail}"
    if reason is not None:
        assert reason in result.final[1], f"expected reason {reason!r} in {result.final}{detail}"


def _call_id(result: SippResult) -> str:
    return result.lines("CALL_ID ")[0].split(" ", 1)[1]


def test_device_registers_only_while_the_api_allows_it(make_tenant: MakeTenant, sipp: Sipp) -> None:
    tenant = make_tenant("Registrations")
    alice = tenant.create_user("Alice")
    desk = alice.devices[0]
    domain = tenant.sip_domain

    _assert_final(sipp.register(desk.name, desk.password, domain), 200)
    _assert_final(sipp.register(desk.name, "Wrongpassword42", domain), 401)
    _assert_final(sipp.register("nobody-here", desk.password, domain), 401)

    # Valid credentials may not register another device's address.
    other = tenant.add_device(alice.id, "alice-other")
    _assert_final(sipp.register(desk.name, desk.password, domain, to_user=other.name), 403)

    # The edge has the account cached now; a rotation reaches it within a second.
    resp = tenant.api.post(f"/v1/devices/{desk.id}/password", json={})
    rotated_at = time.monotonic()
    assert resp.status_code == 200, resp.text
    new_password = resp.json()["password"]
    assert new_password != desk.password
    _assert_final(sipp.register(desk.name, desk.password, domain), 401)
    assert time.monotonic() - rotated_at < 1.0
    _assert_final(sipp.register(desk.name, new_password, domain), 200)

    resp = tenant.api.patch(f"/v1/devices/{desk.id}", json={"enabled": False})
    assert resp.status_code == 200, resp.text
    _assert_final(sipp.register(desk.name, new_password, domain), 403)
    resp = tenant.api.patch(f"/v1/devices/{desk.id}", json={"enabled": True})
    assert resp.status_code == 200, resp.text
    _assert_final(sipp.register(desk.name, new_password, domain), 200)

    resp = tenant.api.patch(f"/v1/users/{alice.id}", json={"enabled": False})
    assert resp.status_code == 200, resp.text
    _assert_final(sipp.register(desk.name, new_password, domain), 403)
    resp = tenant.api.patch(f"/v1/users/{alice.id}", json={"enabled": True})
    assert resp.status_code == 200, resp.text

    resp = tenant.api.delete(f"/v1/devices/{desk.id}")
    assert resp.status_code == 204, resp.text
    _assert_final(sipp.register(desk.name, new_password, domain), 401)


def _lookup_batches(service: Service) -> tuple[int, int]:
    """How many lookup statements the service ran, and for how many accounts in all."""
    with service.client() as client:
        text = client.get("/metrics").text
    count = re.search(r"^antring_registrar_lookup_batch_size_count ([0-9.e+]+)$", text, re.M)
    total = re.search(r"^antring_registrar_lookup_batch_size_sum ([0-9.e+]+)$", text, re.M)
    return (int(float(count[1])) if count else 0, int(float(total[1])) if total else 0)


def test_a_burst_of_uncached_registers_asks_the_service_a_few_times(
    make_tenant: MakeTenant, sipp: Sipp, service: Service
) -> None:
    """Phones registering together after an outage: the edge asks about their accounts
    together, in a few requests, and every one of them registers."""
    tenant = make_tenant("Burst")
    devices = [tenant.create_user(f"Burst {i}").devices[0] for i in range(48)]
    batches_before, accounts_before = _lookup_batches(service)

    burst = sipp.register_many(
        [(device.name, device.password) for device in devices], tenant.sip_domain, rate=2000
    )

    assert burst.returncode == 0, burst.output[-2000:]
    batches, accounts = _lookup_batches(service)
    assert accounts - accounts_before == len(devices)
    assert batches - batches_before <= len(devices) // 4, batches - batches_before


def test_outbound_switch_decides_whether_the_call_is_relayed(
    make_tenant: MakeTenant, sipp: Sipp, kamailio: Kamailio, service: Service
) -> None:
    tenant = make_tenant("Switch")
    bob = tenant.create_user("Bob")
    phone = bob.devices[0]
    gateway = sipp.uas("uas_answer.xml", kamailio.gateway_port)

    resp = tenant.api.patch(f"/v1/users/{bob.id}/toggles", json={"outbound_allowed": False})
    assert resp.status_code == 200, resp.text
    refused = sipp.call(phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER)
    _assert_final(refused, 403, "outbound_disabled")
    assert gateway.invites() == []

    resp = tenant.api.patch(f"/v1/users/{bob.id}/toggles", json={"outbound_allowed": True})
    assert resp.status_code == 200, resp.text
    relayed = sipp.call(phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER)
    _assert_final(relayed, 200)
    assert relayed.lines("HUNGUP"), relayed.log

    gw = gateway.finish()
    invites = gw.lines("INVITE ")
    assert len(invites) == 1, gw.log
    assert f"INVITE sip:{OUTSIDE_NUMBER}@" in invites[0]
    assert gw.lines("BYE "), gw.log

    # The caller's BYE ends the dialog and Kamailio reports the call once.
    call_id = _call_id(relayed)
    recorded = tenant.wait_for_call(bob.id, call_id)
    assert len(recorded) == 1, recorded
    assert recorded[0]["destination"] == OUTSIDE_NUMBER
    assert recorded[0]["duration_seconds"] <= 2

    # The edge sends the SIP Call-ID as the request id: the service's access lines of this
    # call's authorization and usage report carry it.
    # (Access lines are written every half second.)
    deadline = time.monotonic() + 5
    while True:
        log = service.proc.log.read_text().splitlines()
        lines = [line for line in log if f"[{call_id}]" in line]
        if any("POST /v1/call-control/usage 201" in line for line in lines):
            break
        assert time.monotonic() < deadline, lines
        time.sleep(0.2)
    assert any("POST /v1/call-control/authorizations 200" in line for line in lines), lines


def test_quota_limits_and_ends_the_call(
    make_tenant: MakeTenant, sipp: Sipp, kamailio: Kamailio, service: Service
) -> None:
    tenant = make_tenant("Quota", billing_increment_seconds=1)
    carol = tenant.create_user("Carol")
    phone = carol.devices[0]
    resp = tenant.api.put(f"/v1/users/{carol.id}/quota", json={"limit_minutes": 1})
    assert resp.status_code == 200, resp.text

    # 57 of the 60 seconds go through the same usage route Kamailio uses.
    with service.client(service.call_control_key) as call_control:
        resp = call_control.post(
            "/v1/call-control/usage",
            json={
                "domain": tenant.sip_domain,
                "username": phone.name,
                "call_id": f"earlier-{uuid.uuid4().hex}",
                "destination": "0900000000",
                "started_at": int(time.time()) - 600,
                "duration_seconds": 57,
            },
        )
    assert resp.status_code == 201, resp.text
    quota = tenant.api.get(f"/v1/users/{carol.id}/quota").json()
    assert quota["remaining_seconds"] == 3, quota

    # An unanswered call holds the 3 s only until Kamailio reports it with no duration.
    busy = sipp.uas("uas_busy.xml", kamailio.gateway_port)
    _assert_final(sipp.call(phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER), 486)
    busy.finish()

    gateway = sipp.uas("uas_answer.xml", kamailio.gateway_port)
    call = sipp.call(
        phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER, wait_for_bye=True
    )
    _assert_final(call, 200)
    # Kamailio, not either phone, hangs up once the 3 seconds are used.
    bye = call.lines("BYE_RECEIVED")
    assert bye, call.log
    assert "Call time limit reached" in bye[0]
    # At least the granted 3 s (the dialog timer has whole-second ticks, so up to ~1 s more).
    held_ms = call.clock("BYE_RECEIVED") - call.clock("ANSWERED")
    assert 2800 <= held_ms <= 5000, call.log
    gw = gateway.finish()
    assert "Call time limit reached" in gw.lines("BYE ")[0], gw.log

    call_id = _call_id(call)
    recorded = tenant.wait_for_call(carol.id, call_id)
    assert len(recorded) == 1, recorded
    assert recorded[0]["duration_seconds"] == 3
    assert recorded[0]["charged_seconds"] == 3
    quota = tenant.api.get(f"/v1/users/{carol.id}/quota").json()
    assert quota["used_seconds"] == 60, quota
    assert quota["remaining_seconds"] == 0, quota
    # The earlier report, the busy attempt (0 s) and the call that ran out.
    assert sorted(c["charged_seconds"] for c in tenant.calls(carol.id)) == [0, 3, 57]

    gateway = sipp.uas("uas_answer.xml", kamailio.gateway_port)
    refused = sipp.call(phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER)
    _assert_final(refused, 403, "quota_exhausted")
    assert gateway.invites() == []
    assert tenant.api.get(f"/v1/users/{carol.id}/quota").json()["used_seconds"] == 60


def test_emergency_number_passes_for_a_blocked_user(
    make_tenant: MakeTenant, sipp: Sipp, kamailio: Kamailio
) -> None:
    tenant = make_tenant("Emergency")
    dave = tenant.create_user("Dave")
    phone = dave.devices[0]
    resp = tenant.api.patch(f"/v1/users/{dave.id}/toggles", json={"outbound_allowed": False})
    assert resp.status_code == 200, resp.text

    gateway = sipp.uas("uas_answer.xml", kamailio.gateway_port)
    _assert_final(
        sipp.call(phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER),
        403,
        "outbound_disabled",
    )
    call = sipp.call(phone.name, phone.password, tenant.sip_domain, "113")
    _assert_final(call, 200)
    gw = gateway.finish()
    invites = gw.lines("INVITE ")
    assert len(invites) == 1 and "INVITE sip:113@" in invites[0], gw.log


def test_extension_rings_every_device_with_auto_answer_only_when_on(
    make_tenant: MakeTenant, sipp: Sipp
) -> None:
    tenant = make_tenant("Extensions")
    agent = tenant.create_user("Erin", devices=2)
    caller = tenant.create_user("Frank")
    resp = tenant.api.post(f"/v1/users/{agent.id}/extensions", json={"number": "102"})
    assert resp.status_code == 201, resp.text
    desk, web = agent.devices
    caller_phone = caller.devices[0]
    desk_port, web_port = reserve_port(), reserve_port()
    for device, port in ((desk, desk_port), (web, web_port)):
        _assert_final(
            sipp.register(device.name, device.password, tenant.sip_domain, contact_port=port),
            200,
        )

    for auto_answer in (False, True):
        resp = tenant.api.patch(f"/v1/users/{agent.id}/toggles", json={"auto_answer": auto_answer})
        assert resp.status_code == 200, resp.text
        answering = sipp.uas("uas_answer.xml", desk_port)
        ringing = sipp.uas("uas_ring.xml", web_port)
        call = sipp.call(caller_phone.name, caller_phone.password, tenant.sip_domain, "102")
        _assert_final(call, 200)
        answered, rang = answering.finish(), ringing.finish()
        assert rang.lines("CANCELLED"), rang.log

        for device, result in ((desk, answered), (web, rang)):
            invites = result.lines("INVITE ")
            assert len(invites) == 1, result.log
            _, call_info, alert_info = (part.strip() for part in invites[0].split("|"))
            assert f"INVITE sip:{device.name}@127.0.0.1:" in invites[0]
            if auto_answer:
                assert call_info.startswith("Call-Info:"), invites[0]
                assert "answer-after=0" in call_info
                assert alert_info.startswith("Alert-Info:"), invites[0]
                assert "autoanswer" in alert_info
            else:
                assert call_info == "" and alert_info == "", invites[0]

    _assert_final(
        sipp.call(caller_phone.name, caller_phone.password, tenant.sip_domain, "150"), 404
    )
    # Internal calls and free extensions are not outbound calls: nothing is charged.
    assert tenant.calls(caller.id) == []


def test_hotline_calls_reach_the_ivr_and_the_ivr_hands_them_to_the_agent(
    make_tenant: MakeTenant, service: Service, tmp_path: Path
) -> None:
    tenant = make_tenant("Hotline")
    other = make_tenant("Elsewhere")
    domain = tenant.sip_domain
    agent = tenant.create_user("Kim")
    phone = agent.devices[0]
    for who in (tenant, other):
        holder = agent if who is tenant else who.create_user("Lee")
        resp = who.api.post(f"/v1/users/{holder.id}/extensions", json={"number": "102"})
        assert resp.status_code == 201, resp.text
    customer, hotline = "0987654321", "19001234"
    gateway_port, ivr_port, ivr_answer_port = reserve_port(), reserve_port(), reserve_port()
    trusted = tmp_path / "trusted.list"
    trusted.write_text(f"1 127.0.0.1 32 {gateway_port}\n2 127.0.0.1 32 {ivr_port} {domain}\n")
    kam = start_kamailio(
        tmp_path / "kamailio",
        service.url,
        service.call_control_key,
        defines=(
            f'TRUSTED_ADDRESSES="{trusted}"',
            f'HOTLINES="19009999={other.sip_domain}=sip:x@127.0.0.1:9;'
            f'{hotline}={domain}=sip:ivr@127.0.0.1:{ivr_answer_port}"',
        ),
    )
    runner = Sipp(kam, tmp_path)
    try:
        # The carrier's gateway calls the hotline, unchallenged: the tenant's IVR answers.
        ivr = runner.uas("uas_answer.xml", ivr_answer_port)
        _assert_final(
            runner.trusted_call(hotline, "carrier.test", customer, port=gateway_port), 200
        )
        answered = ivr.finish()
        [invite] = answered.lines("INVITE ")
        assert f"INVITE sip:ivr@127.0.0.1:{ivr_answer_port}" in invite
        [caller] = answered.lines("CALLER ")
        assert f"sip:{customer}@" in caller

        # The IVR hands the customer to extension 102: the agent's phone rings with the
        # auto-answer headers exactly when the agent's auto-answer is on.
        for auto_answer in (True, False):
            resp = tenant.api.patch(
                f"/v1/users/{agent.id}/toggles", json={"auto_answer": auto_answer}
            )
            assert resp.status_code == 200, resp.text
            desk = runner.uas("uas_answer.xml")
            _assert_final(
                runner.register(phone.name, phone.password, domain, contact_port=desk.port), 200
            )
            _assert_final(runner.trusted_call("102", domain, customer, port=ivr_port), 200)
            rang = desk.finish()
            [invite] = rang.lines("INVITE ")
            _, call_info, alert_info = (part.strip() for part in invite.split("|"))
            assert f"INVITE sip:{phone.name}@127.0.0.1:{desk.port}" in invite
            assert ("answer-after=0" in call_info) is auto_answer, invite
            assert ("autoanswer" in alert_info) is auto_answer, invite
            [caller] = rang.lines("CALLER ")
            assert f"sip:{customer}@" in caller.split("|")[0] and customer in caller.split("|")[1]

        # The IVR reaches its own tenant's extensions only, and nothing else.
        _assert_final(runner.trusted_call("102", other.sip_domain, customer, port=ivr_port), 403)
        _assert_final(runner.trusted_call(OUTSIDE_NUMBER, domain, customer, port=ivr_port), 404)
        # The same INVITEs from an address nobody trusts are challenged.
        stranger = reserve_port()
        _assert_final(runner.trusted_call("102", domain, customer, port=stranger), 407)
        _assert_final(runner.trusted_call(hotline, "carrier.test", customer, port=stranger), 407)
        # A gateway reaches hotline numbers only: no outbound call, no toll fraud.
        outbound = runner.uas("uas_answer.xml", kam.gateway_port)
        refused = runner.trusted_call(OUTSIDE_NUMBER, "carrier.test", customer, port=gateway_port)
        _assert_final(refused, 404)
        _assert_final(runner.trusted_call("102", domain, customer, port=gateway_port), 404)
        assert outbound.invites() == []
        # Inbound calls are not outbound calls: nothing is charged or held.
        assert tenant.calls(agent.id) == []
        minutes = tenant.api.get(f"/v1/users/{agent.id}").json()["minutes"]
        assert minutes["used_minutes"] == 0
    finally:
        runner.stop_all()
        kam.stop()


def _answered_call(
    pool: ThreadPoolExecutor,
    runner: Sipp,
    gateway: SippUas,
    phone: Device,
    tenant: Tenant,
    *,
    hold_ms: int,
) -> Future[SippResult]:
    """An outbound call running in `pool`, returned once the gateway has answered it."""
    call = pool.submit(
        runner.call, phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER,
        hold_ms=hold_ms,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while "ANSWERED" not in gateway.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return call


def test_the_edge_keeps_working_while_the_service_hangs_or_is_down(
    sip_tools: None, tmp_path: Path
) -> None:
    # A service and a Kamailio of their own, so stopping them spares the other tests; the edge
    # uses a tenant key with the call_control role, as a single-tenant install would.
    with own_edge(tmp_path, "Outage", "outage.test") as edge:
        tenant, runner, kam = edge.tenant, edge.sipp, edge.kamailio
        gina = tenant.create_user("Gina")
        known = gina.devices[0]
        stranger = tenant.create_user("Ivan").devices[0]

        _assert_final(runner.register(known.name, known.password, tenant.sip_domain), 200)
        gateway = runner.uas("uas_answer.xml", kam.gateway_port)

        with ThreadPoolExecutor(max_workers=1) as pool:
            # A call in progress when the service hangs (SIGSTOP: connections are accepted,
            # never answered) for 10 s.
            in_progress = _answered_call(pool, runner, gateway, known, tenant, hold_ms=4000)
            edge.service.proc.freeze()
            frozen_at = time.monotonic()

            # A cached account registers at once: no SIP worker waits on the service.
            started = time.monotonic()
            _assert_final(runner.register(known.name, known.password, tenant.sip_domain), 200)
            assert time.monotonic() - started < 1.0
            # One the edge never saw needs the service: refused after ANTRING_HTTP_TIMEOUT.
            _assert_final(runner.register(stranger.name, stranger.password, tenant.sip_domain), 503)

            # The call's BYE is relayed on time, its usage report waits in an async worker.
            ended = in_progress.result(timeout=30)
            _assert_final(ended, 200)
            assert ended.clock("HUNGUP") - ended.clock("ANSWERED") < 4000 + 1000, ended.log
            assert "BYE" in gateway.finish().log
            assert time.monotonic() - frozen_at < 10

            # New outbound calls fail closed.
            gateway = runner.uas("uas_answer.xml", kam.gateway_port)
            refused = runner.call(known.name, known.password, tenant.sip_domain, OUTSIDE_NUMBER)
            _assert_final(refused, 503)
            time.sleep(max(0.0, 10 - (time.monotonic() - frozen_at)))
            edge.service.proc.thaw()

        # A stopped service: connection refused. Cached accounts still register, within
        # ACCOUNT_GRACE_SECONDS; nobody else does, and no call goes out. A call in progress
        # ends as usual, and its usage report waits at the edge until the service is back.
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_progress = _answered_call(pool, runner, gateway, known, tenant, hold_ms=3000)
            edge.service.stop()
            _assert_final(runner.register(known.name, known.password, tenant.sip_domain), 200)
            _assert_final(runner.register(stranger.name, stranger.password, tenant.sip_domain), 503)
            ended = in_progress.result(timeout=30)
            _assert_final(ended, 200)
        gateway.finish()
        gateway = runner.uas("uas_answer.xml", kam.gateway_port)
        refused = runner.call(known.name, known.password, tenant.sip_domain, OUTSIDE_NUMBER)
        _assert_final(refused, 503)
        assert gateway.invites() == []

        # Back on the same address and database: the kept report arrives, charged once.
        edge.restart_service()
        [charged] = tenant.wait_for_call(gina.id, _call_id(ended), seconds=30)
        assert charged["duration_seconds"] >= 3, charged


def test_calls_are_refused_when_the_service_rejects_the_key(
    make_tenant: MakeTenant, service: Service, tmp_path: Path
) -> None:
    tenant = make_tenant("Badkey")
    phone = tenant.create_user("Hank").devices[0]
    kam = start_kamailio(tmp_path / "kamailio", service.url, "not-a-valid-key")
    runner = Sipp(kam, tmp_path)
    try:
        gateway = runner.uas("uas_answer.xml", kam.gateway_port)
        refused = runner.call(phone.name, phone.password, tenant.sip_domain, OUTSIDE_NUMBER)
        assert refused.code in (403, 503), refused.log
        _assert_final(runner.register(phone.name, phone.password, tenant.sip_domain), 503)
        assert gateway.invites() == []
    finally:
        runner.stop_all()
        kam.stop()


def test_the_edge_takes_only_cache_removals_and_only_with_its_token(kamailio: Kamailio) -> None:
    call = {"jsonrpc": "2.0", "method": "htable.delete", "params": ["acc", "x@y.test"], "id": 1}
    token = {"Authorization": f"Bearer {kamailio.plan.token}"}
    with httpx.Client(timeout=5) as http:
        assert http.post(kamailio.plan.url, json=call).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert http.post(kamailio.plan.url, json=call, headers=wrong).status_code == 401
        for method in ("ul.dump", "core.shmmem", "htable.sets", "core.kill"):
            other = {**call, "method": method}
            assert http.post(kamailio.plan.url, json=other, headers=token).status_code == 403
        # Nothing cached under that name: JSON-RPC's own "not found".
        taken = http.post(kamailio.plan.url, json=call, headers=token)
        assert taken.status_code in (200, 404), taken.text
        assert taken.json()["error"]["code"] == 404


def test_phones_register_over_tcp_and_tls_with_the_ip_phone_view(
    make_tenant: MakeTenant, sipp: Sipp, kamailio: Kamailio, tmp_path: Path
) -> None:
    tenant = make_tenant("Transports")
    phone = tenant.create_user("Olga").devices[0]
    resp = tenant.api.get(f"/v1/devices/{phone.id}/config?reveal=password")
    assert resp.status_code == 200, resp.text
    view = resp.json()["ip_phone"]
    # The view offers what the reference edge serves, on the ports it serves them.
    assert view["transports"] == ["udp", "tcp", "tls"]
    assert view["ports"] == {
        "udp": kamailio.port, "tcp": kamailio.tcp_port, "tls": kamailio.tls_port
    }  # fmt: skip
    assert view["outbound_proxy"] == "127.0.0.1"

    # A phone set to TCP (sipp) ...
    registered = sipp.register(view["auth_id"], view["password"], view["domain"], transport="tcp")
    _assert_final(registered, 200)
    refused = sipp.register(view["auth_id"], "Wrongpassword42", view["domain"], transport="tcp")
    _assert_final(refused, 401)

    # ... and a softphone set to TLS (baresip; Debian's sipp has no TLS).
    printed = baresip_register(
        tmp_path / "tls",
        kamailio,
        username=view["auth_id"],
        password=view["password"],
        domain=view["domain"],
        transport="tls",
    )
    assert re.search(r"\{0/TLS/v4\} 200 OK", printed), printed
    printed = baresip_register(
        tmp_path / "tls-wrong",
        kamailio,
        username=view["auth_id"],
        password="Wrongpassword42",
        domain=view["domain"],
        transport="tls",
    )
    assert " 200 OK" not in printed and "401" in printed, printed
