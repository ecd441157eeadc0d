"""A directory's bulk re-sync by SCIM against the bulk import: 10,000 agents created by single
`POST /scim/v2/Users` requests at 20 concurrent requests, 10,000 by `POST /scim/v2/Bulk`
(100 creates a request, 4 requests in flight), and 10,000 imported from one CSV file
(`POST /v1/users/import`, the job polled to its end), on SQLite and on PostgreSQL: agents a
second each way, the server's CPU time an agent, and each SCIM way's ratio to the import (the
issue's target: SCIM at least 0.3 of the import's agents a second).

All three make the same agents (a name, an e-mail, an external reference and the default web
device, with their events and audit entries), through `antring serve` with one worker on a
fresh database (SQLite: a temporary file; PostgreSQL: `antring_bench_scim` on 127.0.0.1, made
again for each code and dropped at the end), each into a tenant of its own. With `--before
DIR`, another checkout (the code before a change) is measured first the same way, beside this
one; a checkout without /Bulk is measured without it.

    .venv/bin/python -m bench.scim [--before DIR] [--agents 10000] [--concurrency 20]
        [--bulk-size 100] [--bulk-concurrency 4] [--sqlite-only]
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.cpu import seconds_of
from bench.seed import drop_database, recreate_database
from bench.server import Server, run_cli, service_env

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/antring_bench_scim"
TARGET_RATIO = 0.3
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SCIM = "application/scim+json"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def scim_user(prefix: str, n: int) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": f"{prefix}{n}@bench.test",
        "externalId": f"{prefix}-{n:06d}",
        "displayName": f"Agent {n}",
        "emails": [{"value": f"{prefix}{n}@bench.test", "primary": True}],
        "active": True,
    }


@dataclass(frozen=True, slots=True)
class Rate:
    """How one way made its agents: agents a second, the server's CPU milliseconds an agent,
    and the requests answered 503 (the database busy) and sent again after the Retry-After."""

    agents_per_second: float
    cpu_ms: float
    retried: int = 0


async def _in_flight(
    base_url: str, key: str, *, bodies: list[bytes], path: str, concurrency: int, check: Any
) -> tuple[float, int]:
    """Sends the bodies, `concurrency` requests in flight; seconds taken, and 503s retried."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": SCIM}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    failures: list[str] = []
    retried: list[int] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            while True:
                r = await client.post(path, content=body)
                if r.status_code != 503:
                    break
                # As a directory does: again after the Retry-After the service asked for.
                retried.append(1)
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            problem = check(r)
            if problem:
                failures.append(problem)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=120, limits=limits
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, the first: {failures[0]}")
    return elapsed, len(retried)


async def scim_creates(
    base_url: str, key: str, *, agents: int, concurrency: int
) -> tuple[float, int]:
    """One `POST /Users` an agent: seconds taken, and 503s retried."""
    bodies = [json.dumps(scim_user("scim", n)).encode() for n in range(agents)]

    def check(r: httpx.Response) -> str | None:
        return None if r.status_code == 201 else f"{r.status_code} {r.text[:200]}"

    return await _in_flight(
        base_url, key, bodies=bodies, path="/scim/v2/Users", concurrency=concurrency, check=check
    )


async def scim_bulk(
    base_url: str, key: str, *, agents: int, size: int, concurrency: int
) -> tuple[float, int]:
    """`POST /Bulk` with `size` creates a request: seconds taken, and 503s retried (a retried
    request's creates answer 200: the agents its first attempt made, if it made any)."""
    bodies = []
    for start in range(0, agents, size):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"b{n}", "data": scim_user("bulk", n)}
            for n in range(start, min(start + size, agents))
        ]
        bodies.append(json.dumps({"schemas": [BULK_REQUEST], "Operations": operations}).encode())

    def check(r: httpx.Response) -> str | None:
        if r.status_code != 200:
            return f"{r.status_code} {r.text[:200]}"
        failed = [o for o in r.json()["Operations"] if o["status"] not in ("201", "200")]
        return f"{failed[0]}" if failed else None

    return await _in_flight(
        base_url, key, bodies=bodies, path="/scim/v2/Bulk", concurrency=concurrency, check=check
    )


def import_file(agents: int) -> bytes:
    lines = ["display_name,email,external_ref"]
    lines += [f"Agent {n},imp{n}@bench.test,imp-{n:06d}" for n in range(agents)]
    return ("\r\n".join(lines) + "\r\n").encode()


