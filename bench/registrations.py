"""Registration storm: the reference Kamailio edge asking the service, with a cold and a warm
account cache, against Kamailio's own `auth_db` reading the same accounts from PostgreSQL.

10,000 accounts in one tenant; sipp registers each once per step (digest auth, accounts from an
injection file) at a rate stepped up until the first failed registration, retransmission or p99
over 50 ms. The three set-ups run interleaved at each rate, with the same 4 UDP workers and the
location table in memory. Latency is timed on the wire at Kamailio (tcpdump on the loopback: the
authenticated REGISTER to its 200), since sipp's own clock ticks in 4 ms steps. CPU per
registration adds up Kamailio's, the service's and PostgreSQL's processes.

    .venv/bin/python -m bench.registrations [--accounts 10000] [--rates 1000,2000,...]
    .venv/bin/python -m bench.registrations --reports-compare
    .venv/bin/python -m bench.registrations --cluster

With --cluster two more set-ups run beside them: "pair", two edges of a cluster
(-A WITH_CLUSTER, on 127.0.0.2 and 127.0.0.3) stormed at once, each phone to one edge (half the
accounts each, at half the rate each), their caches warm; and "restarted", the second edge killed
and started again before each step, which takes the cache from the first and is stormed with
every account a few seconds after it is ready. The table adds the cores each set-up kept
busy (Kamailio's, and the whole machine's share): the pair can be no faster than the machine's
cores allow.

With --reports-compare the reference edge runs twice, interleaved at each rate: with its
registration reports to the service (the default) and without them (`-A
WITHOUT_REGISTRATION_REPORTS`), cold and warm, instead of against auth_db. sipp registers from
the same address at every step, so the first step's REGISTERs make each account's contact and
the later ones refresh it, as phones do (the edge reports a refresh only when the expiry the
service has would otherwise be less than half a registration away, see
deploy/kamailio/edge/reports.cfg). After each step with reports, the service's count of
registered devices must equal sipp's successful registrations: no report lost.

Needs sipp, tcpdump, Kamailio with the http_client, json, jansson and postgres modules, and root
(for tcpdump). Prints a Markdown table and writes bench/results/registrations.json.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text

from app.db.engine import create_engine
from app.settings import Settings
from bench import cpu
from bench.run import RESULTS_DIR, progress
from bench.seed import drop_database, recreate_database, seed_users, settle_database
from bench.server import Server, run_cli, service_env

ROOT = Path(__file__).resolve().parents[1]
EDGE_CFG = ROOT / "deploy" / "kamailio" / "kamailio.cfg"
AUTH_DB_CFG = ROOT / "bench" / "kamailio" / "auth_db.cfg"
SCENARIO = ROOT / "deploy" / "kamailio" / "sipp" / "register_storm.xml"
DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/antring_bench_registrations"
SIP_DOMAIN = "storm.sip.test"
RATES = (1000, 2000, 3000, 4000, 6000, 8000, 10000, 12000, 14000, 16000)
P99_LIMIT_MS = 50.0
WORKERS = 4
TARGETS = {"warm": 1.0, "cold": 0.5, "restarted": 1.0}
# With --cluster: the two edges at once, against one edge (warm), given the cores for it.
PAIR_TARGET = 1.6
CLUSTER_HOSTS = {"a": "127.0.0.2", "b": "127.0.0.3"}
# Shared memory of a cluster's edge (MB): every change it replicates is a DMQ transaction,
# kept a few seconds after its answer, so a storm of new registrations holds thousands.
CLUSTER_SHM_MB = 512
# With --reports-compare: the rate with reports on, against the same cache without them.
REPORTS_TARGET = 0.9
# How long the edge's queued reports may take to reach the service after a step.
REPORTS_DRAIN_SECONDS = 30.0

# Kamailio's own subscriber table (its columns that auth_db reads, its index), filled with the
# same accounts.
SUBSCRIBER_TABLE = (
    """CREATE TABLE subscriber (
        id SERIAL PRIMARY KEY,
        username VARCHAR(64) NOT NULL,
        domain VARCHAR(190) NOT NULL,
        ha1 VARCHAR(128) NOT NULL,
        CONSTRAINT subscriber_account_idx UNIQUE (username, domain))""",
    """INSERT INTO subscriber (username, domain, ha1)
    SELECT device.name, tenant.sip_domain, device.ha1
    FROM device JOIN tenant ON tenant.id = device.tenant_id""",
    # auth_db checks the schema version of its table (Kamailio 5.6: subscriber 7).
    "CREATE TABLE version (table_name VARCHAR(32) PRIMARY KEY, table_version INTEGER NOT NULL)",
    "INSERT INTO version VALUES ('subscriber', 7)",
)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Step:
    setup: str
    rate: int
    registrations: int
    succeeded: int
    failed: int
    retransmissions: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_registration: float
    # Of which: Kamailio, the service, PostgreSQL.
    cpu_split_ms: tuple[float, float, float]
    achieved_rate: float
    # With reports on: the devices the service shows registered once the reports arrived.
    reported: int | None = None
    # Cores Kamailio kept busy on average during the step, and the machine's busy share.
    kamailio_cores: float = 0.0
    machine_busy: float = 0.0

    @property
    def clean(self) -> bool:
        return (
            self.failed == 0
            and self.retransmissions == 0
            and self.succeeded == self.registrations
            and self.p99_ms <= P99_LIMIT_MS
            and (self.reported is None or self.reported == self.succeeded)
        )


class Kamailio:
    """One Kamailio on a free UDP port, in its own process group."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log: Path,
        rpc_url: str = "",
        host: str = "127.0.0.1",
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log = log
        self.rpc_url = rpc_url
        self.host = host
        self.warm = False
        self.port = _free_port(socket.SOCK_DGRAM)
        # sipp registers from the same address every step, as phones refresh their
        # registrations: the first step makes the contacts, the next ones refresh them.
        self.phones_port = _free_port(socket.SOCK_DGRAM)
        self._log = log.open("wb")
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*self.argv, "-A", f"LISTEN=udp:{self.host}:{self.port}", "-A", f"WORKERS={WORKERS}"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(1.5)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} did not start; see {self.log}")

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def wait_ready(self, timeout: float = 30) -> float:
        """Seconds until it answers OPTIONS with 200 (a cluster's edge: it has its cache)."""
        started = time.monotonic()
        while _options(self.host, self.port) != 200:
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{self.name} not ready; see {self.log}")
            time.sleep(0.05)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def _options(host: str, port: int) -> int | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.3)
        branch = uuid.uuid4().hex
        s.sendto(
            (
                f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{s.getsockname()[1]};branch=z9hG4bK{branch};rport\r\n"
                f"From: <sip:ping@127.0.0.1>;tag={branch[:8]}\r\nTo: <sip:{host}:{port}>\r\n"
                f"Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            (host, port),
        )
        try:
            data = s.recv(4096)
        except OSError:
            return None
        return int(data[8:11]) if data.startswith(b"SIP/2.0 ") else None


def _kamailio_binary() -> str:
    for candidate in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio"):
        if Path(candidate).exists():
            return candidate
    raise RuntimeError("kamailio is not installed (deploy/kamailio/install-deps.sh)")


def _wire_latencies(pcap: Path) -> list[float]:
    """Milliseconds from each authenticated REGISTER (CSeq 2, first copy) to its 200."""
    sent: dict[bytes, float] = {}
    answered: dict[bytes, float] = {}
    data = pcap.read_bytes()
    if len(data) < 24:
        return []
    (magic,) = struct.unpack("<I", data[:4])
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    offset = 24
    while offset + 16 <= len(data):
        seconds, fraction, length, _ = struct.unpack("<IIII", data[offset : offset + 16])
        offset += 16
        frame = data[offset : offset + length]
        offset += length
        stamp = seconds + fraction * scale
        # Loopback frames: Ethernet (14), IPv4 (its IHL), UDP (8).
        if len(frame) < 42 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 0x0F) * 4
        payload = frame[14 + ihl + 8 :]
        head, _, _ = payload.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        call_id = cseq = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name in (b"call-id", b"i"):
                call_id = value.strip()
            elif name == b"cseq":
                cseq = value.strip()
        if call_id is None or cseq != b"2 REGISTER":
            continue
        if lines[0].startswith(b"REGISTER "):
            sent.setdefault(call_id, stamp)
        elif lines[0].startswith(b"SIP/2.0 200"):
            answered.setdefault(call_id, stamp)
    return [(answered[c] - sent[c]) * 1000 for c in answered if c in sent]


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _sipp_stats(stat_file: Path) -> dict[str, int]:
    """The cumulative counters of sipp's last statistics line."""
    rows = [line.split(";") for line in stat_file.read_text().splitlines() if line.strip()]
    header, last = rows[0], rows[-1]
    values = dict(zip(header, last, strict=False))

    def number(name: str) -> int:
        return int(float(values.get(name, "0") or 0))

    return {
        "succeeded": number("SuccessfulCall(C)"),
        "failed": number("FailedCall(C)"),
        "retransmissions": number("Retransmissions(C)"),
    }


