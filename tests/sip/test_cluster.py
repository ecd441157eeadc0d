"""Two of everything: edges that are one registrar (their location table and account cache
shared through Kamailio's DMQ) and two replicas of the service they fail over between.

The edges listen on loopback addresses of their own (127.0.0.2, 127.0.0.3, and 127.0.0.4 for
one that joins later), so that each knows the other's address is not its own; the service's
replicas share one database. The tests run in this order and share the cluster; the last ones
kill a replica and an edge."""

from __future__ import annotations

import contextlib
import re
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import reserve_port

from .harness import (
    Device,
    EdgePlan,
    Kamailio,
    Rtpengine,
    Service,
    Sipp,
    SippResult,
    StreamPhone,
    Tenant,
    cluster_defines,
    new_edge_plan,
    start_kamailio,
    start_replica,
    start_rtpengine,
    start_service,
    wait_ready,
)

pytestmark = pytest.mark.sip

HOST_A, HOST_B, HOST_C = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def _ok(result: SippResult, code: int = 200) -> None:
    assert result.code == code, f"expected {code}, got {result.final}\n{result.log[-3000:]}"


@dataclass
class Cluster:
    workdir: Path
    replicas: list[Service]
    rtpengine: Rtpengine
    plans: dict[str, EdgePlan]
    dmq_ports: dict[str, int]
    edges: dict[str, Kamailio]
    tenant: Tenant
    # Every process a test started, stopped at the end (an edge or a replica started again).
    started: list[Any]

    def edge(self, name: str, *peers: str, ready: bool = True) -> Kamailio:
        plan = self.plans[name]
        kamailio = start_kamailio(
            self.workdir / f"edge-{name}-{uuid.uuid4().hex[:4]}",
            [replica.url for replica in self.replicas],
            self.replicas[0].call_control_key,
            plan=plan,
            rtpengine=self.rtpengine,
            defines=cluster_defines(plan, self.dmq_ports[name], f"edge-{name}", *peers),
        )
        self.started.append(kamailio)
        self.edges[name] = kamailio
        if ready:
            wait_ready(kamailio)
        return kamailio

    def peer(self, name: str) -> str:
        return f"{self.plans[name].host}:{self.dmq_ports[name]}"

    def sipp(self, name: str) -> Sipp:
        runner = Sipp(self.edges[name], self.workdir)
        self.started.append(_Stopper(runner.stop_all))
        return runner


@dataclass
class _Stopper:
    stop_all: Any

    def stop(self) -> None:
        self.stop_all()