def bulk_import(base_url: str, key: str, *, agents: int) -> float:
    """Seconds one import of `agents` rows takes, from the upload to the job's end."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/csv"}
    body = import_file(agents)
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        started = time.perf_counter()
        r = client.post("/v1/users/import", content=body)
        if r.status_code == 202:
            location = r.headers["Location"]
            while True:
                job = client.get(location).json()
                if job["status"] in ("succeeded", "failed"):
                    break
                time.sleep(0.05)
            if job["status"] != "succeeded":
                raise RuntimeError(f"the import failed: {job['detail']}")
        elif r.status_code != 200:
            raise RuntimeError(f"the import answered {r.status_code}: {r.text[:300]}")
        elapsed = time.perf_counter() - started
    return elapsed


def _serves_bulk(base_url: str, key: str) -> bool:
    r = httpx.get(
        f"{base_url}/scim/v2/ServiceProviderConfig", headers={"Authorization": f"Bearer {key}"}
    )
    return bool(r.json().get("bulk", {}).get("supported"))


async def _rate(
    server: Server, agents: int, make: Callable[[], Awaitable[tuple[float, int]]]
) -> Rate:
    cpu_before = seconds_of(server.pid)[0]
    elapsed, retried = await make()
    cpu = seconds_of(server.pid)[0] - cpu_before
    return Rate(agents / elapsed, cpu / agents * 1000, retried)


def measure(
    database_url: str, workdir: Path, code: Path | None, args: argparse.Namespace
) -> dict[str, Rate]:
    """Each way's rate with the code of `code` (None: this checkout)."""
    env = service_env(database_url)
    env["ANTRING_ACCESS_LOG"] = "false"
    if code is not None:
        env["PYTHONPATH"] = str(code)
    run_cli(env, "migrate")
    keys = {}
    for name in ("Scim", "Bulk", "Import"):
        tenant_id = run_cli(
            env, "tenant", "create", "--name", name, "--sip-domain", f"{name.lower()}.bench.test"
        )
        role = "admin" if name == "Import" else "scim"
        keys[name] = run_cli(
            env, "api-key", "create", "--tenant", tenant_id, "--role", role, "--name", "bench"
        )
    rates = {}
    agents = args.agents
    with Server(env=env, workers=1, log_path=workdir / "server.log") as server:
        url = server.base_url
        rates["creates"] = asyncio.run(
            _rate(
                server,
                agents,
                lambda: scim_creates(
                    url, keys["Scim"], agents=agents, concurrency=args.concurrency
                ),
            )
        )
        progress(f"  SCIM creates: {rates['creates'].agents_per_second:,.0f} agents/s")
        if _serves_bulk(url, keys["Bulk"]):
            rates["bulk"] = asyncio.run(
                _rate(
                    server,
                    agents,
                    lambda: scim_bulk(
                        url,
                        keys["Bulk"],
                        agents=agents,
                        size=args.bulk_size,
                        concurrency=args.bulk_concurrency,
                    ),
                )
            )
            progress(f"  SCIM Bulk: {rates['bulk'].agents_per_second:,.0f} agents/s")

        async def imported() -> tuple[float, int]:
            return bulk_import(url, keys["Import"], agents=agents), 0

        rates["import"] = asyncio.run(_rate(server, agents, imported))
        progress(f"  import: {rates['import'].agents_per_second:,.0f} agents/s")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout, measured beside this one")
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--bulk-size", type=int, default=100)
    parser.add_argument("--bulk-concurrency", type=int, default=4)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    codes: dict[str, Path | None] = {"this": None}
    if args.before is not None:
        codes = {"before": args.before.resolve(), "this": None}
    rows: list[tuple[str, str, dict[str, Rate]]] = []
    for backend in ("SQLite", "PostgreSQL")[: 1 if args.sqlite_only else 2]:
        for label, code in codes.items():
            progress(f"{backend}, {label}: {args.agents} agents each way")
            workdir = Path(tempfile.mkdtemp(prefix="antring-bench-scim-"))
            if backend == "SQLite":
                rates = measure(
                    f"sqlite+aiosqlite:///{workdir / 'antring.db'}", workdir, code, args
                )
            else:
                asyncio.run(recreate_database(POSTGRES_URL))
                try:
                    rates = measure(POSTGRES_URL, workdir, code, args)
                finally:
                    asyncio.run(drop_database(POSTGRES_URL))
            rows.append((backend, label, rates))
    ways = {
        "creates": f"SCIM creates, {args.concurrency} concurrent",
        "bulk": f"SCIM Bulk, {args.bulk_size} a request, {args.bulk_concurrency} concurrent",
        "import": "bulk import",
    }
    print(
        "| backend | code | how | agents/s | server CPU ms an agent | 503s retried "
        f"| / import | target ≥ {TARGET_RATIO} |"
    )
    print("|---|---|---|---:|---:|---:|---:|---|")
    met = True
    for backend, label, rates in rows:
        imported = rates["import"].agents_per_second
        for way, title in ways.items():
            rate = rates.get(way)
            if rate is None:
                continue
            ratio = rate.agents_per_second / imported
            verdict = ""
            if way != "import":
                verdict = "met" if ratio >= TARGET_RATIO else "missed"
            if label == "this" and way == "bulk":
                met = met and ratio >= TARGET_RATIO
            print(
                f"| {backend} | {label} | {title} | {rate.agents_per_second:,.0f} "
                f"| {rate.cpu_ms:.1f} | {rate.retried} | {ratio:.2f} | {verdict} |"
            )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
