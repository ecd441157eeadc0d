"""Processes for the real-SIP tests: the AntRing service, Kamailio and sipp.

Everything binds to 127.0.0.1 on ports reserved for it (tests/helpers/ports.py) and runs in its
own process group, so it can always be killed, also when a test fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.ports import reserve_port

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO_CFG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
SCENARIOS = ROOT / "deploy" / "kamailio" / "sipp"
LOCALHOST = "127.0.0.1"


def find_tool(name: str) -> str | None:
    """A program on PATH, or in the sbin directories Debian installs Kamailio to."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=search)


def tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed")
    return path


# --- ports and processes -------------------------------------------------------------------


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOCALHOST, port))
        except OSError:
            return True
    return False


class Proc:
    """A subprocess in its own process group, output sent to a log file."""

    def __init__(self, name: str, argv: list[str], log: Path, **kwargs: Any) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self._out = log.open("wb")
        self._stopped = False
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"{self.name} still running after {timeout}s\n{self.tail()}"
            ) from None

    def freeze(self) -> None:
        """Stop the process without ending it: connections are accepted, never answered."""
        os.killpg(self.popen.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.popen.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGCONT)
            for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        else:
            # Kamailio's workers share the group; make sure none outlives the main process.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self._out.close()

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


# --- the AntRing service -------------------------------------------------------------------


@dataclass
class Service:
    url: str
    platform_key: str
    call_control_key: str
    proc: Proc
    env: dict[str, str]

    def client(self, key: str | None = None, tenant_id: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.platform_key}"}
        if tenant_id is not None:
            headers["X-Tenant-ID"] = tenant_id
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0)

    def create_tenant(self, name: str, sip_domain: str) -> Tenant:
        with self.client() as platform:
            resp = platform.post(
                "/v1/tenants",
                json={"name": f"{name} {sip_domain}", "sip_domain": sip_domain,
                      "timezone": "Asia/Ho_Chi_Minh"},
            )  # fmt: skip
        assert resp.status_code == 201, resp.text
        tenant_id = resp.json()["id"]
        return Tenant(tenant_id, sip_domain, self.client(tenant_id=tenant_id))

    def create_tenant_key(self, tenant_id: str, role: str) -> str:
        with self.client() as platform:
            resp = platform.post(
                f"/v1/tenants/{tenant_id}/api-keys", json={"name": f"{role} key", "role": role}
            )
        assert resp.status_code == 201, resp.text
        key: str = resp.json()["key"]
        return key

    def stop(self) -> None:
        self.proc.stop()


def _antring_cli() -> list[str]:
    script = Path(sys.executable).with_name("antring")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "app.cli"]


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*_antring_cli(), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"antring {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


@dataclass(frozen=True)
class EdgePlan:
    """A Kamailio's ports and RPC token, chosen before the service and the edge start: the
    service pushes cache removals to its RPC and shows its real ports in the device views."""

    port: int  # UDP
    tcp_port: int
    tls_port: int
    ws_port: int
    wss_port: int
    rpc_port: int
    token: str
    # The loopback address it listens on (127.0.0.2, 127.0.0.3 ... for the edges of a cluster).
    host: str = LOCALHOST

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.rpc_port}/RPC"

    @property
    def wss_url(self) -> str:
        return f"wss://{self.host}:{self.wss_port}/ws"


def new_edge_plan(host: str = LOCALHOST, *, token: str | None = None) -> EdgePlan:
    return EdgePlan(
        reserve_port(),
        *(reserve_port() for _ in range(5)),
        token or uuid.uuid4().hex,
        host,
    )


