"""Load benchmark of the call-control API: one uvicorn worker on PostgreSQL, driven by wrk.

Creates and seeds its own database, starts `antring serve`, runs bench/lua/ scripts at 64 and 8
connections, prints a Markdown table (stdout; progress goes to stderr), checks that every usage
report the service acknowledged was recorded exactly once, and writes bench/results/latest.json.

    .venv/bin/python -m bench.run [--workers-compare] [--observability-compare]
        [--before OTHER_CHECKOUT]
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.crypto import ha1_md5
from app.settings import Settings, get_settings
from bench import cpu
from bench.seed import (
    USERNAME_PREFIX,
    LedgerTotals,
    Seeded,
    drop_database,
    ledger_totals,
    recreate_database,
    seed_users,
    settle_database,
)
from bench.server import Server, request_json, run_cli, service_env
from bench.wrk import WrkResult, find_wrk, run_wrk, wrk_version

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/antring_bench"
SIP_DOMAIN = "bench.sip.test"
CONNECTIONS = (64, 8)
OBSERVABILITY_TARGET = 0.9
# Slices of the observability comparison: short, so that a drift of the shared machine
# (single 10-second runs move by ±25 % on a busy day) falls on the servers compared alike.
SLICE_SECONDS = 3
P99_TARGET_MS = {64: 60.0, 8: 15.0}
WORKERS_TARGET = 1.6
USAGE_MAX_DURATION = 900


@dataclass(frozen=True, slots=True)
class Endpoint:
    script: str
    label: str
    target_ratio: float | None


BARE = Endpoint("live", "bare `GET /health/live`", None)
LOOKUP = Endpoint("sip_account", "registrar lookup `GET …/sip-accounts/{username}`", 0.30)
AUTHORIZE = Endpoint("authorize", "authorization `POST …/authorizations`", 0.20)
ENDPOINTS = (
    BARE,
    LOOKUP,
    AUTHORIZE,
    Endpoint("usage", "usage report `POST …/usage`", 0.18),
)

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


def _charged(duration: int, increment: int) -> int:
    return -(-duration // increment) * increment


@dataclass
class UsageBook:
    """The usage reports the service acknowledged (2xx), and the seconds they must have charged.

    Reports still unanswered when wrk stops are resent with the same call_id, as a SIP platform
    would retry them: 200 means the first one was recorded, 201 that it was not.
    """

    increment: int
    sent: int = 0
    calls: int = 0
    duration_seconds: int = 0
    charged_seconds: int = 0
    first_try_created: int = 0
    first_try_repeated: int = 0
    resent_recorded_before: int = 0
    resent_recorded_now: int = 0
    resent_failed: int = 0
    unmatched: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def _acknowledge(self, duration: int, count: int = 1) -> None:
        self.calls += count
        self.duration_seconds += duration * count
        self.charged_seconds += _charged(duration, self.increment) * count

    def add(self, result: WrkResult, *, base_url: str, token: str) -> None:
        for thread in result.threads:
            self.sent += int(thread["sent"])
            self.first_try_created += int(thread["created"])
            self.first_try_repeated += int(thread["repeated"])
            self.unmatched += int(thread["unmatched"])
            for status, count in thread["statuses"].items():
                self.statuses[status] = self.statuses.get(status, 0) + int(count)
            for duration, count in thread["acknowledged"].items():
                self._acknowledge(int(duration), int(count))
            for body in thread["pending"].values():
                self._resend(body, base_url=base_url, token=token)

    def _resend(self, body: str, *, base_url: str, token: str) -> None:
        status, _ = request_json(
            "POST", f"{base_url}/v1/call-control/usage", token=token, body=body.encode()
        )
        if status == 200:
            self.resent_recorded_before += 1
        elif status == 201:
            self.resent_recorded_now += 1
        else:
            self.resent_failed += 1
            return
        self._acknowledge(int(json.loads(body)["duration_seconds"]))

    def check(self, totals: LedgerTotals) -> tuple[bool, list[str]]:
        problems = []
        if totals.calls != self.calls:
            problems.append(f"call_record has {totals.calls:,} calls, {self.calls:,} acknowledged")
        if totals.duration_seconds != self.duration_seconds:
            problems.append(
                f"call_record has {totals.duration_seconds:,} s of calls, "
                f"{self.duration_seconds:,} s reported"
            )
        if totals.charged_seconds != self.charged_seconds:
            problems.append(
                f"call_record charged {totals.charged_seconds:,} s, expected "
                f"{self.charged_seconds:,} s"
            )
        if totals.used_seconds != self.charged_seconds:
            problems.append(
                f"monthly_usage has {totals.used_seconds:,} s used, expected "
                f"{self.charged_seconds:,} s"
            )
        if self.resent_failed:
            problems.append(f"{self.resent_failed} resent reports were still not acknowledged")
        if self.unmatched:
            problems.append(f"{self.unmatched} 2xx answers named a call_id that was not sent")
        return not problems, problems


@dataclass
class Bench:
    wrk: str
    base_url: str
    token: str
    users: int
    seconds: int
    warmup: int
    usage: UsageBook
    started_at: str
    runs: int = 0
    # The callers are the seeded users first_user .. first_user + users - 1.
    first_user: int = 1

    def measure(self, endpoint: Endpoint, connections: int) -> WrkResult:
        """One measured run after a warm-up."""
        self.warm_up(endpoint, connections)
        return self.measured_run(endpoint, connections)

    def warm_up(self, endpoint: Endpoint, connections: int) -> None:
        if self.warmup > 0:
            self._run(endpoint, connections, self.warmup)

    def measured_run(self, endpoint: Endpoint, connections: int) -> WrkResult:
        return self.timed_run(endpoint, connections, self.seconds)

    def timed_run(self, endpoint: Endpoint, connections: int, seconds: int) -> WrkResult:
        result = self._run(endpoint, connections, seconds)
        progress(
            f"{endpoint.script} c={connections}: {result.requests_per_second:,.0f} req/s, "
            f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, {result.errors} errors"
        )
        return result

    def _run(self, endpoint: Endpoint, connections: int, seconds: int) -> WrkResult:
        self.runs += 1
        env = {
            "BENCH_TOKEN": self.token,
            "BENCH_DOMAIN": SIP_DOMAIN,
            "BENCH_USERS": str(self.users),
            "BENCH_FIRST_USER": str(self.first_user),
            "BENCH_USERNAME_PREFIX": USERNAME_PREFIX,
            "BENCH_RUN_TAG": f"bench{self.runs}",
            "BENCH_STARTED_AT": self.started_at,
            "BENCH_MAX_DURATION": str(USAGE_MAX_DURATION),
        }
        result = run_wrk(
            self.wrk,
            endpoint.script,
            base_url=self.base_url,
            connections=connections,
            seconds=seconds,
            env=env,
        )
        if endpoint.script == "usage":
            self.usage.add(result, base_url=self.base_url, token=self.token)
        return result


def _check_seeded(server: Server, seeded: Seeded, *, token: str, admin_token: str) -> None:
    """The server reads the seeded rows as its own: the HA1 and the encrypted password."""
    status, account = request_json(
        "GET",
        f"{server.base_url}/v1/call-control/sip-accounts/{seeded.sample_username}"
        f"?domain={SIP_DOMAIN}",
        token=token,
    )
    expected_ha1 = ha1_md5(seeded.sample_username, seeded.realm, seeded.sample_password)
    if status != 200 or account["ha1"] != expected_ha1 or not account["enabled"]:
        raise RuntimeError(f"registrar lookup of a seeded device: {status} {account}")
    status, config = request_json(
        "GET",
        f"{server.base_url}/v1/devices/{seeded.sample_device_id}/config?reveal=password",
        token=admin_token,
    )
    if status != 200 or config["ip_phone"]["password"] != seeded.sample_password:
        raise RuntimeError(f"the server cannot read a seeded device password: {status}")


def _reasons(results: list[WrkResult]) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for result in results:
        for thread in result.threads:
            for group in ("reasons", "statuses"):
                for name, count in thread[group].items():
                    reasons[name] = reasons.get(name, 0) + int(count)
    return reasons


def _target(endpoint: Endpoint, result: WrkResult, ratio: float) -> str:
    if endpoint.target_ratio is None:
        return "—"
    p99_limit = P99_TARGET_MS[result.connections]
    met = ratio >= endpoint.target_ratio and result.p99_ms < p99_limit
    return f"≥ {endpoint.target_ratio:.2f}, p99 < {p99_limit:g} ms: {'yes' if met else 'no'}"


def ratio_to_bare(result: WrkResult, rows: list[tuple[Endpoint, WrkResult]]) -> float:
    bare = next(r for e, r in rows if e is BARE and r.connections == result.connections)
    return result.requests_per_second / bare.requests_per_second


def markdown_table(rows: list[tuple[Endpoint, WrkResult]]) -> str:
    lines = [
        "| endpoint | connections | requests/s | p50 ms | p99 ms | ratio to bare | errors "
        "| target met |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for endpoint, result in rows:
        ratio = ratio_to_bare(result, rows)
        lines.append(
            f"| {endpoint.label} | {result.connections} | {result.requests_per_second:,.0f} "
            f"| {result.p50_ms:.1f} | {result.p99_ms:.1f} | {ratio:.2f} | {result.errors} "
            f"| {_target(endpoint, result, ratio)} |"
        )
    return "\n".join(lines)


def bench_settings(database_url: str) -> Settings:
    return get_settings().model_copy(update={"database_url": database_url})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="dropped and created again; its name must contain 'bench'",
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run")
    parser.add_argument(
        "--workers-compare",
        action="store_true",
        help="also the registrar lookup at 64 connections with 1 and then 2 workers, back to back",
    )
    parser.add_argument(
        "--observability-compare",
        action="store_true",
        help="also each call-control route at 64 connections with request ids, access log and "
        "metrics on and then off, back to back, and the registrar lookup's CPU per request "
        "with each of them alone",
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=10,
        help=f"slices of {SLICE_SECONDS} s each server gets in the observability comparison",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="OTHER_CHECKOUT",
        help="also the authorization on a server of this checkout and one of another checkout "
        "(the code before a change), started together, in alternating slices at 64 and 8 "
        "connections",
    )
    parser.add_argument("--keep-database", action="store_true", help="do not drop it at the end")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 99_999:
        parser.error("--users must be between 1 and 99999 (5-digit SIP usernames)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = find_wrk()
    RESULTS_DIR.mkdir(exist_ok=True)
    log_path = RESULTS_DIR / "server.log"
    log_path.unlink(missing_ok=True)
    env = service_env(args.database_url)
    settings = bench_settings(args.database_url)
    load_before = os.getloadavg()
    progress(f"creating {args.database_url}")
    asyncio.run(recreate_database(args.database_url))
    try:
        return _benchmark(
            args, wrk=wrk, env=env, settings=settings, log_path=log_path, load_before=load_before
        )
    except RuntimeError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        if not args.keep_database:
            asyncio.run(drop_database(args.database_url))
            progress("dropped the database")


@dataclass(frozen=True, slots=True)
class Prepared:
    tenant_id: str
    token: str
    admin_token: str
    seeded: Seeded


def prepare(users: int, *, env: dict[str, str], settings: Settings) -> Prepared:
    """Schema, tenant and keys through the CLI, as an operator would; users in bulk. Every
    benchmark that serves seeded users starts here."""
    run_cli(env, "migrate")
    tenant_id = run_cli(env, "tenant", "create", "--name", "Benchmark", "--sip-domain", SIP_DOMAIN)
    token = run_cli(
        env, "api-key", "create", "--tenant", tenant_id, "--role", "call_control", "--name", "bench"
    )
    admin_token = run_cli(
        env, "api-key", "create", "--tenant", tenant_id, "--role", "admin", "--name", "bench check"
    )
    progress(f"seeding {users:,} users")
    seeded = asyncio.run(seed_users(settings, tenant_id=uuid.UUID(tenant_id), count=users))
    progress(f"seeded in {seeded.seconds:.1f} s ({seeded.limited_users:,} with a minute limit)")
    return Prepared(tenant_id=tenant_id, token=token, admin_token=admin_token, seeded=seeded)


def _compare_workers(bench: Bench, *, env: dict[str, str], log_path: Path) -> dict[str, Any]:
    """The registrar lookup at 64 connections with one worker, then with two, back to back on a
    settled database, so that both runs see the same conditions."""
    runs = {}
    compare: dict[str, Any] = {}
    for name, workers in (("one_worker", 1), ("two_workers", 2)):
        with Server(env=env, workers=workers, log_path=log_path) as server:
            bench.base_url = server.base_url
            bench.warm_up(LOOKUP, 64)
            before = cpu.sample(server.pid)
            runs[name] = bench.measured_run(LOOKUP, 64)
            used = cpu.usage(before, cpu.sample(server.pid), seconds=runs[name].seconds)
        compare[name] = {**runs[name].summary(), "cpu": used}
    compare["ratio"] = (
        runs["two_workers"].requests_per_second / runs["one_worker"].requests_per_second
    )
    return compare


# Each part of the observability, alone, on top of none of them.
OBSERVABILITY_OFF = {
    "ANTRING_REQUEST_IDS": "false",
    "ANTRING_ACCESS_LOG": "false",
    "ANTRING_METRICS_ENABLED": "false",
}
OBSERVABILITY_PARTS = {
    "none": {},
    "request ids": {"ANTRING_REQUEST_IDS": "true"},
    "access log": {"ANTRING_ACCESS_LOG": "true"},
    "metrics": {"ANTRING_METRICS_ENABLED": "true"},
    "all": {
        "ANTRING_REQUEST_IDS": "true",
        "ANTRING_ACCESS_LOG": "true",
        "ANTRING_METRICS_ENABLED": "true",
    },
}


@dataclass
class Sliced:
    """One server's slices of a comparison: requests answered, seconds, its CPU seconds."""

    requests: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    # PostgreSQL's, all of its processes (the other servers of the comparison are idle).
    postgres_cpu_seconds: float = 0.0
    slice_rates: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    runs: list[WrkResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "requests_per_second": self.requests / self.seconds,
            "server_cpu_us_per_request": round(self.cpu_seconds / self.requests * 1e6, 1),
            "postgres_cpu_us_per_request": round(
                self.postgres_cpu_seconds / self.requests * 1e6, 1
            ),
            "p99_ms": sorted(self.p99_ms)[len(self.p99_ms) // 2],
            "slice_requests_per_second": [round(rate) for rate in self.slice_rates],
            "answers": _reasons(self.runs),
        }


def _sliced_runs(
    bench: Bench,
    endpoint: Endpoint,
    *,
    envs: dict[str, dict[str, str]],
    log_path: Path,
    slices: int,
    connections: int = 64,
    callers: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Sliced]:
    """The same load on several servers running at once (idle while another is measured), in
    `slices` turns of SLICE_SECONDS each, the order reversed every turn; each server's
    callers are the seeded users `callers[name]` gives (first, count), else all of them."""
    everyone = (bench.first_user, bench.users)

    def serve(name: str) -> Server:
        server = servers[name]
        bench.base_url = server.base_url
        bench.first_user, bench.users = (callers or {}).get(name, everyone)
        return server

    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(Server(env=env, workers=1, log_path=log_path))
            for name, env in envs.items()
        }
        for name in servers:
            serve(name)
            bench.warm_up(endpoint, connections)
        results = {name: Sliced() for name in servers}
        names = list(servers)
        for turn in range(slices):
            for name in names if turn % 2 == 0 else names[::-1]:
                server, result = serve(name), results[name]
                before = cpu.sample(server.pid)
                run = bench.timed_run(endpoint, connections, SLICE_SECONDS)
                after = cpu.sample(server.pid)
                result.cpu_seconds += after.server - before.server
                result.postgres_cpu_seconds += after.postgres - before.postgres
                result.requests += run.requests
                result.seconds += run.seconds
                result.slice_rates.append(run.requests_per_second)
                result.runs.append(run)
                result.p99_ms.append(run.p99_ms)
        progress(
            f"{endpoint.script}: "
            + ", ".join(
                f"{name} {result.requests / result.seconds:,.0f} req/s"
                for name, result in results.items()
            )
        )
    bench.first_user, bench.users = everyone
    return results


