"""What a signed-in person's token costs against an API key: the same requests with an admin's
API key and with an admin's access token from a real OpenID Connect provider (oidc-provider,
tests/idp; a JWT checked against the provider's keys, read once and cached), on one worker and
PostgreSQL. Two routes: the Users table's first page (an ORM route) and the registrar lookup (the
call-control hot path). Key and token take turns in interleaved rounds (key, token, token, key,
...), and each round reports the server's CPU per request (from /proc) and requests a second;
the figure is the median over rounds of token / key.

    .venv/bin/python -m bench.tokens [--rounds 4] [--seconds 5] [--users 3000]
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cpu
from bench.run import (
    DEFAULT_DATABASE_URL,
    SIP_DOMAIN,
    bench_settings,
    prepare,
    progress,
)
from bench.seed import USERNAME_PREFIX, drop_database, recreate_database, settle_database
from bench.server import Server, request_json, service_env
from bench.wrk import find_wrk, run_wrk
from tests.helpers.idp import IdentityProvider, require_provider

RESULTS = Path(__file__).resolve().parent / "results"
CONNECTIONS = 8
ROUTES = {"users_page": "Users table, first page of 50", "sip_account": "registrar lookup"}
# A token may add this much to a request's server CPU once the provider's keys are read.
TARGET = 1.10


def _measure(
    wrk: str, server: Server, script: str, credential: str, seconds: int, users: int
) -> dict[str, float]:
    env = {
        "BENCH_TOKEN": credential,
        "BENCH_DOMAIN": SIP_DOMAIN,
        "BENCH_USERS": str(users),
        "BENCH_USERNAME_PREFIX": USERNAME_PREFIX,
    }
    run_wrk(wrk, script, base_url=server.base_url, connections=CONNECTIONS, seconds=1, env=env)
    before = cpu.sample(server.pid)
    started = time.monotonic()
    result = run_wrk(
        wrk, script, base_url=server.base_url, connections=CONNECTIONS, seconds=seconds, env=env
    )
    after = cpu.sample(server.pid)
    elapsed = time.monotonic() - started
    if result.errors:
        raise RuntimeError(f"{script}: {result.errors} errors")
    return {
        "requests_per_second": result.requests_per_second,
        "cpu_us_per_request": (after.server - before.server) / result.requests * 1e6,
        "p99_ms": result.p99_ms,
        "seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.tokens", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="dropped and created again; its name must contain 'bench'",
    )
    args = parser.parse_args(argv)
    require_provider()
    wrk = find_wrk()
    url = args.database_url
    RESULTS.mkdir(exist_ok=True)
    asyncio.run(recreate_database(url))
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        route: {"key": [], "token": []} for route in ROUTES
    }
    try:
        with IdentityProvider(
            Path(tempfile.mkdtemp(prefix="antring-idp-")), access_token_ttl=3600
        ) as idp:
            env = {
                **service_env(url),
                "ANTRING_OIDC_ISSUER": idp.issuer,
                "ANTRING_OIDC_AUDIENCE": idp.audience,
            }
            prepared = prepare(args.users, env=env, settings=bench_settings(url))
            asyncio.run(settle_database(url))
            # An admin who signs in at the provider (authorization code with PKCE), as a
            # person at the console does; the token outlives the rounds.
            idp.add_account(
                "bench.admin",
                tenant_id=prepared.tenant_id,
                roles=["admin"],
                name="Benchmark Admin",
                email="bench.admin@callcenter.example",
            )
            token = idp.person_token("bench.admin")
            with Server(env=env, workers=1, log_path=RESULTS / "tokens-server.log") as server:
                credentials = {"key": prepared.admin_token, "token": token}
                for name, credential in credentials.items():
                    status, _ = request_json(
                        "GET", f"{server.base_url}/v1/users?limit=1", token=credential
                    )
                    if status != 200:
                        raise RuntimeError(f"the {name} is refused: {status}")
                for round_ in range(args.rounds):
                    order = ("key", "token") if round_ % 2 == 0 else ("token", "key")
                    for route in ROUTES:
                        for name in order:
                            measured = _measure(
                                wrk, server, route, credentials[name], args.seconds, args.users
                            )
                            runs[route][name].append(measured)
                            progress(
                                f"round {round_ + 1} {route} {name}: "
                                f"{measured['requests_per_second']:,.0f} req/s, "
                                f"{measured['cpu_us_per_request']:.0f} µs CPU"
                            )
    finally:
        asyncio.run(drop_database(url))
    report = _report(runs)
    (RESULTS / "tokens.json").write_text(json.dumps({"runs": runs, **report}, indent=2) + "\n")
    return 0


def _report(runs: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    print(
        f"| route ({CONNECTIONS} connections, 1 worker) | key req/s | token req/s "
        "| key CPU µs/req | token CPU µs/req | token / key CPU (median of rounds) | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    ratios: dict[str, float] = {}
    for route, label in ROUTES.items():
        keys, tokens = runs[route]["key"], runs[route]["token"]
        ratio = statistics.median(
            t["cpu_us_per_request"] / k["cpu_us_per_request"]
            for k, t in zip(keys, tokens, strict=True)
        )
        ratios[route] = ratio
        print(
            f"| {label} | {statistics.median(k['requests_per_second'] for k in keys):,.0f} "
            f"| {statistics.median(t['requests_per_second'] for t in tokens):,.0f} "
            f"| {statistics.median(k['cpu_us_per_request'] for k in keys):.0f} "
            f"| {statistics.median(t['cpu_us_per_request'] for t in tokens):.0f} "
            f"| {ratio:.3f} | ≤ {TARGET:.2f} {'✓' if ratio <= TARGET else '✗'} |"
        )
    return {"cpu_ratio_token_to_key": ratios}


if __name__ == "__main__":
    sys.exit(main())
