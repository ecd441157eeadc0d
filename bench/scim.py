"""A directory's bulk re-sync by SCIM against the bulk import: 10,000 agents created by
`POST /scim/v2/Users` at 20 concurrent requests, and 10,000 agents imported from one CSV file
(`POST /v1/users/import`, the job polled to its end), on SQLite and on PostgreSQL: agents a
second each way and their ratio (the issue's target: SCIM at least 0.3 of the import's).

Both make the same agents (a name, an e-mail, an external reference and the default web device,
with their events and audit entries), through `antring serve` with one worker on a fresh
database (SQLite: a temporary file; PostgreSQL: `antring_bench_scim` on 127.0.0.1, made again
each time and dropped at the end), each into a tenant of its own.

    .venv/bin/python -m bench.scim [--agents 10000] [--concurrency 20] [--sqlite-only]
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.seed import drop_database, recreate_database
from bench.server import Server, run_cli, service_env

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/antring_bench_scim"
TARGET_RATIO = 0.3
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def scim_creates(
    base_url: str, key: str, *, agents: int, concurrency: int
) -> tuple[float, int]:
    """Agents a second made by SCIM creates, `concurrency` requests in flight, and how many
    were answered 503 (the database busy) and sent again after the Retry-After."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/scim+json"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(agents):
        queue.put_nowait(n)
    failures: list[str] = []
    retries: list[int] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                n = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = {
                "schemas": [USER],
                "userName": f"scim{n}@bench.test",
                "externalId": f"scim-{n:06d}",
                "displayName": f"Agent {n}",
                "emails": [{"value": f"scim{n}@bench.test", "primary": True}],
                "active": True,
            }
            while True:
                r = await client.post("/scim/v2/Users", content=json.dumps(body))
                if r.status_code != 503:
                    break
                # As a directory does: again after the Retry-After the service asked for.
                retries.append(n)
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            if r.status_code != 201:
                failures.append(f"{r.status_code} {r.text[:200]}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=60, limits=limits
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} creates failed, the first: {failures[0]}")
    return agents / elapsed, len(retries)


def import_file(agents: int) -> bytes:
    lines = ["display_name,email,external_ref"]
    lines += [f"Agent {n},imp{n}@bench.test,imp-{n:06d}" for n in range(agents)]
    return ("\r\n".join(lines) + "\r\n").encode()


def bulk_import(base_url: str, key: str, *, agents: int) -> float:
    """Agents a second made by one import of `agents` rows, from the upload to the job's end."""
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
    return agents / elapsed


def measure(
    database_url: str, workdir: Path, *, agents: int, concurrency: int
) -> tuple[float, float]:
    env = service_env(database_url)
    env["ANTRING_ACCESS_LOG"] = "false"
    run_cli(env, "migrate")
    keys = {}
    for name in ("Scim", "Import"):
        tenant_id = run_cli(
            env, "tenant", "create", "--name", name, "--sip-domain", f"{name.lower()}.bench.test"
        )
        role = "scim" if name == "Scim" else "admin"
        keys[name] = run_cli(
            env, "api-key", "create", "--tenant", tenant_id, "--role", role, "--name", "bench"
        )
    with Server(env=env, workers=1, log_path=workdir / "server.log") as server:
        scim, retried = asyncio.run(
            scim_creates(server.base_url, keys["Scim"], agents=agents, concurrency=concurrency)
        )
        imported = bulk_import(server.base_url, keys["Import"], agents=agents)
    return scim, retried, imported


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="antring-bench-scim-"))
    progress(f"SQLite: {args.agents} agents by SCIM, then by the import")
    sqlite_url = f"sqlite+aiosqlite:///{workdir / 'antring.db'}"
    rows.append(
        ("SQLite", *measure(sqlite_url, workdir, agents=args.agents, concurrency=args.concurrency))
    )
    if not args.sqlite_only:
        progress(f"PostgreSQL: {args.agents} agents by SCIM, then by the import")
        asyncio.run(recreate_database(POSTGRES_URL))
        try:
            rows.append(
                (
                    "PostgreSQL",
                    *measure(
                        POSTGRES_URL, workdir, agents=args.agents, concurrency=args.concurrency
                    ),
                )
            )
        finally:
            asyncio.run(drop_database(POSTGRES_URL))
    print(
        f"| backend | SCIM creates ({args.concurrency} concurrent), agents/s | "
        "503s retried | bulk import, agents/s | SCIM / import | target |"
    )
    print("|---|---:|---:|---:|---:|---|")
    met = True
    for backend, scim, retried, imported in rows:
        ratio = scim / imported
        met = met and ratio >= TARGET_RATIO
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(
            f"| {backend} | {scim:,.0f} | {retried} | {imported:,.0f} | {ratio:.2f} "
            f"| ≥ {TARGET_RATIO} {verdict} |"
        )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