def start_service(
    workdir: Path,
    *edges: EdgePlan,
    port: int | None = None,
    settings: dict[str, str] | None = None,
) -> Service:
    """The service on SQLite in `workdir` (started again on the same files and `port`, it
    keeps what it had), with these `settings` (environment variables) besides."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if edges:
        edge = edges[0]
        env["ANTRING_EDGE_RPC_URLS"] = json.dumps([e.url for e in edges])
        env["ANTRING_EDGE_RPC_TOKEN"] = edge.token
        # The device views show the first edge as it really is.
        env["ANTRING_SIP_PROXY_HOST"] = LOCALHOST
        env["ANTRING_SIP_UDP_PORT"] = str(edge.port)
        env["ANTRING_SIP_TCP_PORT"] = str(edge.tcp_port)
        env["ANTRING_SIP_TLS_PORT"] = str(edge.tls_port)
        env["ANTRING_SIP_WEBSOCKET_URL"] = edge.wss_url
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'antring.db'}",
            "ANTRING_BOOTSTRAP": "false",
            "ANTRING_SCHEDULER_ENABLED": "false",
            "ANTRING_LOG_LEVEL": "INFO",
            "ANTRING_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            **(settings or {}),
        }
    )
    _cli(env, "migrate")
    platform_key = _cli(
        env, "api-key", "create", "--platform", "--role", "admin", "--name", "sip-tests"
    ).splitlines()[-1]
    call_control_key = _cli(
        env, "api-key", "create", "--platform", "--role", "call_control", "--name", "kamailio"
    ).splitlines()[-1]
    port = port or reserve_port()
    proc = Proc(
        "antring",
        [*_antring_cli(), "serve", "--host", LOCALHOST, "--port", str(port)],
        workdir / "service.log",
        env=env,
        cwd=ROOT,
    )
    service = Service(f"http://{LOCALHOST}:{port}", platform_key, call_control_key, proc, env)
    deadline = time.monotonic() + 30
    with service.client() as client:
        while True:
            if not proc.alive():
                raise RuntimeError(f"the service exited at start:\n{proc.tail()}")
            try:
                if client.get("/v1/tenants").status_code == 200:
                    return service
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(f"the service did not answer within 30s:\n{proc.tail()}")
            time.sleep(0.2)


def start_replica(service: Service, workdir: Path, *, port: int | None = None) -> Service:
    """Another replica of `service`: the same database, settings and keys, its own process and
    port (given: started again there)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or reserve_port()
    proc = Proc(
        "antring replica",
        [*_antring_cli(), "serve", "--host", LOCALHOST, "--port", str(port)],
        workdir / f"service-{port}.log",
        env=service.env,
        cwd=ROOT,
    )
    replica = Service(
        f"http://{LOCALHOST}:{port}", service.platform_key, service.call_control_key, proc,
        service.env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    with replica.client() as client:
        while True:
            if not proc.alive():
                raise RuntimeError(f"the replica exited at start:\n{proc.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/v1/tenants").status_code == 200:
                    return replica
            if time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(f"the replica did not answer within 30s:\n{proc.tail()}")
            time.sleep(0.2)


def cluster_defines(plan: EdgePlan, port: int, name: str, *peers: str) -> tuple[str, ...]:
    """The defines of an edge of a cluster: its DMQ address on `port` of its own loopback
    address, its name in its reports, and the peers (host:port) it asks when it starts."""
    notify = [f'CLUSTER_NOTIFY="sip:{peers[0] if peers else f"{plan.host}:{port}"}"']
    if len(peers) > 1:
        notify.append(f'CLUSTER_NOTIFY_2="sip:{peers[1]}"')
    return (
        "WITH_CLUSTER",
        f"CLUSTER_LISTEN=udp:{plan.host}:{port}",
        f"CLUSTER_LISTEN_TCP=tcp:{plan.host}:{port}",
        f'CLUSTER_SOCKET="udp:{plan.host}:{port}"',
        f'CLUSTER_URI="sip:{plan.host}:{port}"',
        f'EDGE_NAME="{name}"',
        *notify,
    )


def wait_ready(kamailio: Kamailio, timeout: float = 10) -> None:
    """Until the edge answers OPTIONS with 200: a cluster's edge has its cache."""
    deadline = time.monotonic() + timeout
    while sip_options(kamailio.port, host=kamailio.host) != 200:
        if not kamailio.proc.alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the edge is not ready:\n{kamailio.proc.tail()}")
        time.sleep(0.1)


# --- rtpengine ----------------------------------------------------------------------------


@dataclass
class Rtpengine:
    """rtpengine in userspace on 127.0.0.1: its ng control port (Kamailio's) and its CLI."""

    ng_port: int
    cli_port: int
    proc: Proc

    @property
    def sock(self) -> str:
        return f"udp:{LOCALHOST}:{self.ng_port}"

    def session(self, call_id: str) -> str:
        """rtpengine-ctl's view of one call: each leg's streams with their packet counts."""
        return self._ctl("list", "sessions", call_id)

    def _ctl(self, *args: str) -> str:
        done = subprocess.run(
            [tool("rtpengine-ctl"), "-ip", LOCALHOST, "-port", str(self.cli_port), *args],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return done.stdout + done.stderr

    def stop(self) -> None:
        self.proc.stop()


def start_rtpengine(workdir: Path) -> Rtpengine:
    workdir.mkdir(parents=True, exist_ok=True)
    ng_port, cli_port = reserve_port(), reserve_port()
    media = reserve_port(span=100)
    argv = [
        tool("rtpengine"),
        # Only these options, not the system's /etc/rtpengine/rtpengine.conf.
        "--config-file", "none",
        "--interface", LOCALHOST,
        "--listen-ng", f"{LOCALHOST}:{ng_port}",
        "--listen-cli", f"{LOCALHOST}:{cli_port}",
        "--port-min", str(media), "--port-max", str(media + 99),
        # Userspace forwarding only: no kernel module needed.
        "--table", "-1",
        "--timeout", "30",
        "--foreground", "--log-stderr", "--log-level", "6",
        "--pidfile", str(workdir / "rtpengine.pid"),
    ]  # fmt: skip
    proc = Proc("rtpengine", argv, workdir / "rtpengine.log")
    engine = Rtpengine(ng_port, cli_port, proc)
    deadline = time.monotonic() + 10
    while "Current sessions" not in (out := engine._ctl("list", "numsessions")):
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"rtpengine did not start:\n{proc.tail()}\n{out}")
        time.sleep(0.1)
    return engine


# --- Kamailio ------------------------------------------------------------------------------


@dataclass
class Kamailio:
    port: int
    gateway_port: int
    proc: Proc
    plan: EdgePlan
    certificate: Path

    @property
    def tcp_port(self) -> int:
        return self.plan.tcp_port

    @property
    def tls_port(self) -> int:
        return self.plan.tls_port

    @property
    def wss_port(self) -> int:
        return self.plan.wss_port

    @property
    def host(self) -> str:
        return self.plan.host

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        self.proc.stop()


def sip_ping(port: int, timeout: float = 0.5, *, host: str = LOCALHOST) -> bool:
    """One OPTIONS to the proxy; True when any SIP answer came back."""
    return sip_options(port, timeout, host=host) is not None


def sip_options(port: int, timeout: float = 0.5, *, host: str = LOCALHOST) -> int | None:
    """One OPTIONS to the proxy: the status of its answer, None when none came back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOCALHOST, 0))
        s.settimeout(timeout)
        local = s.getsockname()[1]
        call_id = uuid.uuid4().hex
        msg = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOCALHOST}:{local};branch=z9hG4bK{call_id[:16]};rport\r\n"
            f"From: <sip:ping@{LOCALHOST}>;tag={call_id[:8]}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), (host, port))
        try:
            data = s.recv(4096)
        except (TimeoutError, ConnectionRefusedError):
            return None
        if not data.startswith(b"SIP/2.0 "):
            return None
        return int(data[8:11])


def self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM), made with openssl."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def start_kamailio(
    workdir: Path,
    service_url: str | list[str],
    api_key: str,
    *,
    plan: EdgePlan | None = None,
    rtpengine: Rtpengine | None = None,
    defines: tuple[str, ...] = (),
) -> Kamailio:
    """An edge asking the service at `service_url` (or each of several replicas in turn)."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan = plan or new_edge_plan()
    port = plan.port
    ip = plan.host
    gateway_port = reserve_port()
    cert, key = self_signed_certificate(workdir)
    # The service's address and key, in the connection file (not on the command line), one
    # connection per replica as start.sh writes them.
    http_config = workdir / "antring-http.cfg"
    urls = [service_url] if isinstance(service_url, str) else service_url
    http_config.write_text(
        "".join(
            f"[{'antring' if n == 0 else f'antring{n + 1}'}]\n"
            f"url = {url}\nusername = edge\npassword = {api_key}\n\n"
            for n, url in enumerate(urls)
        )
    )
    http_config.chmod(0o600)
    env = dict(os.environ)
    env["EDGE_RPC_TOKEN"] = plan.token
    argv = [
        tool("kamailio"),
        "-f", str(KAMAILIO_CFG),
        "-DD", "-E",
        "-P", str(workdir / "kamailio.pid"),
        "-Y", str(workdir),
        "-m", "64",
        "-A", f"LISTEN=udp:{ip}:{port}",
        "-A", f"LISTEN_TCP=tcp:{ip}:{plan.tcp_port}",
        "-A", f"LISTEN_WS=tcp:{ip}:{plan.ws_port}",
        "-A", "WITH_TLS",
        "-A", f"LISTEN_TLS=tls:{ip}:{plan.tls_port}",
        "-A", f"LISTEN_WSS=tls:{ip}:{plan.wss_port}",
        "-A", f'TLS_CERT="{cert}"',
        "-A", f'TLS_KEY="{key}"',
        "-A", f"RPC_LISTEN=tcp:{ip}:{plan.rpc_port}",
        "-A", f'ANTRING_HTTP_CONFIG="{http_config}"',
        "-A", f"ANTRING_REPLICAS={len(urls)}",
        "-A", f'GW_URI="sip:{LOCALHOST}:{gateway_port}"',
        "-A", "ANTRING_HTTP_TIMEOUT=2",
        "-A", "WORKERS=2",
        "-A", "ASYNC_WORKERS=4",
        *(["-A", "WITH_RTPENGINE", "-A", f'RTPENGINE_SOCK="{rtpengine.sock}"']
          if rtpengine else []),
        *(arg for define in defines for arg in ("-A", define)),
    ]  # fmt: skip
    proc = Proc("kamailio", argv, workdir / "kamailio.log", env=env)
    deadline = time.monotonic() + 15
    while not sip_ping(port, host=ip):
        if not proc.alive() or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"Kamailio did not start:\n{proc.tail()}")
        time.sleep(0.1)
    return Kamailio(port, gateway_port, proc, plan, certificate=cert)


