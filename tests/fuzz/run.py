"""Schemathesis against `antring serve` on SQLite and, when TEST_DATABASE_URL names one,
PostgreSQL (a fresh database of its own), with every check (`--checks all`): its examples,
coverage and fuzzing phases, then its state machine over the document's links. The run first
makes, through the API, what the operations act on (tests/fuzz/seed.py), and schemathesis
passes those ids (tests/fuzz/schemathesis.toml), so that no operation stops at 404.

It fails on a server error, on any answer the document does not allow, on a request valid by
the document that is refused for a rule the document does not state (or invalid by it and
accepted), and on an operation that it never got past 404, that never served a valid request,
or whose generated data was mostly refused. tests/fuzz/hooks.py names the few findings that
depend on the clock or on what is stored, which a schema cannot state. Deterministic generation
with bounded examples: the same cases every run.

    .venv/bin/python -m tests.fuzz.run                  (make fuzz)
    .venv/bin/python -m tests.fuzz.run --max-examples 200 --only postgresql
    .venv/bin/python -m tests.fuzz.run -- --include-path-regex /provision   (st run's options)
"""

import argparse
import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench.server import ANTRING, Server, run_cli
from tests.fuzz.seed import SIP_DOMAIN, seed

MAX_EXAMPLES = 25
# The state machine's scenarios, per example of an operation.
STATEFUL_SCENARIOS = 4
HERE = Path(__file__).parent
# Operations the fuzz leaves out (schemathesis.toml disables them), and why.
NOT_FUZZED = {
    # Server-Sent Events: an answer that never ends, which no case could wait for. Tested over
    # real HTTP in tests/events/.
    "GET /v1/events/stream",
}
ROOT = HERE.parent.parent


@dataclass(frozen=True)
class Coverage:
    """What one run reached, from schemathesis' JSON report."""

    backend: str
    operations: int
    tested: int
    # Operations that answered a schema-valid request with success at least once.
    served: int
    unserved: list[str]
    cases: int
    failures: int
    dropped: int
    warnings: int
    seconds: float

    def line(self) -> str:
        return (
            f"{self.backend}: {self.tested}/{self.operations} operations tested, {self.served} "
            f"served a valid request, {self.cases} cases, {self.failures} failures, "
            f"{self.warnings} warnings ({self.dropped} refusals excused by name in "
            f"tests/fuzz/hooks.py), {self.seconds:.0f} s"
        )


def _postgres_database(url: str) -> tuple[str, str]:
    """A fresh database beside the test one: (its URL, its name)."""
    name = f"antring_fuzz_{os.getpid()}"
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    _psql(admin.render_as_string(hide_password=False), f"CREATE DATABASE {name}")
    return make_url(url).set(database=name).render_as_string(hide_password=False), name


def _psql(url: str, statement: str) -> None:
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", statement], check=True)


def _config(workdir: Path, values: dict[str, str]) -> Path:
    template = string.Template((HERE / "schemathesis.toml").read_text())
    path = workdir / "schemathesis.toml"
    # Every value is an id, a key or a name: nothing a TOML string would need escaped.
    path.write_text(template.substitute(values))
    return path


def _coverage(backend: str, report: Path, document: dict[str, Any]) -> Coverage:
    data = json.loads(report.read_text())
    served = {
        operation
        for operation, phases in data["valid_rates"].items()
        if any(rates["accepted"] for rates in phases.values())
    }
    operations = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if f"{method.upper()} {path}" not in NOT_FUZZED
    ]
    return Coverage(
        backend=backend,
        operations=int(data["operations"]["total"]),
        tested=int(data["operations"]["tested"]),
        served=len(served),
        unserved=[operation for operation in operations if operation not in served],
        cases=int(data["test_cases"]["generated"]),
        failures=int(data["test_cases"]["unique_failures"]),
        dropped=int(data["filtered"]),
        warnings=sum(len(labels) for labels in data["warnings"].values()),
        seconds=float(data["running_time"]),
    )


