"""Write routes and event delivery, for the outbox: PATCH toggles at 64 connections against a
server of this checkout and, with --baseline DIR, one of another checkout (the code before the
outbox) on the same database, back to back; and, with --deliveries, the events of 200 changes
a second delivered to a webhook receiver on 127.0.0.1: how many a second, and the p99 from
commit to delivery.

    .venv/bin/python -m bench.writes [--baseline /path/to/other/checkout] [--deliveries]
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.run import DEFAULT_DATABASE_URL, SIP_DOMAIN, _settings, progress
from bench.seed import drop_database, recreate_database, seed_users
from bench.server import Server, run_cli
from bench.wrk import find_wrk, run_wrk

RESULTS = Path(__file__).resolve().parent / "results"


def _env(database_url: str, code: Path | None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ANTRING_BOOTSTRAP": "false",
        "ANTRING_SCHEDULER_ENABLED": "false",
        "ANTRING_LOG_LEVEL": "INFO",
        "ANTRING_LOG_FORMAT": "json",
        "ANTRING_WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
    }
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


async def _user_ids(base_url: str, token: str) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        while True:
            page = (await c.get("/v1/users", params={"limit": 200, "offset": len(ids)})).json()
            ids += [user["id"] for user in page["items"]]
            if len(ids) >= page["total"] or not page["items"]:
                return ids


def _toggles(wrk: str, server: Server, token: str, ids_file: Path, seconds: int) -> dict[str, Any]:
    env = {"BENCH_TOKEN": token, "BENCH_USER_IDS_FILE": str(ids_file)}
    run_wrk(wrk, "toggles", base_url=server.base_url, connections=64, seconds=2, env=env)
    result = run_wrk(
        wrk, "toggles", base_url=server.base_url, connections=64, seconds=seconds, env=env
    )
    progress(
        f"toggles: {result.requests_per_second:,.0f} req/s, p99 {result.p99_ms:.1f} ms, "
        f"{result.errors} errors"
    )
    return result.summary()


class _Receiver:
    """Counts deliveries and when each arrived, against the event's own time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                sent = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
                self.delays.append(time.time() - sent)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def _deliveries(server: Server, token: str, ids: list[str], seconds: int) -> dict[str, Any]:
    counter = _Receiver()
    receiving = await asyncio.start_server(counter.serve, "127.0.0.1", 0)
    port = receiving.sockets[0].getsockname()[1]
    headers = {"Authorization": f"Bearer {token}"}
    rate = 200
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as c:
        hook = await c.post(
            "/v1/webhooks",
            json={"url": f"http://127.0.0.1:{port}/hook", "event_types": ["user.updated"]},
        )
        assert hook.status_code == 201, hook.text
        started = time.monotonic()
        sent = 0
        pending: set[asyncio.Task[httpx.Response]] = set()
        while time.monotonic() - started < seconds:
            due = int((time.monotonic() - started) * rate)
            while sent < due:
                # A new name each time: every PATCH is a change, with its event.
                body = {"display_name": f"Agent {sent}"}
                path = f"/v1/users/{ids[sent % len(ids)]}"
                pending.add(asyncio.create_task(c.patch(path, json=body)))
                sent += 1
            await asyncio.sleep(0.005)
        answers = await asyncio.gather(*pending)
    changed = sum(1 for a in answers if a.status_code == 200)
    deadline = time.monotonic() + 30
    while len(counter.delays) < changed and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    receiving.close()
    delays = sorted(counter.delays)
    p99 = delays[int(len(delays) * 0.99) - 1] if delays else float("nan")
    summary = {
        "changes": changed,
        "delivered": len(delays),
        "per_second": len(delays) / seconds,
        "p50_s": delays[len(delays) // 2] if delays else float("nan"),
        "p99_s": p99,
    }
    progress(f"deliveries: {summary}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.writes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--deliveries", action="store_true")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args(argv)
    wrk = find_wrk()
    url = DEFAULT_DATABASE_URL
    RESULTS.mkdir(exist_ok=True)
    asyncio.run(recreate_database(url))
    report: dict[str, Any] = {}
    try:
        env = _env(url, None)
        run_cli(env, "migrate")
        tenant = run_cli(env, "tenant", "create", "--name", "Writes", "--sip-domain", SIP_DOMAIN)
        token = run_cli(
            env, "api-key", "create", "--tenant", tenant, "--role", "admin", "--name", "w"
        )
        asyncio.run(seed_users(_settings(url), tenant_id=uuid.UUID(tenant), count=args.users))
        ids_file = Path(tempfile.mkstemp(prefix="antring-ids-")[1])
        log = RESULTS / "writes-server.log"
        runs = [("this checkout", None)]
        if args.baseline:
            runs = [
                ("baseline", args.baseline),
                ("this checkout", None),
                ("baseline again", args.baseline),
            ]
        for name, code in runs:
            with Server(env=_env(url, code), workers=1, log_path=log) as server:
                if not ids_file.stat().st_size:
                    ids_file.write_text("\n".join(asyncio.run(_user_ids(server.base_url, token))))
                report[name] = _toggles(wrk, server, token, ids_file, args.duration)
        if args.deliveries:
            with Server(env=_env(url, None), workers=1, log_path=log) as server:
                ids = ids_file.read_text().split()
                report["deliveries"] = asyncio.run(_deliveries(server, token, ids, args.duration))
    finally:
        asyncio.run(drop_database(url))
    print("| PATCH …/toggles, 64 connections | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|")
    for name in ("baseline", "this checkout", "baseline again"):
        if name in report:
            r = report[name]
            print(
                f"| {name} | {r['requests_per_second']:,.0f} | {r['p50_ms']:.1f} "
                f"| {r['p99_ms']:.1f} | {r['socket_errors'] + r['non_2xx']} |"
            )
    if "baseline" in report:
        base = (
            report["baseline"]["requests_per_second"]
            + report["baseline again"]["requests_per_second"]
        ) / 2
        ratio = report["this checkout"]["requests_per_second"] / base
        print(f"\nthis checkout / baseline: {ratio:.2f}")
    if "deliveries" in report:
        d = report["deliveries"]
        print(
            f"\nDeliveries: {d['delivered']:,} of {d['changes']:,} changes at 200/s, "
            f"{d['per_second']:.0f}/s; commit to delivery p50 {d['p50_s'] * 1000:.0f} ms, "
            f"p99 {d['p99_s'] * 1000:.0f} ms"
        )
    (RESULTS / "writes.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