@dataclass
class OwnEdge:
    """A service and a Kamailio of a test's own, so that stopping them spares the other tests,
    with one tenant whose call_control key the edge uses (as a single-tenant install would)."""

    workdir: Path
    service: Service
    tenant: Tenant
    kamailio: Kamailio
    sipp: Sipp
    settings: dict[str, str] | None = None

    def restart_service(self) -> None:
        """The stopped service again, on the same address, database and settings."""
        port = int(self.service.url.rsplit(":", 1)[1])
        self.service = start_service(
            self.workdir / "service", self.kamailio.plan, port=port, settings=self.settings
        )


@contextlib.contextmanager
def own_edge(
    workdir: Path, tenant_name: str, sip_domain: str, *, settings: dict[str, str] | None = None
) -> Iterator[OwnEdge]:
    plan = new_edge_plan()
    service = start_service(workdir / "service", plan, settings=settings)
    stops: list[Callable[[], None]] = []
    edge: OwnEdge | None = None
    try:
        tenant = service.create_tenant(tenant_name, sip_domain)
        stops.append(tenant.api.close)
        key = service.create_tenant_key(tenant.id, "call_control")
        kamailio = start_kamailio(workdir / "kamailio", service.url, key, plan=plan)
        stops.append(kamailio.stop)
        runner = Sipp(kamailio, workdir)
        stops.append(runner.stop_all)
        edge = OwnEdge(workdir, service, tenant, kamailio, runner, settings)
        yield edge
    finally:
        for stop in reversed(stops):
            stop()
        (edge.service if edge else service).stop()