def _loopback_usable(host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, 0))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster(sip_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not all(_loopback_usable(h) for h in (HOST_A, HOST_B, HOST_C)):
        pytest.fail("the loopback addresses 127.0.0.2-4 are not usable here")
    workdir = tmp_path_factory.mktemp("cluster")
    token = uuid.uuid4().hex
    hosts = {"a": HOST_A, "b": HOST_B, "c": HOST_C}
    plans = {name: new_edge_plan(host, token=token) for name, host in hosts.items()}
    started: list[Any] = []
    try:
        # Both replicas push the service's removals to every edge.
        first = start_service(workdir / "service", *plans.values())
        started.append(first)
        second = start_replica(first, workdir / "service")
        started.append(second)
        engine = start_rtpengine(workdir / "rtpengine")
        started.append(engine)
        tenant = first.create_tenant("Cluster", f"cluster-{uuid.uuid4().hex[:8]}.test")
        ports = {n: reserve_port() for n in plans}
        built = Cluster(workdir, [first, second], engine, plans, ports, {}, tenant, started)
        built.edge("a", built.peer("b"))
        built.edge("b", built.peer("a"))
        yield built
    finally:
        for proc in reversed(started):
            with contextlib.suppress(Exception):
                proc.stop()


def _registrations(tenant: Tenant, device: Device) -> list[dict[str, Any]]:
    resp = tenant.api.get(f"/v1/devices/{device.id}/registrations")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def _wait_contacts(tenant: Tenant, device: Device, edges: list[str], seconds: float = 5) -> None:
    """Until the service shows the device's live contacts at exactly these edges."""
    deadline = time.monotonic() + seconds
    while True:
        shown = sorted(item["edge"] for item in _registrations(tenant, device))
        if shown == sorted(edges):
            return
        assert time.monotonic() < deadline, f"{device.name}: contacts at {shown}, not {edges}"
        time.sleep(0.1)


def _agent(tenant: Tenant, name: str, extension: str) -> tuple[str, Device]:
    user = tenant.create_user(name)
    resp = tenant.api.post(f"/v1/users/{user.id}/extensions", json={"number": extension})
    assert resp.status_code == 201, resp.text
    return user.id, user.devices[0]


def test_a_phone_registered_at_one_edge_is_called_from_the_other(cluster: Cluster) -> None:
    tenant, domain = cluster.tenant, cluster.tenant.sip_domain
    at_a, at_b = cluster.sipp("a"), cluster.sipp("b")
    _, phone = _agent(tenant, "Anh", "401")
    caller = tenant.create_user("Binh").devices[0]
    phone_port = reserve_port()
    _ok(at_a.register(phone.name, phone.password, domain, contact_port=phone_port))
    _ok(at_b.register(caller.name, caller.password, domain))

    # The service counts the contact once, at the edge that holds it, though both edges have it.
    _wait_contacts(tenant, phone, ["edge-a"])
    _wait_contacts(tenant, caller, ["edge-b"])

    answering = at_a.uas("uas_answer.xml", phone_port, echo=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        calling = pool.submit(
            at_b.call, caller.name, caller.password, domain, "401", hold_ms=3000, audio=True
        )
        legs = _wait_for_media(cluster.rtpengine)
        call = calling.result(timeout=40)
    _ok(call)
    assert call.lines("HUNGUP"), call.log
    answered = answering.finish()
    assert answered.returncode == 0 and answered.lines("BYE "), answered.log
    # Through the edge that holds the phone (the Record-Route it added on top), with media
    # through rtpengine both ways (the phone echoes what it hears).
    route = answered.lines("ROUTE ")[0]
    assert route.startswith(f"ROUTE Record-Route: <sip:{HOST_A}:"), route
    assert legs >= 2, legs


@pytest.mark.parametrize(
    ("transport", "behind_nat", "extension"),
    [
        pytest.param("tcp", False, "411", id="tcp"),
        pytest.param("tcp", True, "412", id="tcp-behind-nat"),
        pytest.param("tls", True, "413", id="tls-behind-nat"),
        pytest.param("ws", True, "414", id="ws"),
        pytest.param("wss", True, "415", id="wss"),
    ],
)
def test_a_phone_on_a_connection_to_one_edge_is_called_from_the_other(
    cluster: Cluster, transport: str, behind_nat: bool, extension: str
) -> None:
    """A phone or a browser keeps its one connection to the edge it registered at, and only
    that edge can use it: a call from the other edge goes through it. Behind a NAT, the address
    the phone names is not one anything listens on."""
    tenant, domain = cluster.tenant, cluster.tenant.sip_domain
    at_b = cluster.sipp("b")
    _, device = _agent(tenant, f"Khanh {transport} {behind_nat}", extension)
    caller = tenant.create_user(f"Lan {transport} {behind_nat}").devices[0]
    phone = StreamPhone(cluster.edges["a"], transport, behind_nat=behind_nat)
    try:
        assert phone.register(device.name, device.password, domain) == 200
        _ok(at_b.register(caller.name, caller.password, domain))
        _wait_contacts(tenant, device, ["edge-a"])

        with ThreadPoolExecutor(max_workers=1) as pool:
            # The caller hangs up; then the phone does, on a second call.
            answering = pool.submit(phone.answer_call, 30)
            call = at_b.call(caller.name, caller.password, domain, extension, hold_ms=1000)
            invite = answering.result(timeout=40)
            _ok(call)
            assert call.lines("HUNGUP"), call.log
            answering = pool.submit(phone.answer_call, 30, hang_up_after=0.5)
            call = at_b.call(caller.name, caller.password, domain, extension, wait_for_bye=True)
            answering.result(timeout=40)
            _ok(call)
            assert call.lines("BYE_RECEIVED"), call.log
    finally:
        phone.close()
    # To the contact it registered, down its own connection from A (A's Via on top, A's
    # Record-Route first), which had it from B (B's Via below, B's Record-Route further on).
    assert invite.first_line == f"INVITE {phone.contact(device.name)[1:-1]} SIP/2.0", invite
    vias = invite.all("Via")
    assert HOST_A in vias[0] and HOST_B in vias[1], vias
    route = invite.all("Record-Route")
    assert route[0].startswith(f"<sip:{HOST_A}:"), route
    assert any(rr.startswith(f"<sip:{HOST_B}:") for rr in route), route


def _wait_for_media(engine: Rtpengine, timeout: float = 10) -> int:
    """Once the phone answered: how many of the call's streams in rtpengine have carried RTP
    (the caller's and the phone's)."""
    deadline = time.monotonic() + timeout
    while True:
        sessions = engine._ctl("list", "sessions", "all")
        call_ids = re.findall(r"callid: *(\S+)", sessions)
        flowing = 0
        for call_id in call_ids:
            for line in engine.session(call_id).splitlines():
                if "(RTCP)" not in line and (match := re.search(r", (\d+) p,", line)):
                    flowing += int(match.group(1)) > 0
        if flowing >= 2 or time.monotonic() > deadline:
            return flowing
        time.sleep(0.2)


def test_a_password_rotated_through_either_replica_is_refused_at_both_edges(
    cluster: Cluster,
) -> None:
    tenant, domain = cluster.tenant, cluster.tenant.sip_domain
    at_a, at_b = cluster.sipp("a"), cluster.sipp("b")
    phone = tenant.create_user("Chau").devices[0]
    # Registered at A: both edges have the account cached (B from A, through DMQ).
    _ok(at_a.register(phone.name, phone.password, domain))
    _ok(at_b.register(phone.name, phone.password, domain))
    password = phone.password

    for replica in cluster.replicas:
        with replica.client(tenant_id=tenant.id) as api:
            resp = api.post(f"/v1/devices/{phone.id}/password", json={})
        rotated_at = time.monotonic()
        assert resp.status_code == 200, resp.text
        new_password = resp.json()["password"]
        _ok(at_a.register(phone.name, password, domain), 401)
        _ok(at_b.register(phone.name, password, domain), 401)
        assert time.monotonic() - rotated_at < 1.0
        # The new one registers at either.
        _ok(at_b.register(phone.name, new_password, domain))
        _ok(at_a.register(phone.name, new_password, domain))
        password = new_password


def test_an_edge_that_joins_takes_the_cache_and_serves_a_storm_warm(cluster: Cluster) -> None:
    tenant, domain = cluster.tenant, cluster.tenant.sip_domain
    phones = [tenant.create_user(f"Dung {i}").devices[0] for i in range(60)]
    accounts = [(phone.name, phone.password) for phone in phones]
    storm = cluster.sipp("a").register_many(accounts, domain, rate=500)
    assert storm.returncode == 0, storm.output[-2000:]

    joining = cluster.edge("c", cluster.peer("a"), cluster.peer("b"))
    try:
        # With every replica of the service unable to answer, only a warm cache registers them.
        for replica in cluster.replicas:
            replica.proc.freeze()
        try:
            storm = cluster.sipp("c").register_many(accounts, domain, rate=500)
        finally:
            for replica in cluster.replicas:
                replica.proc.thaw()
        assert storm.returncode == 0, storm.output[-2000:]
        # The new edge's reports reach the service once it answers again (each storm's sipp
        # had a contact of its own: one at A, one at C, each counted once).
        _wait_contacts(tenant, phones[0], ["edge-a", "edge-c"], seconds=15)
        _wait_contacts(tenant, phones[-1], ["edge-a", "edge-c"], seconds=15)
    finally:
        joining.stop()


def test_a_replica_killed_during_a_storm_fails_no_register(cluster: Cluster) -> None:
    tenant, domain = cluster.tenant, cluster.tenant.sip_domain
    phones = [tenant.create_user(f"Giang {i}").devices[0] for i in range(150)]
    accounts = [(phone.name, phone.password) for phone in phones]
    first = cluster.replicas[0]
    port = int(first.url.rsplit(":", 1)[1])
    with ThreadPoolExecutor(max_workers=1) as pool:
        # None of these accounts is cached: every REGISTER needs the service.
        storm = pool.submit(cluster.sipp("a").register_many, accounts, domain, rate=100)
        time.sleep(0.5)
        first.proc.popen.send_signal(9)
        first.proc.stop()
        result = storm.result(timeout=60)
    # sipp's exit code is 0 only if every account got its 200 (retransmissions allowed).
    assert result.returncode == 0, result.output[-3000:]
    # The replica again, on its address, for what follows.
    cluster.replicas[0] = start_replica(first, cluster.workdir / "service", port=port)
    cluster.started.append(cluster.replicas[0])


def test_an_edge_killed_its_phones_register_at_the_other_and_calls_go_on(
    cluster: Cluster,
) -> None:
    tenant, domain = cluster.tenant, cluster.tenant.sip_domain
    at_a, at_b = cluster.sipp("a"), cluster.sipp("b")
    _, phone = _agent(tenant, "Hai", "402")
    _, desk = _agent(tenant, "Hoa", "403")
    caller = tenant.create_user("Hung").devices[0]
    phone_port, desk_port = reserve_port(), reserve_port()
    _ok(at_a.register(phone.name, phone.password, domain, contact_port=phone_port))
    _ok(at_b.register(desk.name, desk.password, domain, contact_port=desk_port))
    _ok(at_b.register(caller.name, caller.password, domain))

    # A call through B (caller and phone both at B) is under way when A dies.
    answering = at_b.uas("uas_answer.xml", desk_port, echo=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        calling = pool.submit(
            at_b.call, caller.name, caller.password, domain, "403", hold_ms=4000, audio=True
        )
        assert _wait_for_media(cluster.rtpengine) >= 2
        cluster.edges["a"].proc.popen.send_signal(9)
        cluster.edges["a"].proc.stop()
        call = calling.result(timeout=40)
    _ok(call)
    assert call.lines("HUNGUP"), call.log
    assert answering.finish().lines("BYE "), answering.log()

    # A's UDP phone registers at B (as DNS SRV sends it there) and is reached from B.
    _ok(at_b.register(phone.name, phone.password, domain, contact_port=phone_port))
    _wait_contacts(tenant, phone, ["edge-b"])
    answering = at_b.uas("uas_answer.xml", phone_port)
    call = at_b.call(caller.name, caller.password, domain, "402")
    _ok(call)
    route = answering.finish().lines("ROUTE ")[0]
    assert route.startswith(f"ROUTE Record-Route: <sip:{HOST_B}:"), route