class Storm:
    def __init__(self, *, accounts: Path, count: int, workdir: Path, service_pid: int) -> None:
        self.accounts = accounts
        self.count = count
        self.workdir = workdir
        self.service_pid = service_pid
        self._runs = 0

    def run(
        self,
        setup: str,
        kamailio: Kamailio,
        rate: int,
        *,
        shares: list[tuple[Kamailio, Path, int]] | None = None,
    ) -> Step:
        """One step: sipp registers every account at `rate` through `kamailio`, or, given
        `shares`, one sipp per edge at once, each with its accounts at its share of the rate."""
        self._runs += 1
        stem = self.workdir / f"{self._runs:02d}-{setup}-{rate}"
        pcap = stem.with_suffix(".pcap")
        shares = shares or [(kamailio, self.accounts, self.count)]
        total = sum(count for _, _, count in shares)
        ports = " or ".join(f"udp port {edge.port}" for edge, _, _ in shares)
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-s", "2048", "-B", "65536", "-w", str(pcap), ports],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.0)
        pids = [edge.proc.pid for edge, _, _ in shares]
        before = cpu.seconds_of(*pids, self.service_pid)
        machine_before = cpu.sample(self.service_pid)
        started = time.monotonic()
        running = []
        for n, (edge, accounts, count) in enumerate(shares):
            stats = stem.with_name(f"{stem.name}-{n}.csv")
            share_rate = max(1, round(rate * count / total))
            running.append((stats, subprocess.Popen(
                ["sipp", "-sf", str(SCENARIO), "-inf", str(accounts),
                 "-i", "127.0.0.1", "-p", str(edge.phones_port),
                 "-r", str(share_rate), "-rp", "1000", "-m", str(count), "-l", "5000",
                 "-recv_timeout", "5000", "-max_retrans", "3", "-nostdin",
                 "-trace_stat", "-stf", str(stats), "-fd", "60",
                 "-timeout", f"{int(count / share_rate) + 60}s", "-timeout_error",
                 f"{edge.host}:{edge.port}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )))  # fmt: skip
        errors = [proc.communicate()[1] for _, proc in running]
        elapsed = time.monotonic() - started
        after = cpu.seconds_of(*pids, self.service_pid)
        machine_after = cpu.sample(self.service_pid)
        time.sleep(0.5)
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
        counters = {"succeeded": 0, "failed": 0, "retransmissions": 0}
        for (stats, _), error in zip(running, errors, strict=True):
            if not stats.exists():
                raise RuntimeError(f"sipp wrote no statistics: {error[-500:]}")
            for name, value in _sipp_stats(stats).items():
                counters[name] += value
        latencies = _wire_latencies(pcap)
        pcap.unlink()
        # Kamailio's (every edge's), the service's, PostgreSQL's.
        used_each = [a - b for a, b in zip(after, before, strict=True)]
        grouped = [sum(used_each[: len(pids)]), *used_each[len(pids) :]]
        split = [used * 1000 / max(counters["succeeded"], 1) for used in grouped]
        used = sum(grouped)
        busy = machine_after.busy - machine_before.busy
        cores = machine_after.total - machine_before.total
        step = Step(
            setup=setup,
            rate=rate,
            registrations=total,
            succeeded=counters["succeeded"],
            failed=counters["failed"],
            retransmissions=counters["retransmissions"],
            p50_ms=round(statistics.median(latencies), 2) if latencies else float("nan"),
            p99_ms=round(_percentile(latencies, 0.99), 2),
            cpu_ms_per_registration=round(used * 1000 / max(counters["succeeded"], 1), 3),
            cpu_split_ms=(round(split[0], 3), round(split[1], 3), round(split[2], 3)),
            achieved_rate=round(counters["succeeded"] / elapsed, 0),
            kamailio_cores=round(grouped[0] / elapsed, 2),
            machine_busy=round(busy / cores, 2) if cores else 0.0,
        )
        progress(
            f"{setup:>7} {rate:>6}/s: {step.succeeded} ok, {step.failed} failed, "
            f"{step.retransmissions} retransmitted, p50 {step.p50_ms} ms, p99 {step.p99_ms} ms, "
            f"{step.cpu_ms_per_registration} ms CPU each {step.cpu_split_ms}, "
            f"Kamailio {step.kamailio_cores} cores, machine {step.machine_busy:.0%} busy"
        )
        return step


def _flush(rpc_url: str, token: str) -> None:
    call = {"jsonrpc": "2.0", "method": "htable.flush", "params": ["acc"], "id": 1}
    answer = httpx.post(rpc_url, json=call, headers={"Authorization": f"Bearer {token}"})
    if answer.status_code != 200 or "error" in answer.json():
        raise RuntimeError(f"could not flush the edge's cache: {answer.text}")


async def _create_subscribers(settings: Settings) -> None:
    engine = create_engine(settings, bounded=False)
    try:
        async with engine.begin() as conn:
            for statement in SUBSCRIBER_TABLE:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _registered_devices(database_url: str) -> int:
    """How many devices the service shows registered."""
    engine = create_engine(Settings(database_url=database_url), bounded=False)
    try:
        async with engine.begin() as conn:
            count = await conn.scalar(
                text(
                    "SELECT count(DISTINCT device_id) FROM registration "
                    "WHERE live AND expires_at > now()"
                )
            )
    finally:
        await engine.dispose()
    return int(count or 0)


def _wait_for_reports(database_url: str, expected: int) -> int:
    """The service's registered devices once the edge's queue has drained (or time is up)."""
    deadline = time.monotonic() + REPORTS_DRAIN_SECONDS
    while True:
        count = asyncio.run(_registered_devices(database_url))
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.5)


def _best(steps: list[Step], setup: str) -> Step | None:
    clean = [s for s in steps if s.setup == setup and s.clean]
    return max(clean, key=lambda s: s.rate) if clean else None


def reports_markdown(steps: list[Step]) -> str:
    lines = [
        "| cache | highest clean rate, reports on | off | on / off | CPU per registration on / "
        "off | target |",
        "|---|---|---|---|---|---|",
    ]
    for cache in ("cold", "warm"):
        on, off = _best(steps, cache), _best(steps, f"{cache}-off")
        if on is None or off is None:
            lines.append(
                f"| {cache} | {on.rate if on else 'none clean'} | "
                f"{off.rate if off else 'none clean'} | | | |"
            )
            continue
        ratio = on.rate / off.rate
        verdict = f"{'met' if ratio >= REPORTS_TARGET else 'missed'} (≥ {REPORTS_TARGET})"
        lines.append(
            f"| {cache} | {on.rate:,}/s | {off.rate:,}/s | {ratio:.2f} | "
            f"{on.cpu_ms_per_registration} / {off.cpu_ms_per_registration} ms | {verdict} |"
        )
    return "\n".join(lines)


def markdown(steps: list[Step]) -> str:
    reference = _best(steps, "auth_db")
    lines = [
        "| set-up | highest clean rate | p50 / p99 at it | CPU per registration | "
        "Kamailio's cores / machine busy at it | rate ratio to auth_db | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for setup, label in (
        ("cold", "reference edge, cold cache"),
        ("warm", "reference edge, warm cache"),
        ("restarted", "cluster edge, restarted and synced"),
        ("pair", "two cluster edges at once"),
        ("auth_db", "Kamailio `auth_db` on PostgreSQL"),
    ):
        if not any(s.setup == setup for s in steps):
            continue
        best = _best(steps, setup)
        if best is None:
            lines.append(f"| {label} | none clean | | | | | |")
            continue
        ratio = best.rate / reference.rate if reference else float("nan")
        target = TARGETS.get(setup)
        verdict = ""
        if target is not None:
            verdict = f"{'met' if ratio >= target else 'missed'} (≥ {target})"
        if setup == "pair" and (single := _best(steps, "warm")) is not None:
            pair = best.rate / single.rate
            verdict = (
                f"{pair:.2f} of one warm edge: {'met' if pair >= PAIR_TARGET else 'missed'} "
                f"(≥ {PAIR_TARGET}, given the cores)"
            )
        lines.append(
            f"| {label} | {best.rate:,}/s | {best.p50_ms} / {best.p99_ms} ms | "
            f"{best.cpu_ms_per_registration} ms | {best.kamailio_cores} / "
            f"{best.machine_busy:.0%} | {ratio:.2f} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument(
        "--rates", default=",".join(str(r) for r in RATES), help="registrations/s, ascending"
    )
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument(
        "--reports-compare",
        action="store_true",
        help="the edge with and without its registration reports, instead of against auth_db",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="also two cluster edges at once, and a cluster edge restarted before each step",
    )
    parser.add_argument(
        "--setups",
        default="",
        help="only these set-ups, comma-separated (cold, warm, auth_db; cold-off, warm-off)",
    )
    args = parser.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",")]
    if os.geteuid() != 0:
        print("tcpdump needs root", file=sys.stderr)
        return 2

    RESULTS_DIR.mkdir(exist_ok=True)
    workdir = RESULTS_DIR / "registrations"
    workdir.mkdir(exist_ok=True)
    env = service_env(args.database_url)
    settings = Settings(database_url=args.database_url)
    asyncio.run(recreate_database(args.database_url))
    edges: list[Kamailio] = []
    try:
        run_cli(env, "migrate")
        tenant_id = run_cli(env, "tenant", "create", "--name", "Storm", "--sip-domain", SIP_DOMAIN)
        key = run_cli(
            env, "api-key", "create", "--tenant", tenant_id, "--role", "call_control",
            "--name", "edge",
        )  # fmt: skip
        credentials: list[tuple[str, str]] = []
        progress(f"seeding {args.accounts:,} accounts")
        asyncio.run(
            seed_users(
                settings,
                tenant_id=uuid.UUID(tenant_id),
                count=args.accounts,
                credentials=credentials,
            )
        )
        asyncio.run(_create_subscribers(settings))
        asyncio.run(settle_database(args.database_url))
        accounts = workdir / "accounts.csv"
        accounts.write_text(
            "SEQUENTIAL\n" + "".join(f"{u};{p};{SIP_DOMAIN}\n" for u, p in credentials)
        )

        with Server(env=env, workers=1, log_path=workdir / "service.log") as server:
            connection = workdir / "antring-http.cfg"
            connection.write_text(
                f"[antring]\nurl = {server.base_url}\nusername = edge\npassword = {key}\n"
            )
            connection.chmod(0o600)
            token = uuid.uuid4().hex
            kam = _kamailio_binary()

            def reference_edge(
                name: str, *defines: str, host: str = "127.0.0.1", shm: int = 256
            ) -> Kamailio:
                rpc_port = _free_port(socket.SOCK_STREAM)
                edge = Kamailio(
                    name,
                    [kam, "-f", str(EDGE_CFG), "-DD", "-E", "-m", str(shm),
                     "-A", f'ANTRING_HTTP_CONFIG="{connection}"',
                     "-A", f"RPC_LISTEN=tcp:127.0.0.1:{rpc_port}",
                     # Two edges may run at once: TCP and WebSocket on free ports too.
                     "-A", f"LISTEN_TCP=tcp:127.0.0.1:{_free_port(socket.SOCK_STREAM)}",
                     "-A", f"LISTEN_WS=tcp:127.0.0.1:{_free_port(socket.SOCK_STREAM)}",
                     # Entries stay fresh for the whole run: "warm" means warm.
                     "-A", "ACCOUNT_CACHE_SECONDS=3600",
                     *(arg for define in defines for arg in ("-A", define))],
                    env={**os.environ, "EDGE_RPC_TOKEN": token},
                    log=workdir / f"{name.replace(' ', '-')}.log",
                    rpc_url=f"http://127.0.0.1:{rpc_port}/RPC",
                    host=host,
                )  # fmt: skip
                edges.append(edge)
                return edge

            edge = reference_edge("reference edge", 'EDGE_NAME="storm"')
            # Each set-up: (name, Kamailio, cache: cold, warm or none).
            setups: list[tuple[str, Kamailio, str]] = [
                ("cold", edge, "cold"),
                ("warm", edge, "warm"),
            ]
            if args.reports_compare:
                quiet = reference_edge("edge without reports", "WITHOUT_REGISTRATION_REPORTS")
                setups = [
                    setups[0],
                    ("cold-off", quiet, "cold"),
                    setups[1],
                    ("warm-off", quiet, "warm"),
                ]
            shares: list[tuple[Kamailio, Path, int]] = []
            if args.cluster:
                dmq = {name: _free_port(socket.SOCK_DGRAM) for name in CLUSTER_HOSTS}
                cluster: dict[str, Kamailio] = {}
                for name, host in CLUSTER_HOSTS.items():
                    [peer] = [
                        f"sip:{CLUSTER_HOSTS[p]}:{dmq[p]}" for p in CLUSTER_HOSTS if p != name
                    ]
                    cluster[name] = reference_edge(
                        f"cluster edge {name}",
                        f'EDGE_NAME="cluster-{name}"', "WITH_CLUSTER",
                        f"CLUSTER_LISTEN=udp:{host}:{dmq[name]}",
                        f"CLUSTER_LISTEN_TCP=tcp:{host}:{dmq[name]}",
                        f'CLUSTER_SOCKET="udp:{host}:{dmq[name]}"',
                        f'CLUSTER_URI="sip:{host}:{dmq[name]}"',
                        f'CLUSTER_NOTIFY="{peer}"',
                        host=host, shm=CLUSTER_SHM_MB,
                    )  # fmt: skip
                for edge_of_cluster in cluster.values():
                    edge_of_cluster.wait_ready()
                # Each phone registers at one edge: half the accounts at each.
                lines = accounts.read_text().splitlines()[1:]
                for name, half in (("a", lines[0::2]), ("b", lines[1::2])):
                    path = workdir / f"accounts-{name}.csv"
                    path.write_text("SEQUENTIAL\n" + "".join(f"{line}\n" for line in half))
                    shares.append((cluster[name], path, len(half)))
                setups += [("pair", cluster["a"], "pair"), ("restarted", cluster["b"], "restarted")]
            if not args.reports_compare:
                db_name = args.database_url.rsplit("/", 1)[1]
                auth_db = Kamailio(
                    "auth_db",
                    [kam, "-f", str(AUTH_DB_CFG), "-DD", "-E", "-m", "256",
                     "-A", f'DB_URL="postgres://postgres@127.0.0.1/{db_name}"'],
                    env=dict(os.environ),
                    log=workdir / "auth_db.log",
                )  # fmt: skip
                edges.append(auth_db)
                setups.append(("auth_db", auth_db, "none"))
            storm = Storm(
                accounts=accounts, count=args.accounts, workdir=workdir, service_pid=server.pid
            )
            steps: list[Step] = []
            if args.setups:
                setups = [s for s in setups if s[0] in args.setups.split(",")]
            going = {name: True for name, _, _ in setups}
            for rate in rates:
                for name, kamailio, cache in setups:
                    if not going[name]:
                        continue
                    if cache == "cold":
                        _flush(kamailio.rpc_url, token)
                    elif cache == "warm" and not kamailio.warm:
                        storm.run("warm-up", kamailio, min(rates[0], 1000))
                        kamailio.warm = True
                    elif cache == "pair" and not kamailio.warm:
                        # Each phone's account cached (at both edges) and its contact made.
                        storm.run("warm-up", kamailio, min(rates[0], 1000), shares=shares)
                        kamailio.warm = True
                    elif cache == "restarted":
                        kamailio.kill()
                        kamailio.start()
                        ready = kamailio.wait_ready()
                        progress(f"restarted edge ready after {ready:.1f} s")
                        # Phones come back some seconds after their edge.
                        time.sleep(3.0)
                    reports = name in ("cold", "warm", "pair", "restarted")
                    step = storm.run(
                        name, kamailio, rate, shares=shares if cache == "pair" else None
                    )
                    if reports:
                        step.reported = _wait_for_reports(args.database_url, step.succeeded)
                        progress(f"{name:>7} {rate:>6}/s: {step.reported} devices registered")
                    steps.append(step)
                    going[name] = step.clean
                    kamailio.warm = kamailio.warm or step.succeeded == args.accounts
                if not any(going.values()):
                    break
    finally:
        for edge in edges:
            edge.stop()
        asyncio.run(drop_database(args.database_url))

    table = reports_markdown(steps) if args.reports_compare else markdown(steps)
    print("## Registration storm\n")
    print(
        f"{args.accounts:,} accounts, each registering once per step; a step is clean with no "
        f"failure, no retransmission and p99 ≤ {P99_LIMIT_MS:.0f} ms (wire time at Kamailio).\n"
    )
    print(table)
    print(
        "\n| set-up | rate | ok | failed | retransmitted | p50 ms | p99 ms | CPU ms each | "
        "registered in the service |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for s in steps:
        print(
            f"| {s.setup} | {s.rate:,} | {s.succeeded:,} | {s.failed} | {s.retransmissions} | "
            f"{s.p50_ms} | {s.p99_ms} | {s.cpu_ms_per_registration} | "
            f"{'' if s.reported is None else f'{s.reported:,}'} |"
        )
    report = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "accounts": args.accounts,
        "steps": [asdict(s) for s in steps],
    }
    (RESULTS_DIR / "registrations.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