# --- sipp ----------------------------------------------------------------------------------

_FINAL = re.compile(r"^FINAL SIP/2\.0 (\d{3}) ?(.*)$", re.MULTILINE)


@dataclass
class SippResult:
    returncode: int
    log: str
    output: str

    @property
    def final(self) -> tuple[int, str] | None:
        match = _FINAL.search(self.log)
        return (int(match.group(1)), match.group(2).strip()) if match else None

    @property
    def code(self) -> int | None:
        final = self.final
        return final[0] if final else None

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.log.splitlines() if line.startswith(prefix)]

    def clock(self, prefix: str) -> int:
        """The millisecond clock logged on the first line that starts with `prefix`."""
        return int(self.lines(prefix)[0].split()[1])


class Sipp:
    """Runs sipp scenarios from deploy/kamailio/sipp against one Kamailio."""

    def __init__(self, kamailio: Kamailio, workdir: Path) -> None:
        self.kamailio = kamailio
        self.workdir = workdir
        self._running: list[Proc] = []
        self._count = 0

    def _argv(self, scenario: str, port: int, extra: list[str]) -> tuple[list[str], Path]:
        self._count += 1
        stem = f"{self._count:02d}-{scenario.removesuffix('.xml')}-{port}"
        log = self.workdir / f"{stem}.log"
        argv = [
            tool("sipp"),
            "-sf", str(SCENARIOS / scenario),
            "-m", "1",
            "-i", LOCALHOST,
            "-p", str(port),
            "-mp", str(reserve_port(span=4)),
            "-cp", str(reserve_port()),
            "-nostdin",
            "-trace_logs", "-log_file", str(log),
            "-trace_err", "-error_file", str(self.workdir / f"{stem}.errors"),
            "-timeout", "60s",
            *extra,
        ]  # fmt: skip
        return argv, log

    def uas(self, scenario: str, port: int | None = None, *, echo: bool = False) -> SippUas:
        """Start an answering side and return once it listens; with `echo`, it sends back
        every RTP packet it gets (a phone with audio both ways)."""
        port = port or reserve_port()
        if _port_taken(port):
            # sipp would fail to start, and whatever holds the port would get its calls.
            raise RuntimeError(f"sipp {scenario} cannot answer on {port}: the port is taken")
        argv, log = self._argv(scenario, port, ["-rtp_echo"] if echo else [])
        proc = Proc(f"sipp {scenario}", argv, log.with_suffix(".out"))
        self._running.append(proc)
        deadline = time.monotonic() + 10
        while not _port_taken(port):
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sipp {scenario} did not start:\n{proc.tail()}")
            time.sleep(0.05)
        return SippUas(proc, log, port)

    def _client(
        self,
        scenario: str,
        extra: list[str],
        timeout: float,
        port: int | None = None,
        target: str | None = None,
    ) -> SippResult:
        argv, log = self._argv(
            scenario, port or reserve_port(), [*extra, target or self.kamailio.target]
        )
        proc = Proc(f"sipp {scenario}", argv, log.with_suffix(".out"))
        self._running.append(proc)
        code = proc.wait(timeout)
        proc.stop()
        return SippResult(code, _read(log), _read(log.with_suffix(".out")))

    def register(
        self,
        username: str,
        password: str,
        domain: str,
        *,
        to_user: str | None = None,
        contact_port: int | None = None,
        expires: int = 300,
        transport: str = "udp",
    ) -> SippResult:
        """REGISTER over UDP, or over TCP or TLS (to the edge's port of that transport)."""
        ports = {"udp": self.kamailio.port, "tcp": self.kamailio.tcp_port,
                 "tls": self.kamailio.tls_port}  # fmt: skip
        flags = {"udp": ["-t", "u1"], "tcp": ["-t", "t1"], "tls": ["-t", "l1"]}
        return self._client(
            "register.xml",
            [
                *flags[transport],
                "-au", username, "-ap", password,
                "-key", "user", to_user or username,
                "-key", "domain", domain,
                "-key", "contact_port", str(contact_port or reserve_port()),
                "-key", "expires", str(expires),
            ],
            timeout=20,
            target=f"{self.kamailio.host}:{ports[transport]}",
        )  # fmt: skip

    def register_many(
        self, accounts: list[tuple[str, str]], domain: str, *, rate: int
    ) -> SippResult:
        """Every account REGISTERs once over UDP (401, then 200), `rate` new ones a second,
        from one sipp; its exit code is 0 only if all of them got their 200."""
        accounts_file = self.workdir / f"accounts-{self._count:02d}.csv"
        accounts_file.write_text(
            "SEQUENTIAL\n" + "".join(f"{user};{password};{domain}\n" for user, password in accounts)
        )
        return self._client(
            "register_storm.xml",
            ["-t", "u1", "-inf", str(accounts_file), "-r", str(rate), "-m", str(len(accounts))],
            timeout=30,
        )

    def call(
        self,
        username: str,
        password: str,
        domain: str,
        destination: str,
        *,
        hold_ms: int = 500,
        wait_for_bye: bool = False,
        echo: bool = False,
        audio: bool = False,
        timeout: float = 40,
    ) -> SippResult:
        """A call; with `audio`, it sends a few RTP packets once answered."""
        scenario = "uac_call_wait_bye.xml" if wait_for_bye else "uac_call.xml"
        if audio:
            scenario = "uac_call_audio.xml"
        return self._client(
            scenario,
            [
                *(["-rtp_echo"] if echo else []),
                "-s", destination,
                "-au", username, "-ap", password,
                "-key", "user", username,
                "-key", "domain", domain,
                "-d", str(hold_ms),
            ],
            timeout=timeout,
        )  # fmt: skip

    def trusted_call(
        self,
        destination: str,
        domain: str,
        caller: str,
        *,
        port: int,
        hold_ms: int = 500,
        agent: str | None = None,
    ) -> SippResult:
        """A call without credentials from 127.0.0.1:`port` (a gateway's or an IVR's, when
        the edge's address list names it), with `caller` as From and P-Asserted-Identity;
        with `agent`, an IVR's call on that agent's behalf (X-AntRing-Agent)."""
        return self._client(
            "uac_trusted_agent.xml" if agent else "uac_trusted.xml",
            [
                "-s", destination,
                "-key", "domain", domain,
                "-key", "caller", caller,
                *(["-key", "agent", agent] if agent else []),
                "-d", str(hold_ms),
            ],
            timeout=40,
            port=port,
        )  # fmt: skip

    def transfer(
        self,
        username: str,
        password: str,
        domain: str,
        destination: str,
        refer_to: str,
        *,
        hold_ms: int = 300,
    ) -> SippResult:
        """An outbound call that, once answered, transfers the other side to `refer_to`
        (REFER) and hangs up; its log has "REFERRED <status line>"."""
        return self._client(
            "uac_refer.xml",
            [
                "-s", destination,
                "-au", username, "-ap", password,
                "-key", "user", username,
                "-key", "domain", domain,
                "-key", "refer_to", refer_to,
                "-d", str(hold_ms),
            ],
            timeout=40,
        )  # fmt: skip

    def stop_all(self) -> None:
        for proc in self._running:
            proc.stop()


