"""A short schemathesis run against `antring serve` on SQLite and, when TEST_DATABASE_URL names
one, PostgreSQL (a fresh database of its own): any server error or response that breaks the
OpenAPI document fails it. Deterministic generation with bounded examples: the same cases
every run.

    .venv/bin/python -m tests.fuzz.run          (make fuzz)
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.server import ANTRING, Server, run_cli

MAX_EXAMPLES = 25
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


def _postgres_database(url: str) -> tuple[str, str]:
    """A fresh database beside the test one: (its URL, its name)."""
    name = f"antring_fuzz_{os.getpid()}"
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    _psql(admin.render_as_string(hide_password=False), f"CREATE DATABASE {name}")
    return make_url(url).set(database=name).render_as_string(hide_password=False), name


def _psql(url: str, statement: str) -> None:
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", statement], check=True)


def fuzz(database_url: str, workdir: Path) -> int:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ANTRING_SECRET_KEY": "fuzz-secret-key-0123456789-abcdefghijklmnop",
        "ANTRING_BOOTSTRAP": "false",
        "ANTRING_SCHEDULER_ENABLED": "false",
        # Schemathesis sends bad keys on purpose, all from 127.0.0.1.
        "ANTRING_AUTH_FAILURE_LIMIT": "1000000/minute",
    }
    run_cli(env, "migrate")
    tenant = run_cli(env, "tenant", "create", "--name", "Fuzz", "--sip-domain", "fuzz.sip.test")
    key = run_cli(env, "api-key", "create", "--platform", "--name", "fuzz")
    with Server(env=env, workers=1, log_path=workdir / "server.log") as server:
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "run",
                f"{server.base_url}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                str(MAX_EXAMPLES),
                "--generation-deterministic",
                # One worker: with two threads, hypothesis' ast.parse of schemathesis' lambdas
                # can hit CPython 3.11's "AST constructor recursion depth mismatch".
                "--workers",
                "1",
                "--no-color",
                "-H",
                f"Authorization: Bearer {key}",
                "-H",
                f"X-Tenant-ID: {tenant}",
            ],
            env=env,
            check=False,
        )
    if done.returncode != 0:
        print(f"server log: {workdir / 'server.log'}", file=sys.stderr)
    return done.returncode


def main() -> int:
    assert ANTRING.exists(), "run from the project's virtual environment"
    failed = 0
    with tempfile.TemporaryDirectory(prefix="antring-fuzz-") as tmp:
        workdir = Path(tmp)
        print("schemathesis on SQLite", flush=True)
        failed |= fuzz(f"sqlite+aiosqlite:///{workdir / 'fuzz.db'}", workdir)
        postgres = os.environ.get("TEST_DATABASE_URL")
        if postgres:
            url, name = _postgres_database(postgres)
            admin = make_url(postgres).set(drivername="postgresql", database="postgres")
            try:
                print("schemathesis on PostgreSQL", flush=True)
                failed |= fuzz(url, workdir)
            finally:
                _psql(
                    admin.render_as_string(hide_password=False),
                    f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                )
        elif os.environ.get("CI") == "true":
            print("CI must fuzz PostgreSQL too: set TEST_DATABASE_URL", file=sys.stderr)
            return 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