def fuzz(
    backend: str,
    database_url: str,
    workdir: Path,
    *,
    max_examples: int,
    st_options: list[str],
) -> int:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ANTRING_SECRET_KEY": "fuzz-secret-key-0123456789-abcdefghijklmnop",
        "ANTRING_BOOTSTRAP": "false",
        "ANTRING_SCHEDULER_ENABLED": "false",
        # Schemathesis sends bad keys on purpose, all from 127.0.0.1.
        "ANTRING_AUTH_FAILURE_LIMIT": "1000000/minute",
        # Webhooks to 127.0.0.1 (nothing answers there): the machine has no other network.
        "ANTRING_WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
        # A file of two rows or more is a job: both ways of an import are reached.
        "ANTRING_IMPORT_SYNC_MAX_ROWS": "1",
        # Acrobits codes are made too.
        "ANTRING_PROVISIONING_ACROBITS_CLOUD_ID": "fuzzcloud",
    }
    run_cli(env, "migrate")
    tenant = run_cli(env, "tenant", "create", "--name", "Fuzz", "--sip-domain", SIP_DOMAIN)
    key = run_cli(env, "api-key", "create", "--platform", "--name", "fuzz")
    log = workdir / f"server-{backend}.log"
    with Server(env=env, workers=1, log_path=log) as server:
        document = json.loads(
            urllib.request.urlopen(f"{server.base_url}/openapi.json", timeout=30).read()
        )
        seeded = seed(server.base_url, key=key, tenant_id=tenant)
        now = int(time.time())
        values = {
            **{name: str(value) for name, value in vars(seeded).items()},
            "api_key": key,
            "sip_domain": SIP_DOMAIN,
            "now": str(now),
            "tomorrow": str(now + 86400),
            "a_minute_ago": str(now - 60),
            "max_examples": str(max_examples),
            # Scenarios of the state machine: each is a few requests along the links.
            "stateful_examples": str(max_examples * STATEFUL_SCENARIOS),
        }
        config = _config(workdir, values)
        report = workdir / f"report-{backend}.json"
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "--config-file",
                str(config),
                "run",
                f"{server.base_url}/openapi.json",
                "--checks",
                "all",
                "--report",
                "json",
                "--report-json-path",
                str(report),
                *st_options,
            ],
            env={
                **env,
                **seeded.environment(),
                "FUZZ_BASE_URL": server.base_url,
                "FUZZ_API_KEY": key,
            },
            cwd=ROOT,
            check=False,
        )
    if not report.exists():
        return done.returncode or 1
    coverage = _coverage(backend, report, document)
    print(coverage.line(), flush=True)
    if coverage.unserved and not st_options:
        # Past 404 is not enough: each operation must have done its work at least once (in the
        # phases that generate its data; a run narrowed by options may not have them).
        print(f"never served a valid request: {', '.join(coverage.unserved)}", file=sys.stderr)
        return 1
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=MAX_EXAMPLES)
    parser.add_argument(
        "--only", choices=["sqlite", "postgresql"], help="fuzz one backend, not both"
    )
    parser.add_argument("st_options", nargs="*", help="more options of `st run`")
    args = parser.parse_args()
    assert ANTRING.exists(), "run from the project's virtual environment"
    failed = 0
    # Kept when the run fails: the servers' logs and schemathesis' reports are there.
    workdir = Path(tempfile.mkdtemp(prefix="antring-fuzz-"))
    try:
        if args.only != "postgresql":
            print("schemathesis on SQLite", flush=True)
            failed |= fuzz(
                "SQLite",
                f"sqlite+aiosqlite:///{workdir / 'fuzz.db'}",
                workdir,
                max_examples=args.max_examples,
                st_options=args.st_options,
            )
        postgres = os.environ.get("TEST_DATABASE_URL")
        if args.only == "sqlite":
            postgres = None
        elif postgres:
            url, name = _postgres_database(postgres)
            admin = make_url(postgres).set(drivername="postgresql", database="postgres")
            try:
                print("schemathesis on PostgreSQL", flush=True)
                failed |= fuzz(
                    "PostgreSQL",
                    url,
                    workdir,
                    max_examples=args.max_examples,
                    st_options=args.st_options,
                )
            finally:
                _psql(
                    admin.render_as_string(hide_password=False),
                    f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                )
        elif os.environ.get("CI") == "true" or args.only == "postgresql":
            print("PostgreSQL is fuzzed too in CI: set TEST_DATABASE_URL", file=sys.stderr)
            failed = 1
    except BaseException:
        failed = 1
        raise
    finally:
        if failed:
            print(f"logs and reports: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir)
    return failed


if __name__ == "__main__":
    sys.exit(main())
