"""The Users table as the console reads it, on 10,000 agents with Vietnamese names: its first
page (50 rows, by name) and a search for a name as an operator types it, with wrk at 8
connections against a server of this checkout and, with --before DIR, one of another checkout
(the code before a change) in interleaved rounds. Each server has a database of its own,
migrated by its own code and filled through its own import (its own write path); the figures
are each round's requests a second and p99, and this checkout's requests a second against the
other's, the median of the rounds.

    .venv/bin/python -m bench.users_table [--before DIR] [--users 10000] [--rounds 3]
"""

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench.run import DEFAULT_DATABASE_URL, progress
from bench.seed import drop_database, recreate_database, settle_database
from bench.server import Server, request_json, run_cli, service_env
from bench.wrk import find_wrk, run_wrk

RESULTS = Path(__file__).resolve().parent / "results"
THIS = "this checkout"
BEFORE = "before"
SIP_DOMAIN = "users.bench.sip.test"
CONNECTIONS = 8
# What an operator types: a family and a middle name, with their accents.
SEARCH = "Nguyễn Văn"
READS = {
    "first page": "/v1/users?limit=50",
    f"search {SEARCH!r}": "/v1/users?" + urllib.parse.urlencode({"search": SEARCH, "limit": 50}),
}

_FAMILY = (
    ["Nguyễn"] * 8
    + ["Trần"] * 3
    + ["Lê"] * 2
    + [
        "Phạm",
        "Hoàng",
        "Huỳnh",
        "Phan",
        "Vũ",
        "Võ",
        "Đặng",
        "Bùi",
        "Đỗ",
        "Hồ",
        "Ngô",
        "Dương",
        "Lý",
    ]
)
_MIDDLE = ["Văn", "Thị", "Minh", "Quốc", "Thu", "Ngọc", "Hữu", "Đức", "Thanh", "Bảo"]
_GIVEN = [
    "An",
    "Anh",
    "Bình",
    "Châu",
    "Dũng",
    "Dung",
    "Đạt",
    "Giang",
    "Hà",
    "Hải",
    "Hiếu",
    "Hoa",
    "Hùng",
    "Hương",
    "Khánh",
    "Lan",
    "Linh",
    "Long",
    "Mai",
    "Nam",
    "Ngân",
    "Nhung",
    "Phúc",
    "Quân",
    "Sơn",
    "Tâm",
    "Thảo",
    "Trang",
    "Tuấn",
    "Việt",
    "Yến",
]


def agents_csv(count: int) -> bytes:
    """`count` agents with Vietnamese names (the same every run), half with an email, the first
    7,000 with an extension; each gets the default web device the import gives."""
    rng = random.Random(30)
    lines = ["display_name,email,external_ref,extensions"]
    for index in range(count):
        name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
        email = f"agent{index:05d}@acme.vn" if index % 2 == 0 else ""
        extension = str(2000 + index) if index < 7000 else ""
        lines.append(f"{name},{email},emp-{index:05d},{extension}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _import(base_url: str, token: str, body: bytes) -> None:
    request = urllib.request.Request(
        f"{base_url}/v1/users/import",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        status, location = response.status, response.headers.get("Location")
        report = json.loads(response.read())
    if status == 202:
        # A larger file runs as a job: its report comes once it has ended.
        while True:
            time.sleep(1)
            status, job = request_json("GET", f"{base_url}{location}", token=token)
            assert status == 200 and isinstance(job, dict), job
            if job["status"] in ("succeeded", "failed"):
                assert job["status"] == "succeeded", job
                report = job["report"]
                break
    assert report["problems_total"] == 0, report["problems"][:3]


def _database(base: str, label: str) -> str:
    url = make_url(base)
    name = f"{url.database}_users_{'this' if label == THIS else 'before'}"
    return url.set(database=name).render_as_string(hide_password=False)


def _serve(
    stack: contextlib.ExitStack, label: str, code: Path | None, database_url: str, body: bytes
) -> tuple[Server, str]:
    env = service_env(database_url)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    asyncio.run(recreate_database(database_url))
    stack.callback(lambda: asyncio.run(drop_database(database_url)))
    run_cli(env, "migrate")
    tenant = run_cli(env, "tenant", "create", "--name", "Users", "--sip-domain", SIP_DOMAIN)
    token = run_cli(env, "api-key", "create", "--tenant", tenant, "--role", "admin", "--name", "b")
    logs = Path(tempfile.mkdtemp(prefix="antring-users-table-"))
    server = stack.enter_context(Server(env=env, workers=1, log_path=logs / "server.log"))
    started = time.monotonic()
    _import(server.base_url, token, body)
    progress(f"{label}: imported in {time.monotonic() - started:.1f} s")
    asyncio.run(settle_database(database_url))
    return server, token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.users_table")
    parser.add_argument("--before", type=Path, help="another checkout, measured beside this one")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    wrk = find_wrk()
    body = agents_csv(args.users)
    codes: dict[str, Path | None] = {THIS: None}
    if args.before is not None:
        codes = {BEFORE: args.before.resolve(), THIS: None}
    rounds: dict[str, dict[str, list[dict[str, Any]]]] = {
        read: {label: [] for label in codes} for read in READS
    }
    with contextlib.ExitStack() as stack:
        servers = {
            label: _serve(stack, label, code, _database(args.database_url, label), body)
            for label, code in codes.items()
        }
        for label, (server, token) in servers.items():
            search = READS[f"search {SEARCH!r}"]
            status, page = request_json("GET", server.base_url + search, token=token)
            assert status == 200 and isinstance(page, dict)
            progress(f"{label}: the search finds {page['total']:,} agents")
        for number in range(args.rounds):
            for read, path in READS.items():
                for label, (server, token) in servers.items():
                    env = {"BENCH_TOKEN": token, "BENCH_PATH": path}
                    run_wrk(
                        wrk,
                        "users_table",
                        base_url=server.base_url,
                        connections=CONNECTIONS,
                        seconds=2,
                        env=env,
                    )
                    result = run_wrk(
                        wrk,
                        "users_table",
                        base_url=server.base_url,
                        connections=CONNECTIONS,
                        seconds=args.seconds,
                        env=env,
                    )
                    assert result.errors == 0, result.summary()
                    rounds[read][label].append(result.summary())
                    progress(
                        f"round {number + 1} {read} {label}: "
                        f"{result.requests_per_second:,.0f} req/s, p99 {result.p99_ms:.1f} ms"
                    )
    _report(rounds, args.users)
    return 0


def _report(rounds: dict[str, dict[str, list[dict[str, Any]]]], users: int) -> None:
    lines = [
        f"Users table on {users:,} agents, {CONNECTIONS} connections, one worker, PostgreSQL",
        "",
        "| read | code | req/s (each round) | p99 ms (each round) | req/s vs before (median) |",
        "| --- | --- | --- | --- | --- |",
    ]
    results: dict[str, Any] = {}
    for read, by_label in rounds.items():
        for label, runs in by_label.items():
            rps = [run["requests_per_second"] for run in runs]
            p99 = [run["p99_ms"] for run in runs]
            ratio = ""
            if label == THIS and BEFORE in by_label:
                before = [run["requests_per_second"] for run in by_label[BEFORE]]
                ratio = f"{statistics.median(a / b for a, b in zip(rps, before, strict=True)):.2f}"
            lines.append(
                f"| {read} | {label} | {', '.join(f'{r:,.0f}' for r in rps)} | "
                f"{', '.join(f'{p:.1f}' for p in p99)} | {ratio} |"
            )
        results[read] = by_label
    print("\n".join(lines))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "users_table.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
