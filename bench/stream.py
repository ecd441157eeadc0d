"""Event streams under load, on PostgreSQL and one worker: SUBSCRIBERS streams spread over
TENANTS tenants (types=user.updated), then RATE changes a second for DURATION seconds (each a
user's outbound switch flipped once, round robin over the tenants): every change must reach
each of its tenant's streams once. Reports delivery p50/p99 from the event's commit (its
timestamp, taken in the writing transaction) to each stream's reader, the server's CPU and
memory, events lost and duplicated; then the write route's rate (PATCH …/toggles, 64
connections, on a tenant whose streams are open) with the streams open and with none, back to
back (none, with, none). The readers run in a process of their own.

With --before DIR (a checkout of the code before the minutes followed calls), it also measures
the usage report's server CPU per report against that code, in interleaved rounds.

With --everything-loaded, before the streams open the server writes a name in each tenant (a
user created through the API: ICU is loaded) and serves its OpenAPI document (built and kept):
the memory of a process that has used what it otherwise loads only when first needed.

    .venv/bin/python -m bench.stream [--subscribers 1000] [--duration 60] [--before DIR]
"""

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench import cpu
from bench.run import DEFAULT_DATABASE_URL, bench_settings, progress
from bench.seed import USERNAME_PREFIX, drop_database, recreate_database, seed_users
from bench.server import Server, run_cli, service_env
from bench.wrk import find_wrk, run_wrk

RESULTS = Path(__file__).resolve().parent / "results"
STREAM = "/v1/events/stream?types=user.updated"
WRITE_USERS = 2000


@dataclass(frozen=True)
class Tenant:
    id: str
    sip_domain: str
    admin: str
    viewer: str
    call_control: str


def _env(database_url: str, code: Path | None = None) -> dict[str, str]:
    env = {
        **service_env(database_url),
        "ANTRING_STREAMS_PER_KEY": "2000",
        "ANTRING_STREAMS_PER_PROCESS": "5000",
    }
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


def _rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and its children."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree = {root_pid}
    for pid, parent in sorted(parents.items()):
        if parent in tree:
            tree.add(pid)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class _PeakMemory:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, _rss_bytes(self.pid))

    def __enter__(self) -> "_PeakMemory":
        self.peak = _rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the readers' process -------------------------------------------------------------------


