"""Write routes and event delivery, for the outbox: PATCH toggles at 64 connections against a
server of this checkout and, with --baseline DIR, one of another checkout (the code before the
outbox) on the same database, in interleaved rounds (baseline, this, baseline, this, ...,
baseline); each round's ratio is this checkout against the mean of the baselines either side,
and the median of the rounds is the figure. With --deliveries, the events of 200 changes a
second (each user's outbound switch flipped once) delivered to a webhook receiver on 127.0.0.1
(a process of its own, so that the load does not delay what it notes): how many a second, and
the p50 and p99 from commit to delivery.
--before DIR measures another checkout of this code (the same code before a change) beside
this one, in the same rounds and the same deliveries run.

    .venv/bin/python -m bench.writes [--baseline DIR] [--before DIR] [--deliveries] [--rounds N]
"""

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp

from bench.run import DEFAULT_DATABASE_URL, bench_settings, prepare, progress
from bench.seed import drop_database, recreate_database, settle_database
from bench.server import Server
from bench.wrk import find_wrk, run_wrk

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "baseline"
THIS = "this checkout"
BEFORE = "before"
RATE = 200
_DELIVERY_RUNS = itertools.count()


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
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=base_url, headers=headers) as c:
        while True:
            async with c.get("/v1/users", params={"limit": 200, "offset": len(ids)}) as r:
                page = await r.json()
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
    """Notes when each delivery arrived, against the event's own time."""

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


def _receive(pipe: Connection) -> None:
    """The receiver's process: sends its port, then answers each "count" with how many arrived
    and "stop" with every delay."""

    async def serve() -> None:
        receiver = _Receiver()
        server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
        pipe.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        while (asked := await loop.run_in_executor(None, pipe.recv)) != "stop":
            pipe.send(len(receiver.delays) if asked == "count" else None)
        server.close()
        pipe.send(receiver.delays)

    asyncio.run(serve())


async def _deliveries(server: Server, token: str, ids: list[str], seconds: int) -> dict[str, Any]:
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    receiving = multiprocessing.get_context("spawn").Process(target=_receive, args=(theirs,))
    receiving.start()
    port = ours.recv()
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        base_url=server.base_url, headers=headers, connector=connector
    ) as c:
        async with c.post(
            "/v1/webhooks",
            json={"url": f"http://127.0.0.1:{port}/hook", "event_types": ["user.updated"]},
        ) as created:
            assert created.status == 201, await created.text()
            hook = await created.json()

        # Each user's outbound switch flipped once in the run (users start with it on, and
        # each run flips it back): every PATCH is a change, with its event. The toggles are
        # the lightest write route, so one worker takes the rate with room to deliver.
        body = {"outbound_allowed": next(_DELIVERY_RUNS) % 2 == 1}

        async def change(n: int) -> int:
            async with c.patch(f"/v1/users/{ids[n]}/toggles", json=body) as answer:
                return answer.status

        started = time.monotonic()
        pending: list[asyncio.Task[int]] = []
        while len(pending) < RATE * seconds:
            due = min(int((time.monotonic() - started) * RATE) + 1, RATE * seconds)
            pending += [asyncio.create_task(change(n)) for n in range(len(pending), due)]
            await asyncio.sleep(0.005)
        statuses = await asyncio.gather(*pending)
        changed = statuses.count(200)
        if changed < len(statuses):
            progress(f"{len(statuses) - changed} changes refused ({sorted(set(statuses))})")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ours.send("count")
            if ours.recv() >= changed:
                break
            await asyncio.sleep(0.1)
        ours.send("stop")
        delays = sorted(ours.recv())
        receiving.join()
        async with c.delete(f"/v1/webhooks/{hook['id']}"):
            pass
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


def _ratios(runs: list[tuple[str, dict[str, Any]]], name: str) -> list[float]:
    """Each run of `name` against the mean of the baseline runs before and after it."""
    ratios = []
    for i, (run, result) in enumerate(runs):
        if run != name:
            continue
        before = next(r for n, r in reversed(runs[:i]) if n == BASELINE)
        after = next(r for n, r in runs[i:] if n == BASELINE)
        base = (before["requests_per_second"] + after["requests_per_second"]) / 2
        ratios.append(result["requests_per_second"] / base)
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.writes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--baseline", type=Path, help="the checkout before the outbox")
    parser.add_argument("--before", type=Path, help="this code before a change, beside it")
    parser.add_argument("--deliveries", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="rounds against the baseline")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="dropped and created again; its name must contain 'bench'",
    )
    args = parser.parse_args(argv)
    if args.deliveries and args.users < RATE * args.duration:
        parser.error(
            f"--deliveries changes each user once: --users must be at least {RATE} times --duration"
        )
    wrk = find_wrk()
    url = args.database_url
    RESULTS.mkdir(exist_ok=True)
    asyncio.run(recreate_database(url))
    checkouts: dict[str, Path | None] = {THIS: None}
    if args.before:
        checkouts = {BEFORE: args.before, THIS: None}
    runs: list[tuple[str, dict[str, Any]]] = []
    deliveries: dict[str, dict[str, Any]] = {}
    try:
        token = prepare(args.users, env=_env(url, None), settings=bench_settings(url)).admin_token
        ids_file = Path(tempfile.mkstemp(prefix="antring-ids-")[1])
        log = RESULTS / "writes-server.log"
        order = list(checkouts.items())
        if args.baseline:
            order = [(BASELINE, args.baseline), *order] * args.rounds + [(BASELINE, args.baseline)]
        for name, code in order:
            asyncio.run(settle_database(url))
            with Server(env=_env(url, code), workers=1, log_path=log) as server:
                if not ids_file.stat().st_size:
                    ids_file.write_text("\n".join(asyncio.run(_user_ids(server.base_url, token))))
                runs.append((name, _toggles(wrk, server, token, ids_file, args.duration)))
        if args.deliveries:
            ids = ids_file.read_text().split()
            for name, code in checkouts.items():
                asyncio.run(settle_database(url))
                with Server(env=_env(url, code), workers=1, log_path=log) as server:
                    deliveries[name] = asyncio.run(_deliveries(server, token, ids, args.duration))
    finally:
        asyncio.run(drop_database(url))
    print("| PATCH …/toggles, 64 connections | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|")
    for name, r in runs:
        print(
            f"| {name} | {r['requests_per_second']:,.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['socket_errors'] + r['non_2xx']} |"
        )
    ratios = {name: _ratios(runs, name) for name in checkouts} if args.baseline else {}
    for name, found in ratios.items():
        rounds = ", ".join(f"{r:.2f}" for r in found)
        print(f"\n{name} / baseline: median {statistics.median(found):.2f} (rounds: {rounds})")
    if deliveries:
        print(f"\n| deliveries at {RATE} changes/s | delivered | per second | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|")
    for name, d in deliveries.items():
        print(
            f"| {name} | {d['delivered']:,} of {d['changes']:,} | {d['per_second']:.0f} "
            f"| {d['p50_s'] * 1000:.0f} | {d['p99_s'] * 1000:.0f} |"
        )
    report = {"runs": runs, "ratios": ratios, "deliveries": deliveries}
    (RESULTS / "writes.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