def _compare_observability(
    bench: Bench, *, env: dict[str, str], log_path: Path, slices: int
) -> dict[str, Any]:
    """Each call-control route on two servers started together, one with everything on and
    one with it off, in `slices` slices each that alternate between them (on, off, off, on,
    ...): the ratio is the requests the on server answered over the off server's in the same
    slices. Then the lookup on five servers at once, one per part alone (and none, and all),
    for each part's CPU per request."""
    off_env = {**env, **OBSERVABILITY_OFF}
    routes: dict[str, Any] = {}
    for endpoint in ENDPOINTS[1:]:
        runs = _sliced_runs(
            bench, endpoint, envs={"on": env, "off": off_env}, log_path=log_path, slices=slices
        )
        on, off = runs["on"], runs["off"]
        pairs = [a / b for a, b in zip(on.slice_rates, off.slice_rates, strict=True)]
        routes[endpoint.label] = {
            "on": on.summary(),
            "off": off.summary(),
            "ratio": (on.requests / on.seconds) / (off.requests / off.seconds),
            "slice_ratios": sorted(round(ratio, 3) for ratio in pairs),
        }
    parts = _sliced_runs(
        bench,
        LOOKUP,
        envs={name: {**off_env, **extra} for name, extra in OBSERVABILITY_PARTS.items()},
        log_path=log_path,
        slices=max(2, slices // 2),
    )
    return {
        "slice_seconds": SLICE_SECONDS,
        "routes": routes,
        "lookup_parts": {name: run.summary() for name, run in parts.items()},
    }


# The tenant's limits set so high that the benchmark's calls never reach them: every call is
# still classified and counted, none refused for its count.
LIMITS_UNREACHED = {"max_concurrent_calls": 1000, "max_calls_per_minute": 10_000}


def _compare_before(
    bench: Bench,
    *,
    env: dict[str, str],
    log_path: Path,
    slices: int,
    before: Path,
    admin_token: str,
) -> dict[str, Any]:
    """The authorization on a server of this checkout and one of another (`before`, on the
    same database, which this checkout migrated; each calling for its own half of the agents)
    started together, at each number of connections, in slices that alternate between them:
    the ratio is this checkout's requests over the other's in the same slices, so that the
    machine's drift falls on both alike. First with the tenant's outbound policy as seeded
    (the default: the benchmark never ends its calls, so its agents fill their slots and
    calls are refused), then with limits the calls never reach."""
    envs = {"this": env, "before": {**env, "PYTHONPATH": str(before.resolve())}}
    # Each server its own half of the agents: the other server's calls would be calls this
    # one's limits never counted.
    half = bench.users // 2
    callers = {"this": (1, half), "before": (half + 1, bench.users - half)}
    runs: dict[str, Any] = {}
    for policy in ("default", "unreached"):
        if policy == "unreached":
            with Server(env=env, workers=1, log_path=log_path) as server:
                body = json.dumps(LIMITS_UNREACHED).encode()
                status, _ = request_json(
                    "PATCH", f"{server.base_url}/v1/outbound-policy", token=admin_token, body=body
                )
                if status != 200:
                    raise RuntimeError(f"the outbound policy could not be changed: {status}")
        for connections in CONNECTIONS:
            sliced = _sliced_runs(
                bench,
                AUTHORIZE,
                envs=envs,
                log_path=log_path,
                slices=slices,
                connections=connections,
                callers=callers,
            )
            this, other = sliced["this"], sliced["before"]
            pairs = [a / b for a, b in zip(this.slice_rates, other.slice_rates, strict=True)]
            runs[f"{policy} {connections}"] = {
                "policy": policy,
                "connections": connections,
                "this": this.summary(),
                "before": other.summary(),
                "ratio": (this.requests / this.seconds) / (other.requests / other.seconds),
                "slice_ratios": sorted(round(ratio, 3) for ratio in pairs),
            }
    return {"slice_seconds": SLICE_SECONDS, "before": str(before), "authorization": runs}


def _print_before(compare: dict[str, Any]) -> None:
    print()
    print(
        f"| authorization against {compare['before']}, slices of {compare['slice_seconds']} s "
        "| connections "
        "| this: requests/s | before: requests/s | this / before "
        "| slices' this / before (min, median, max) | server CPU µs/request this / before "
        "| PostgreSQL CPU µs/request this / before |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    policies = {"default": "policy as seeded", "unreached": "limits never reached"}
    for run in compare["authorization"].values():
        this, other, ratios = run["this"], run["before"], run["slice_ratios"]
        print(
            f"| {policies[run['policy']]} | {run['connections']} "
            f"| {this['requests_per_second']:,.0f} | {other['requests_per_second']:,.0f} "
            f"| {run['ratio']:.2f} "
            f"| {ratios[0]:.2f}, {ratios[len(ratios) // 2]:.2f}, {ratios[-1]:.2f} "
            f"| {this['server_cpu_us_per_request']:,.0f} / "
            f"{other['server_cpu_us_per_request']:,.0f} "
            f"| {this['postgres_cpu_us_per_request']:,.0f} / "
            f"{other['postgres_cpu_us_per_request']:,.0f} |"
        )
    for run in compare["authorization"].values():
        answers = ", ".join(
            f"{reason} {count:,}" for reason, count in sorted(run["this"]["answers"].items())
        )
        label = f"{policies[run['policy']]}, {run['connections']} connections"
        print(f"This checkout's answers, {label}: {answers}")


def _print_observability(compare: dict[str, Any]) -> None:
    print()
    print(
        f"| 64 connections, slices of {compare['slice_seconds']} s | on: requests/s "
        "| off: requests/s | on / off | slices' on / off (min, median, max) | on: p99 ms "
        "| off: p99 ms | server CPU µs/request on / off |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for label, run in compare["routes"].items():
        on, off = run["on"], run["off"]
        verdict = "" if run["ratio"] >= OBSERVABILITY_TARGET else " (below 0.9)"
        pairs = run["slice_ratios"]
        print(
            f"| {label} | {on['requests_per_second']:,.0f} | {off['requests_per_second']:,.0f} "
            f"| {run['ratio']:.2f}{verdict} "
            f"| {pairs[0]:.2f}, {pairs[len(pairs) // 2]:.2f}, {pairs[-1]:.2f} "
            f"| {on['p99_ms']:.1f} | {off['p99_ms']:.1f} "
            f"| {on['server_cpu_us_per_request']:.0f} / {off['server_cpu_us_per_request']:.0f} |"
        )
    print()
    print("| registrar lookup, 64 connections, with | requests/s | server CPU µs/request | added |")
    print("|---|---:|---:|---:|")
    base = compare["lookup_parts"]["none"]["server_cpu_us_per_request"]
    for name, run in compare["lookup_parts"].items():
        cost = run["server_cpu_us_per_request"]
        added = "—" if name == "none" else f"{cost - base:+.0f}"
        print(f"| {name} | {run['requests_per_second']:,.0f} | {cost:.0f} | {added} |")


def _print_report(
    table: str,
    *,
    authorizations: dict[str, int],
    compare: dict[str, Any] | None,
    usage: UsageBook,
    totals: LedgerTotals,
    problems: list[str],
) -> None:
    print(table)
    print()
    answers = ", ".join(f"{reason} {count:,}" for reason, count in authorizations.items())
    print(f"Authorization answers in the measured runs: {answers}")
    if compare is not None:
        print()
        print(
            "| registrar lookup, 64 connections | requests/s | p50 ms | p99 ms "
            "| cores: server | PostgreSQL | other | machine busy |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name in ("one_worker", "two_workers"):
            run, used = compare[name], compare[name]["cpu"]
            print(
                f"| {name.replace('_', ' ')} | {run['requests_per_second']:,.0f} "
                f"| {run['p50_ms']:.1f} | {run['p99_ms']:.1f} | {used['server_cores']:.2f} "
                f"| {used['postgres_cores']:.2f} | {used['other_cores']:.2f} "
                f"| {used['machine_busy']:.0%} |"
            )
        verdict = "yes" if compare["ratio"] >= WORKERS_TARGET else "no"
        print(
            f"\n2 workers / 1 worker: {compare['ratio']:.2f} (target ≥ {WORKERS_TARGET}: {verdict})"
        )
    print()
    resent = usage.resent_recorded_before + usage.resent_recorded_now + usage.resent_failed
    print(
        f"Usage ledger: {usage.calls:,} reports acknowledged ({resent} unanswered when wrk "
        f"stopped, resent: {usage.resent_recorded_before} already recorded, "
        f"{usage.resent_recorded_now} recorded now); reported {usage.duration_seconds:,} s, "
        f"charged {usage.charged_seconds:,} s (increment {usage.increment} s); database: "
        f"{totals.calls:,} calls, {totals.charged_seconds:,} s charged, "
        f"{totals.used_seconds:,} s in monthly_usage."
    )
    print("FAIL: " + "; ".join(problems) if problems else "PASS: none lost, none doubled.")


def _benchmark(
    args: argparse.Namespace,
    *,
    wrk: str,
    env: dict[str, str],
    settings: Settings,
    log_path: Path,
    load_before: tuple[float, float, float],
) -> int:
    prepared = prepare(args.users, env=env, settings=settings)
    usage = UsageBook(increment=prepared.seeded.billing_increment_seconds)
    rows: list[tuple[Endpoint, WrkResult]] = []
    with Server(env=env, workers=1, log_path=log_path) as server:
        _check_seeded(
            server, prepared.seeded, token=prepared.token, admin_token=prepared.admin_token
        )
        bench = Bench(
            wrk=wrk,
            base_url=server.base_url,
            token=prepared.token,
            users=args.users,
            seconds=args.duration,
            warmup=args.warmup,
            usage=usage,
            # Calls of the last hour: charged to the current month.
            started_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds"),
        )
        for connections in CONNECTIONS:
            for endpoint in ENDPOINTS:
                rows.append((endpoint, bench.measure(endpoint, connections)))
    # After the server has stopped, so nothing is still being written.
    totals = asyncio.run(ledger_totals(settings))
    passed, problems = usage.check(totals)
    # What was checked: the comparisons below send more usage reports to the same book.
    usage = replace(usage)
    compare = None
    if args.workers_compare:
        asyncio.run(settle_database(args.database_url))
        compare = _compare_workers(bench, env=env, log_path=log_path)
    observability = None
    if args.observability_compare:
        asyncio.run(settle_database(args.database_url))
        observability = _compare_observability(
            bench, env=env, log_path=log_path, slices=args.slices
        )

    against_before = None
    if args.before is not None:
        asyncio.run(settle_database(args.database_url))
        against_before = _compare_before(
            bench,
            env=env,
            log_path=log_path,
            slices=args.slices,
            before=args.before,
            admin_token=prepared.admin_token,
        )

    table = markdown_table(rows)
    authorizations = _reasons([r for e, r in rows if e.script == "authorize"])
    _print_report(
        table,
        authorizations=authorizations,
        compare=compare,
        usage=usage,
        totals=totals,
        problems=problems,
    )
    if observability is not None:
        _print_observability(observability)
    if against_before is not None:
        _print_before(against_before)
    report = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "wrk": wrk_version(wrk),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "config": {
            "users": prepared.seeded.users,
            "limited_users": prepared.seeded.limited_users,
            "seed_seconds": round(prepared.seeded.seconds, 1),
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "wrk_threads": 1,
            "uvicorn_workers": 1,
        },
        "runs": [
            {"endpoint": e.label, **r.summary(), "ratio_to_bare": ratio_to_bare(r, rows)}
            for e, r in rows
        ],
        "authorization_answers": authorizations,
        "usage_check": {
            "passed": passed,
            "problems": problems,
            "reported": asdict(usage),
            "database": asdict(totals),
        },
        "workers_compare": compare,
        "observability_compare": observability,
        "before_compare": against_before,
        "markdown": table,
    }
    (RESULTS_DIR / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    progress(f"wrote {RESULTS_DIR / 'latest.json'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