@dataclass
class SippUas:
    proc: Proc
    log_path: Path
    port: int
    _result: SippResult | None = field(default=None, init=False)

    def log(self) -> str:
        return _read(self.log_path)

    def invites(self) -> list[str]:
        return [line for line in self.log().splitlines() if line.startswith("INVITE ")]

    def finish(self, timeout: float = 30) -> SippResult:
        """Wait for the scenario to complete (it handles exactly one call)."""
        if self._result is None:
            code = self.proc.wait(timeout)
            self.proc.stop()
            self._result = SippResult(code, self.log(), _read(self.log_path.with_suffix(".out")))
        return self._result


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


# --- baresip ------------------------------------------------------------------------------


def baresip_register(
    workdir: Path,
    kamailio: Kamailio,
    *,
    username: str,
    password: str,
    domain: str,
    transport: str,
    seconds: int = 4,
) -> str:
    """Registers once with baresip, a real softphone, over `transport` ("tls" trusts the edge's
    self-signed certificate); returns what it printed (its registration lines say
    "200 OK" or the refusal)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ports = {"udp": kamailio.port, "tcp": kamailio.tcp_port, "tls": kamailio.tls_port}
    (workdir / "config").write_text(
        # baresip listens on UDP and TCP.
        f"sip_listen {LOCALHOST}:{reserve_port()}\n"
        f"sip_cafile {kamailio.certificate}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\n"
        "module_app account.so\n"
    )
    (workdir / "accounts").write_text(
        f"<sip:{username}@{domain};transport={transport}>;auth_pass={password};"
        f'outbound="sip:{LOCALHOST}:{ports[transport]};transport={transport}";regint=60\n'
    )
    done = subprocess.run(
        [tool("baresip"), "-f", str(workdir), "-t", str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 20,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return done.stdout + done.stderr


# --- provisioning through the REST API -----------------------------------------------------


@dataclass
class Device:
    id: str
    name: str
    password: str


@dataclass
class User:
    id: str
    display_name: str
    devices: list[Device]


@dataclass
class Tenant:
    id: str
    sip_domain: str
    api: httpx.Client

    def create_user(self, display_name: str, *, devices: int = 1) -> User:
        resp = self.api.post("/v1/users", json={"display_name": display_name})
        assert resp.status_code == 201, resp.text
        user = User(resp.json()["id"], display_name, [])
        slug = re.sub(r"[^a-z0-9]+", "", display_name.lower())[:12] or "user"
        for n in range(devices):
            user.devices.append(self.add_device(user.id, f"{slug}-{uuid.uuid4().hex[:4]}-{n + 1}"))
        return user

    def calls(self, user_id: str) -> list[dict[str, Any]]:
        """The user's recorded calls (usage), newest first."""
        resp = self.api.get(f"/v1/users/{user_id}/calls")
        assert resp.status_code == 200, resp.text
        items: list[dict[str, Any]] = resp.json()["items"]
        return items

    def wait_for_call(
        self, user_id: str, call_id: str, seconds: float = 10
    ) -> list[dict[str, Any]]:
        """Usage is posted right after the BYE; give it a moment to land."""
        deadline = time.monotonic() + seconds
        while True:
            matching = [c for c in self.calls(user_id) if c["call_id"] == call_id]
            if matching or time.monotonic() > deadline:
                return matching
            time.sleep(0.2)

    def add_device(self, user_id: str, name: str) -> Device:
        password = f"Pw{uuid.uuid4().hex[:14]}9"
        resp = self.api.post(
            f"/v1/users/{user_id}/devices",
            json={"name": name, "kind": "ip_phone", "password": password},
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        return Device(body["id"], body["name"], body.get("password") or password)


MakeTenant = Callable[..., Tenant]


# --- linphonec ----------------------------------------------------------------------------


class Linphonec:
    """Debian's console Linphone (linphone-cli, liblinphone 5.1) that knows nothing of its
    account but a remote provisioning URL: a fresh HOME whose configuration file says only
    `[misc] config-uri`, where it may listen (127.0.0.1, free ports) and which certificate to
    trust (the edge's, self-signed). Commands go to its standard input; what it prints and its
    debug log are kept in `workdir`. It runs in its own process group for at most `seconds`."""

    def __init__(
        self, workdir: Path, config_uri: str, *, ca_file: Path, seconds: int = 120
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        home = workdir / "home"
        # Without its database's directory the core does not start, so it never provisions.
        data = home / ".local" / "share"
        (data / "linphone").mkdir(parents=True)
        self.config = home / ".linphonerc"
        self.config.write_text(
            f"[misc]\nconfig-uri={config_uri}\n\n"
            "[sip]\n"
            f"bind_address={LOCALHOST}\n"
            f"sip_port={reserve_port()}\n"
            f"sip_tcp_port={reserve_port()}\n"
            f"sip_tls_port={reserve_port()}\n"
            f"root_ca={ca_file}\n"
            # Debian's mbedTLS (2.28) checks a certificate's DNS names only, and the edge is
            # 127.0.0.1: the chain is still verified against root_ca, only the name check is off.
            "verify_server_cn=0\n\n"
            "[rtp]\n"
            f"bind_address={LOCALHOST}\n"
            f"audio_rtp_port={reserve_port(span=2)}\n"
            f"video_rtp_port={reserve_port(span=2)}\n"
            f"text_rtp_port={reserve_port(span=2)}\n"
        )
        self.output_path = workdir / "linphonec.out"
        self.log_path = workdir / "linphonec.log"
        self._out = self.output_path.open("wb")
        self._stopped = False
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(data),
               "XDG_CONFIG_HOME": str(home / ".config")}  # fmt: skip
        argv = [
            tool("timeout"), "--kill-after=5", str(seconds),
            tool("linphonec"), "-c", str(self.config), "-d", "6", "-l", str(self.log_path),
        ]  # fmt: skip
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=workdir,
        )
        # No sound card here: calls play and record files instead.
        self.send("soundcard use files")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(f"{command}\n".encode())
        self.popen.stdin.flush()

    def output(self) -> str:
        return _read(self.output_path)

    def log(self) -> str:
        return _read(self.log_path)

    def wait_for(self, pattern: str, timeout: float = 15, *, since: int = 0) -> re.Match[str]:
        """The first match of `pattern` in what it printed from offset `since` on."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.compile(pattern, re.MULTILINE).search(self.output(), since)
            if match:
                return match
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError(
                    f"linphonec printed no {pattern!r} within {timeout}s:\n"
                    f"{self.output()[-3000:]}\nlog:\n{self.tail()}"
                )
            time.sleep(0.1)

    def wait_registered(self, timeout: float = 15) -> str:
        """Asks `status register` until it says registered; returns that line."""
        deadline = time.monotonic() + timeout
        while True:
            since = len(self.output())
            self.send("status register")
            answer = self.wait_for(r"^.*registered.*$", timeout=5, since=since).group(0)
            if "registered," in answer or time.monotonic() > deadline:
                return answer
            time.sleep(0.5)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.alive():
            with contextlib.suppress(OSError):
                self.send("quit")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        self._out.close()


# --- a phone on a connection -----------------------------------------------------------------


@dataclass
class SipMessage:
    """One SIP message as received: its first line, its headers in order, its body."""

    first_line: str
    headers: list[tuple[str, str]]
    body: str = ""

    @classmethod
    def parse(cls, text: str) -> SipMessage:
        head, _, body = text.partition("\r\n\r\n")
        first_line, *lines = head.split("\r\n")
        headers = []
        for line in lines:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return cls(first_line, headers, body)

    @property
    def method(self) -> str:
        return "" if self.first_line.startswith("SIP/2.0 ") else self.first_line.split(" ", 1)[0]

    @property
    def status(self) -> int:
        return int(self.first_line[8:11]) if self.first_line.startswith("SIP/2.0 ") else 0

    def all(self, name: str) -> list[str]:
        """Every value of the header, each comma-separated list of values split."""
        values = []
        for header, value in self.headers:
            if header.lower() == name.lower():
                values.extend(v.strip() for v in re.split(r",(?=\s*<)", value))
        return values

    def get(self, name: str) -> str:
        values = self.all(name)
        return values[0] if values else ""


class StreamPhone:
    """A phone with one connection to an edge over TCP, TLS, WebSocket or secure WebSocket, as
    phones and browsers keep theirs: it registers over it and gets its calls down it, answering
    each one. With `behind_nat`, its Via and Contact name an address where nothing listens (the
    phone's side of a NAT), so that only the connection reaches it; over WebSocket they name an
    .invalid host, as browsers' do."""

    def __init__(self, kamailio: Kamailio, transport: str, *, behind_nat: bool = False) -> None:
        self.transport = transport
        self._buffer = b""
        self._ws: Any = None
        self._stack = contextlib.ExitStack()
        self._sock: socket.socket | None = None
        host = kamailio.host
        context = ssl.create_default_context(cafile=str(kamailio.certificate))
        # The edge's self-signed certificate names 127.0.0.1; the edges listen elsewhere too.
        context.check_hostname = False
        if transport in ("ws", "wss"):
            from websockets.sync.client import connect
            from websockets.typing import Subprotocol

            port = kamailio.plan.ws_port if transport == "ws" else kamailio.wss_port
            self._ws = self._stack.enter_context(
                connect(
                    f"{transport}://{host}:{port}/",
                    subprotocols=[Subprotocol("sip")],
                    ssl=context if transport == "wss" else None,
                    open_timeout=5,
                    ping_interval=None,
                )
            )
            self.sent_by = f"{uuid.uuid4().hex[:12]}.invalid"
        else:
            raw = socket.create_connection(
                (host, kamailio.tcp_port if transport == "tcp" else kamailio.tls_port), timeout=5
            )
            self._sock = context.wrap_socket(raw) if transport == "tls" else raw
            local_port = self._sock.getsockname()[1]
            self.sent_by = f"{LOCALHOST}:{reserve_port() if behind_nat else local_port}"
        self.received: list[SipMessage] = []

    # The connection.

    def send(self, text: str) -> None:
        if self._ws is not None:
            self._ws.send(text)
        else:
            assert self._sock is not None
            self._sock.sendall(text.encode())

    def recv(self, timeout: float = 10) -> SipMessage:
        if self._ws is not None:
            data = self._ws.recv(timeout=timeout)
            message = SipMessage.parse(data if isinstance(data, str) else data.decode())
        else:
            message = SipMessage.parse(self._read_stream(timeout))
        self.received.append(message)
        return message

    def _read_stream(self, timeout: float) -> str:
        assert self._sock is not None
        deadline = time.monotonic() + timeout
        while True:
            # Keep-alive CRLFs between messages.
            self._buffer = self._buffer.lstrip(b"\r\n")
            head, found, rest = self._buffer.partition(b"\r\n\r\n")
            if found:
                length = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
                size = int(length.group(1)) if length else 0
                if len(rest) >= size:
                    self._buffer = rest[size:]
                    return (head + found + rest[:size]).decode(errors="replace")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no SIP message over {self.transport} within {timeout}s")
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the edge closed the {self.transport} connection")
            self._buffer += chunk

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()
            if self._sock is not None:
                self._sock.close()

    # SIP.

    @property
    def _via_transport(self) -> str:
        return self.transport.upper()

    def contact(self, user: str) -> str:
        return f"<sip:{user}@{self.sent_by};transport={self.transport}>"

    def register(self, username: str, password: str, domain: str, *, expires: int = 300) -> int:
        """REGISTER with digest authentication; the final status."""
        call_id, tag = uuid.uuid4().hex, uuid.uuid4().hex[:8]
        authorization = ""
        for cseq in (1, 2):
            self.send(
                f"REGISTER sip:{domain} SIP/2.0\r\n"
                f"Via: SIP/2.0/{self._via_transport} {self.sent_by};"
                f"branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                f"From: <sip:{username}@{domain}>;tag={tag}\r\n"
                f"To: <sip:{username}@{domain}>\r\n"
                f"Call-ID: {call_id}\r\n"
                f"CSeq: {cseq} REGISTER\r\n"
                f"Contact: {self.contact(username)}\r\n"
                f"{authorization}"
                f"Expires: {expires}\r\nMax-Forwards: 70\r\nUser-Agent: stream-phone\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            answer = self.recv()
            if answer.status != 401 or cseq == 2:
                return answer.status
            authorization = _digest(
                answer.get("WWW-Authenticate"), username, password, "REGISTER", f"sip:{domain}"
            )
        raise AssertionError("unreachable")

    def answer_call(self, timeout: float = 30, *, hang_up_after: float | None = None) -> SipMessage:
        """Waits for one INVITE, answers it (180, then 200 with an offer's answer) and waits for
        its ACK; then waits for the caller's BYE (answered with 200) or, `hang_up_after` seconds
        on, hangs up itself (its BYE must get a 200). Returns the INVITE as it arrived."""
        invite = self.recv(timeout)
        assert invite.method == "INVITE", invite.first_line
        to_tag = uuid.uuid4().hex[:8]
        user = invite.first_line.split()[1].removeprefix("sip:").split("@")[0]
        sdp = (
            "v=0\r\n"
            f"o=phone 1 1 IN IP4 {LOCALHOST}\r\ns=-\r\nc=IN IP4 {LOCALHOST}\r\nt=0 0\r\n"
            f"m=audio {reserve_port(span=2)} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        self.send(self._reply(invite, "180 Ringing", to_tag, user))
        self.send(self._reply(invite, "200 OK", to_tag, user, sdp))
        ack = self.recv(timeout)
        assert ack.method == "ACK", ack.first_line
        if hang_up_after is None:
            bye = self.recv(timeout)
            assert bye.method == "BYE", bye.first_line
            self.send(self._reply(bye, "200 OK", "", user))
            return invite
        time.sleep(hang_up_after)
        # Within the dialog: to the caller's Contact, through the Record-Route as it came.
        target = invite.get("Contact").strip("<>").split(">")[0]
        lines = [
            f"BYE {target} SIP/2.0",
            f"Via: SIP/2.0/{self._via_transport} {self.sent_by};"
            f"branch=z9hG4bK{uuid.uuid4().hex};rport",
            *(f"Route: {rr}" for rr in invite.all("Record-Route")),
            f"From: {invite.get('To')};tag={to_tag}",
            f"To: {invite.get('From')}",
            f"Call-ID: {invite.get('Call-ID')}",
            "CSeq: 1 BYE",
            "Max-Forwards: 70",
            "Content-Length: 0",
        ]
        self.send("\r\n".join(lines) + "\r\n\r\n")
        answer = self.recv(timeout)
        while 100 <= answer.status < 200:
            answer = self.recv(timeout)
        assert answer.status == 200, answer.first_line
        return invite

    def _reply(
        self, request: SipMessage, status: str, to_tag: str, user: str, sdp: str = ""
    ) -> str:
        lines = [f"SIP/2.0 {status}"]
        lines += [f"Via: {via}" for via in request.all("Via")]
        lines += [f"Record-Route: {rr}" for rr in request.all("Record-Route")]
        to = request.get("To")
        lines += [
            f"From: {request.get('From')}",
            f"To: {to};tag={to_tag}" if to_tag and ";tag=" not in to else f"To: {to}",
            f"Call-ID: {request.get('Call-ID')}",
            f"CSeq: {request.get('CSeq')}",
            f"Contact: {self.contact(user)}",
        ]
        if sdp:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(sdp.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + sdp


def _digest(challenge: str, username: str, password: str, method: str, uri: str) -> str:
    """The Authorization header answering a WWW-Authenticate challenge (MD5, qop auth)."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.removeprefix("Digest ")))
    realm, nonce = fields["realm"], fields["nonce"]
    ha1 = hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    cnonce, nc = uuid.uuid4().hex[:16], "00000001"
    if "auth" in fields.get("qop", "").split(","):
        response = hashlib.md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
        extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        extra = ""
    return (
        f'Authorization: Digest username="{username}", realm="{realm}", nonce="{nonce}", '
        f'uri="{uri}", response="{response}", algorithm=MD5{extra}\r\n'
    )
