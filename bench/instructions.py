"""What each part of the observability costs one registrar lookup, in instructions: the server
runs under valgrind's callgrind, which counts the instructions the process executes (every
thread's, the access lines' flushing thread included; not the kernel's) while a fixed number
of lookups is answered. Instructions, unlike seconds, come out nearly the same whatever else
the machine is doing, so parts that cost a few per cent can be told apart here, where runs of
wrk move by ±10 %.

    .venv/bin/python -m bench.instructions [--requests 2000] [--rounds 2]

Needs valgrind (`apt-get install valgrind`). Creates and seeds its own database (dropped
afterwards), then for each part alone (request ids, access log, metrics), for all of them and
for none, starts `antring serve` under callgrind (one worker, as in production: JSON log lines
to a file), warms it up with 200 lookups, counts the instructions of `--requests` lookups sent
16 at a time, and prints a Markdown table. Each round runs the parts in turn, the next round in
the reverse order.
"""

import argparse
import asyncio
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

from bench.run import (
    OBSERVABILITY_OFF,
    OBSERVABILITY_PARTS,
    RESULTS_DIR,
    SIP_DOMAIN,
    bench_settings,
    prepare,
    progress,
)
from bench.seed import drop_database, recreate_database, settle_database, username
from bench.server import Server, service_env

DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/antring_bench_instructions"
CONCURRENCY = 16
WARM_UP = 200


def _lookups(base_url: str, token: str, *, count: int, users: int) -> None:
    """`count` registrar lookups of random seeded users, CONCURRENCY at a time."""

    async def send() -> None:
        async with httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
            limits=httpx.Limits(max_connections=CONCURRENCY),
        ) as client:
            left = count

            async def one_connection() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    name = username(random.randint(1, users))
                    answer = await client.get(
                        f"/v1/call-control/sip-accounts/{name}", params={"domain": SIP_DOMAIN}
                    )
                    if answer.status_code != 200:
                        raise RuntimeError(f"lookup of {name}: {answer.status_code}")

            await asyncio.gather(*(one_connection() for _ in range(CONCURRENCY)))

    asyncio.run(send())


def _counted(out_file: Path) -> int:
    """The instructions in callgrind's dump files (`totals:` of each)."""
    total = 0
    for dump in out_file.parent.glob(out_file.name + "*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                break
    return total


def _measure(
    env: dict[str, str], *, token: str, requests: int, users: int, work: Path, log_path: Path
) -> float:
    out_file = work / f"callgrind.{uuid.uuid4().hex}.out"
    wrapper = (
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
    )
    with Server(env=env, workers=1, log_path=log_path, wrapper=wrapper) as server:
        _lookups(server.base_url, token, count=WARM_UP, users=users)
        subprocess.run(["callgrind_control", "--instr=on", str(server.pid)], check=True)
        _lookups(server.base_url, token, count=requests, users=users)
        # Dumps what was counted since --instr=on; the dump at exit adds shutdown's little.
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], check=True)
        counted = _counted(out_file)
    return counted / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--database-url",
        default=DATABASE_URL,
        help="dropped and created again; its name must contain 'bench'",
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 2
    env = service_env(args.database_url)
    settings = bench_settings(args.database_url)
    RESULTS_DIR.mkdir(exist_ok=True)
    log_path = RESULTS_DIR / "instructions-server.log"
    log_path.unlink(missing_ok=True)
    progress(f"creating {args.database_url}")
    asyncio.run(recreate_database(args.database_url))
    try:
        token = prepare(args.users, env=env, settings=settings).token
        asyncio.run(settle_database(args.database_url))
        counts: dict[str, list[float]] = {name: [] for name in OBSERVABILITY_PARTS}
        names = list(OBSERVABILITY_PARTS)
        with tempfile.TemporaryDirectory(prefix="antring-callgrind-") as work:
            for round_ in range(args.rounds):
                for name in names if round_ % 2 == 0 else names[::-1]:
                    part_env = {**env, **OBSERVABILITY_OFF, **OBSERVABILITY_PARTS[name]}
                    progress(f"round {round_ + 1}: {name}")
                    counts[name].append(
                        _measure(
                            part_env,
                            token=token,
                            requests=args.requests,
                            users=args.users,
                            work=Path(work),
                            log_path=log_path,
                        )
                    )
    finally:
        asyncio.run(drop_database(args.database_url))
        progress("dropped the database")
    _print(counts, requests=args.requests)
    return 0


def _print(counts: dict[str, list[float]], *, requests: int) -> None:
    none = sum(counts["none"]) / len(counts["none"])
    print()
    print(
        f"| {requests:,} registrar lookups, 16 at a time | instructions per lookup "
        "(each round) | over none | share of the lookup |"
    )
    print("|---|---:|---:|---:|")
    for name, rounds in counts.items():
        mean = sum(rounds) / len(rounds)
        each = ", ".join(f"{r / 1000:,.0f} k" for r in rounds)
        over = "" if name == "none" else f"{(mean - none) / 1000:+,.0f} k"
        share = "" if name == "none" else f"{(mean - none) / none:+.1%}"
        print(f"| {name} | {each} | {over} | {share} |")


if __name__ == "__main__":
    sys.exit(main())