def _read_streams(pipe: Connection, base_url: str, tokens: list[str]) -> None:
    """Opens a stream per token, says how many opened, and reads until told "stop"; then
    sends, per stream, the resource ids received (with repeats) and every delay."""

    async def main() -> None:
        received: list[Counter[str]] = [Counter() for _ in tokens]
        delays: list[float] = []
        opened = 0
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def read(index: int, token: str, ready: asyncio.Event) -> None:
                nonlocal opened
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(base_url + STREAM, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    opened += 1
                    if opened == len(tokens):
                        ready.set()
                    buffer = b""
                    async for chunk in response.content.iter_any():
                        now = time.time()
                        buffer += chunk
                        *blocks, buffer = buffer.split(b"\r\n\r\n")
                        for block in blocks:
                            for line in block.split(b"\r\n"):
                                if line.startswith(b"data: "):
                                    body = json.loads(line[6:])
                                    sent = datetime.fromisoformat(body["timestamp"]).timestamp()
                                    delays.append(now - sent)
                                    received[index][body["data"]["resource"]["id"]] += 1

            ready = asyncio.Event()
            readers = []
            for start in range(0, len(tokens), 100):
                readers += [
                    asyncio.create_task(read(i, tokens[i], ready))
                    for i in range(start, min(start + 100, len(tokens)))
                ]
                await asyncio.sleep(0.2)
            await asyncio.wait_for(ready.wait(), 120)
            loop = asyncio.get_running_loop()
            pipe.send(opened)
            while (asked := await loop.run_in_executor(None, pipe.recv)) != "stop":
                if asked == "snapshot":
                    pipe.send(([dict(c) for c in received], list(delays)))
                else:
                    pipe.send(sum(sum(c.values()) for c in received))
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    asyncio.run(main())


# --- the service's side ---------------------------------------------------------------------


async def _tenants(base_url: str, platform: str, count: int) -> list[Tenant]:
    made = []
    headers = {"Authorization": f"Bearer {platform}"}
    async with aiohttp.ClientSession(base_url=base_url, headers=headers) as c:
        for n in range(count):
            domain = f"stream{n:03d}.bench.test"
            body = {"name": f"Stream bench {n:03d}", "sip_domain": domain}
            async with c.post("/v1/tenants", json=body) as answer:
                assert answer.status == 201, await answer.text()
                tenant_id = (await answer.json())["id"]
            keys = {}
            for role in ("admin", "viewer", "call_control"):
                async with c.post(
                    f"/v1/tenants/{tenant_id}/api-keys", json={"name": role, "role": role}
                ) as answer:
                    assert answer.status == 201, await answer.text()
                    keys[role] = (await answer.json())["key"]
            made.append(
                Tenant(tenant_id, domain, keys["admin"], keys["viewer"], keys["call_control"])
            )
    return made


async def _load_everything(base_url: str, tenants: list[Tenant]) -> None:
    """What a process loads only when first needed: ICU for a name written, the OpenAPI
    document for /docs."""
    async with aiohttp.ClientSession(base_url=base_url) as c:
        for n, tenant in enumerate(tenants):
            headers = {"Authorization": f"Bearer {tenant.admin}"}
            body = {"display_name": f"Nguyễn Văn Bench {n:03d}"}
            async with c.post("/v1/users", json=body, headers=headers) as answer:
                assert answer.status == 201, await answer.text()
        async with c.get("/openapi.json") as answer:
            assert answer.status == 200, await answer.text()


async def _user_ids(base_url: str, tenant: Tenant) -> list[str]:
    headers = {"Authorization": f"Bearer {tenant.admin}"}
    ids: list[str] = []
    async with aiohttp.ClientSession(base_url=base_url, headers=headers) as c:
        while True:
            async with c.get("/v1/users", params={"limit": 200, "offset": len(ids)}) as r:
                page = await r.json()
            ids += [user["id"] for user in page["items"]]
            if len(ids) >= page["total"] or not page["items"]:
                return ids


async def _change(
    base_url: str, tenants: list[Tenant], ids: list[list[str]], *, rate: int, seconds: int
) -> list[set[str]]:
    """RATE changes a second, round robin over the tenants; returns each tenant's changed ids."""
    changed: list[set[str]] = [set() for _ in tenants]
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(base_url=base_url, connector=connector) as c:

        async def change(n: int) -> None:
            t = n % len(tenants)
            user_id = ids[t][n // len(tenants)]
            headers = {"Authorization": f"Bearer {tenants[t].admin}"}
            body = {"outbound_allowed": False}
            async with c.patch(f"/v1/users/{user_id}/toggles", json=body, headers=headers) as r:
                if r.status == 200:
                    changed[t].add(user_id)

        started = time.monotonic()
        pending: list[asyncio.Task[None]] = []
        total = rate * seconds
        while len(pending) < total:
            due = min(int((time.monotonic() - started) * rate) + 1, total)
            pending += [asyncio.create_task(change(n)) for n in range(len(pending), due)]
            await asyncio.sleep(0.005)
        await asyncio.gather(*pending)
    return changed


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else float("nan")


def _toggles(
    wrk: str, server: Server, tenant: Tenant, ids_file: Path, seconds: int
) -> dict[str, Any]:
    env = {"BENCH_TOKEN": tenant.admin, "BENCH_USER_IDS_FILE": str(ids_file)}
    run_wrk(wrk, "toggles", base_url=server.base_url, connections=64, seconds=2, env=env)
    before = cpu.sample(server.pid)
    result = run_wrk(
        wrk, "toggles", base_url=server.base_url, connections=64, seconds=seconds, env=env
    )
    used = cpu.usage(before, cpu.sample(server.pid), seconds=result.seconds)
    summary = {**result.summary(), **used}
    summary["server_cpu_ms_per_request"] = used["server_cores"] * 1000 / result.requests_per_second
    progress(
        f"toggles: {result.requests_per_second:,.0f} req/s, p99 {result.p99_ms:.1f} ms, "
        f"server {used['server_cores']:.2f} cores"
    )
    return summary


def _usage(
    wrk: str, server: Server, tenant: Tenant, users: int, seconds: int, tag: str
) -> dict[str, Any]:
    env = {
        "BENCH_TOKEN": tenant.call_control,
        "BENCH_DOMAIN": tenant.sip_domain,
        "BENCH_USERS": str(users),
        "BENCH_USERNAME_PREFIX": USERNAME_PREFIX,
        "BENCH_RUN_TAG": tag,
        "BENCH_STARTED_AT": datetime.now(UTC).isoformat(timespec="seconds"),
        "BENCH_MAX_DURATION": "300",
    }
    before = cpu.sample(server.pid)
    result = run_wrk(
        wrk, "usage", base_url=server.base_url, connections=32, seconds=seconds, env=env
    )
    # The announcements of the last reports are the run's work too.
    time.sleep(3)
    after = cpu.sample(server.pid)
    server_seconds = after.server - before.server
    return {
        "requests_per_second": result.requests_per_second,
        "errors": result.errors,
        "server_cpu_ms_per_report": server_seconds * 1000 / max(result.requests, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stream", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--write-seconds", type=int, default=10)
    parser.add_argument("--before", type=Path, help="the code before the minutes followed calls")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--everything-loaded",
        action="store_true",
        help="write a name and serve /openapi.json first (what is otherwise loaded when needed)",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="dropped and created again; its name must contain 'bench'",
    )
    args = parser.parse_args(argv)
    wrk = find_wrk()
    url = args.database_url
    users_per_tenant = -(-args.rate * args.duration // args.tenants) + 10
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / "stream-server.log"
    asyncio.run(recreate_database(url))
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    try:
        env = _env(url)
        run_cli(env, "migrate")
        platform = run_cli(
            env, "api-key", "create", "--platform", "--role", "admin", "--name", "stream bench"
        )
        with Server(env=env, workers=1, log_path=log) as server:
            tenants = asyncio.run(_tenants(server.base_url, platform, args.tenants))
            if args.everything_loaded:
                asyncio.run(_load_everything(server.base_url, tenants))
            settings = bench_settings(url)
            progress(f"seeding {users_per_tenant} users in each of {args.tenants} tenants")
            for n, tenant in enumerate(tenants):
                # The write route's tenant has as many users as bench.writes: 64 connections
                # then rarely change one user at once.
                count = max(users_per_tenant, WRITE_USERS) if n == 0 else users_per_tenant
                asyncio.run(seed_users(settings, tenant_id=uuid.UUID(tenant.id), count=count))
            ids = [asyncio.run(_user_ids(server.base_url, tenant)) for tenant in tenants]
            ids_file = Path(tempfile.mkstemp(prefix="antring-stream-ids-")[1])
            ids_file.write_text("\n".join(ids[0]))
            writes = {
                "none (before)": _toggles(wrk, server, tenants[0], ids_file, args.write_seconds)
            }

            tokens = [tenants[i % len(tenants)].viewer for i in range(args.subscribers)]
            ours, theirs = multiprocessing.get_context("spawn").Pipe()
            reading = multiprocessing.get_context("spawn").Process(
                target=_read_streams, args=(theirs, server.base_url, tokens)
            )
            reading.start()
            opened = ours.recv()
            progress(f"{opened} streams open")
            rss_idle = _rss_bytes(server.pid)
            before = cpu.sample(server.pid)
            started = time.monotonic()
            with _PeakMemory(server.pid) as memory:
                changed = asyncio.run(
                    _change(server.base_url, tenants, ids, rate=args.rate, seconds=args.duration)
                )
                elapsed = time.monotonic() - started
                used = cpu.usage(before, cpu.sample(server.pid), seconds=elapsed)
                expected = sum(len(changed[i % len(tenants)]) for i in range(args.subscribers))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    ours.send("count")
                    if ours.recv() >= expected:
                        break
                    time.sleep(0.2)
            ours.send("snapshot")
            received, delays = ours.recv()
            writes[f"{opened} streams open"] = _toggles(
                wrk, server, tenants[0], ids_file, args.write_seconds
            )
            ours.send("stop")
            reading.join()
            time.sleep(2)
            writes["none (after)"] = _toggles(wrk, server, tenants[0], ids_file, args.write_seconds)

            lost = duplicated = 0
            for i, got in enumerate(received):
                wanted = changed[i % len(tenants)]
                lost += len(wanted - set(got))
                duplicated += sum(n - 1 for n in got.values() if n > 1)
            changes = sum(len(c) for c in changed)
            report["delivery"] = {
                "streams": opened,
                "changes": changes,
                "deliveries_expected": expected,
                "p50_ms": _percentile(delays, 0.5) * 1000,
                "p99_ms": _percentile(delays, 0.99) * 1000,
                "lost": lost,
                "duplicated": duplicated,
                "server_cores": used["server_cores"],
                "postgres_cores": used["postgres_cores"],
                "rss_idle_mb": rss_idle / 2**20,
                "rss_peak_mb": memory.peak / 2**20,
            }
            report["writes"] = writes
        if args.before is not None:
            report["usage"] = _minutes_cpu(args, wrk, url, tenants[1], users_per_tenant, log)
    finally:
        asyncio.run(drop_database(url))
    _print(report)
    (RESULTS / "stream.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _minutes_cpu(
    args: argparse.Namespace, wrk: str, url: str, tenant: Tenant, users: int, log: Path
) -> dict[str, Any]:
    """Server CPU per usage report: this code and the code before, interleaved."""
    runs: list[tuple[str, dict[str, Any]]] = []
    order = [("before", args.before), ("this checkout", None)] * args.rounds + [
        ("before", args.before)
    ]
    for n, (name, code) in enumerate(order):
        with Server(env=_env(url, code), workers=1, log_path=log) as server:
            _usage(wrk, server, tenant, users, 2, f"warm{n}")
            runs.append((name, _usage(wrk, server, tenant, users, args.write_seconds, f"run{n}")))
            progress(f"usage ({name}): {runs[-1][1]}")
    ratios = []
    for i, (name, result) in enumerate(runs):
        if name == "this checkout":
            base = (
                runs[i - 1][1]["server_cpu_ms_per_report"]
                + runs[i + 1][1]["server_cpu_ms_per_report"]
            ) / 2
            ratios.append(result["server_cpu_ms_per_report"] / base)
    return {"runs": runs, "cpu_ratios": ratios, "median_ratio": statistics.median(ratios)}


def _print(report: dict[str, Any]) -> None:
    d = report["delivery"]
    print(
        f"| {d['streams']:,} streams, {report['args']['rate']} changes/s for "
        f"{report['args']['duration']} s | value |"
    )
    print("|---|---:|")
    for label, value in (
        ("changes committed", f"{d['changes']:,}"),
        (
            "deliveries expected (each change to each of its tenant's streams)",
            f"{d['deliveries_expected']:,}",
        ),
        ("delivery p50, commit → reader", f"{d['p50_ms']:.0f} ms"),
        ("delivery p99, commit → reader", f"{d['p99_ms']:.0f} ms"),
        ("events lost", f"{d['lost']}"),
        ("events duplicated", f"{d['duplicated']}"),
        ("server CPU (cores, average)", f"{d['server_cores']:.2f}"),
        ("PostgreSQL CPU (cores, average)", f"{d['postgres_cores']:.2f}"),
        ("server memory, streams open and idle", f"{d['rss_idle_mb']:.0f} MB"),
        ("server memory, peak under load", f"{d['rss_peak_mb']:.0f} MB"),
    ):
        print(f"| {label} | {value} |")
    writes = report["writes"]
    print("\n| PATCH …/toggles, 64 connections | requests/s | p99 ms | server CPU ms/request |")
    print("|---|---:|---:|---:|")
    for name, w in writes.items():
        print(
            f"| {name} | {w['requests_per_second']:,.0f} | {w['p99_ms']:.1f} "
            f"| {w['server_cpu_ms_per_request']:.2f} |"
        )
    names = list(writes)
    base = (writes[names[0]]["requests_per_second"] + writes[names[2]]["requests_per_second"]) / 2
    print(f"\nwith streams / without: {writes[names[1]]['requests_per_second'] / base:.2f}")
    if "usage" in report:
        u = report["usage"]
        print("\n| usage report, 32 connections | requests/s | server CPU ms/report |")
        print("|---|---:|---:|")
        for name, r in u["runs"]:
            rate, per_report = r["requests_per_second"], r["server_cpu_ms_per_report"]
            print(f"| {name} | {rate:,.0f} | {per_report:.3f} |")
        rounds = ", ".join(f"{r:.3f}" for r in u["cpu_ratios"])
        print(f"\nCPU per report, this / before: median {u['median_ratio']:.3f} (rounds: {rounds})")


if __name__ == "__main__":
    sys.exit(main())
