"""The installed `antring` script, run as an operator runs it (another process, another working
directory): migrate and the month rollover on SQLite and on a fresh PostgreSQL database, and
failures that are one line without a traceback or a secret."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from app.clock import utcnow
from app.db.session import Database
from app.quotas.models import MonthRollover
from app.quotas.periods import next_period, period_of
from app.tenants.models import Tenant
from tests.helpers.api import db_rows
from tests.helpers.ports import reserve_port
from tests.helpers.settings import TEST_SECRET_KEY, make_settings

ANTRING = Path(sys.executable).with_name("antring")
SECRET = "hunter2-my-real-secret"


def _postgres_server() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the PostgreSQL tests: set TEST_DATABASE_URL", pytrace=False)
    return None


async def _execute(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new database on TEST_DATABASE_URL's server."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'antring.db'}"
        return
    server = _postgres_server()
    if server is None:
        pytest.skip("PostgreSQL tests skipped: set TEST_DATABASE_URL=postgresql+asyncpg://...")
    name = f"antring_cli_{uuid.uuid4().hex[:12]}"
    admin = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    asyncio.run(_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def environment(database_url: str, **settings: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ANTRING_") and name != "DATABASE_URL"
    }
    return {**env, "DATABASE_URL": database_url, "ANTRING_SECRET_KEY": TEST_SECRET_KEY, **settings}


def antring(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert ANTRING.exists(), f"{ANTRING} is missing: install the package (make install)"
    return subprocess.run(
        [str(ANTRING), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def succeeds(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = antring(env, cwd, *args)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def fails(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Runs a command that must fail with exit code 2; returns the one line it said."""
    done = antring(env, cwd, *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    return line


async def _backdate(url: str, tenant_id: uuid.UUID, age: timedelta) -> None:
    db = Database(make_settings(url))
    try:
        async with db.session_scope() as session:
            await session.execute(
                update(Tenant).where(Tenant.id == tenant_id).values(created_at=utcnow() - age)
            )
    finally:
        await db.dispose()


async def _closed_months(url: str, tenant_id: uuid.UUID) -> list[str]:
    db = Database(make_settings(url))
    try:
        statement = select(MonthRollover.period).where(MonthRollover.tenant_id == tenant_id)
        return sorted(row.period for row in await db_rows(db, statement))
    finally:
        await db.dispose()


def test_migrate_then_close_finished_months(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url)
    assert "Running upgrade" in succeeds(env, tmp_path, "migrate")
    out = succeeds(env, tmp_path, "tenant", "create", "--name", "Acme", "--sip-domain", "a.test")
    tenant_id = uuid.UUID(out.strip())
    # A tenant made 75 days ago has two or three months behind it to close.
    asyncio.run(_backdate(database_url, tenant_id, timedelta(days=75)))
    now = utcnow()
    finished, month = [], period_of(now - timedelta(days=75), "Asia/Ho_Chi_Minh")
    while month < period_of(now, "Asia/Ho_Chi_Minh"):
        finished.append(month)
        month = next_period(month)

    closed = succeeds(env, tmp_path, "jobs", "run", "close-finished-months")

    assert closed == f"close-finished-months: {len(finished)}\n"
    assert asyncio.run(_closed_months(database_url, tenant_id)) == finished
    assert succeeds(env, tmp_path, "jobs", "run", "close-finished-months") == (
        "close-finished-months: 0\n"
    )


def test_version(tmp_path: Path) -> None:
    assert succeeds(os.environ.copy(), tmp_path, "--version") == f"antring {version('antring')}\n"


def test_a_production_secret_is_never_shown(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'antring.db'}"
    env = environment(url, ANTRING_ENVIRONMENT="production", ANTRING_SECRET_KEY=SECRET)

    done = antring(env, tmp_path, "migrate")

    assert done.returncode == 2
    assert done.stderr == (
        "error: invalid settings: ANTRING_SECRET_KEY must be set to a random value of at least "
        "32 characters in production\n"
    )
    assert SECRET not in done.stdout + done.stderr


def test_failures_are_one_line(tmp_path: Path) -> None:
    env = environment(f"sqlite+aiosqlite:///{tmp_path / 'antring.db'}")
    succeeds(env, tmp_path, "migrate")
    succeeds(env, tmp_path, "tenant", "create", "--name", "Acme", "--sip-domain", "acme.sip.test")
    unknown = str(uuid.uuid4())
    said = {
        ("tenant", "create", "--name", "Again", "--sip-domain", "acme.sip.test"): (
            "error: The SIP domain acme.sip.test belongs to another tenant."
        ),
        ("tenant", "create", "--name", "B", "--sip-domain", "b.test", "--timezone", "Mars/Base"): (
            "error: --timezone: Enter an IANA time zone such as Asia/Ho_Chi_Minh"
        ),
        (
            "api-key",
            "create",
            "--tenant",
            unknown,
            "--name",
            "ops",
        ): f"error: There is no tenant {unknown}.",
        ("api-key", "revoke", unknown): f"error: There is no API key {unknown}.",
    }

    assert {argv: fails(env, tmp_path, *argv) for argv in said} == said


@pytest.mark.parametrize("argv", [["migrate"], ["tenant", "list"]])
def test_a_database_that_cannot_be_opened(argv: list[str], tmp_path: Path) -> None:
    env = environment(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'antring.db'}")

    # aiosqlite's own thread may call back after the event loop closed: that must stay quiet,
    # every time.
    for _ in range(3):
        assert fails(env, tmp_path, *argv) == (
            "error: the database cannot be reached (OperationalError)"
        )


AGENTS_CSV = (
    "display_name,email,external_ref,extensions,devices,limit_minutes,outbound_allowed,"
    "auto_answer\r\n"
    "Nguyễn Thị Lan,lan@acme.vn,emp-1,101 102,lan.desk:ip_phone,600,true,false\r\n"
    "Trần Minh,,emp-2,103,minh.web:web,,false,true\r\n"
)


def test_users_import_and_export(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url)
    succeeds(env, tmp_path, "migrate")
    succeeds(env, tmp_path, "tenant", "create", "--name", "Acme", "--sip-domain", "a.test")
    agents = tmp_path / "agents.csv"
    agents.write_bytes(AGENTS_CSV.encode())

    checked = succeeds(env, tmp_path, "users", "import", str(agents), "--dry-run")
    assert checked == "dry run: would have created 2, updated 0, unchanged 0; nothing was changed\n"
    assert succeeds(env, tmp_path, "users", "export").count("\n") == 1

    imported = succeeds(env, tmp_path, "users", "import", str(agents)).splitlines()

    assert imported[0] == "created 2, updated 0, unchanged 0"
    devices = [line.split("\t") for line in imported[1:]]
    assert [(d[0], d[1], d[3], d[4]) for d in devices] == [
        ("2", "emp-1", "lan.desk", "ip_phone"),
        ("3", "emp-2", "minh.web", "web"),
    ]
    assert all(len(d[5]) == 20 for d in devices)
    assert succeeds(env, tmp_path, "users", "export") == AGENTS_CSV.replace("\r\n", "\n")
    exported = tmp_path / "exported.jsonl"
    succeeds(env, tmp_path, "users", "export", "--format", "jsonl", "--output", str(exported))
    assert exported.read_text(encoding="utf-8").count('"external_ref": "emp-') == 2
    assert not any(d[5] in exported.read_text(encoding="utf-8") for d in devices)


def test_users_import_of_a_bad_file_lists_its_problems_and_fails_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url)
    succeeds(env, tmp_path, "migrate")
    succeeds(env, tmp_path, "tenant", "create", "--name", "Acme", "--sip-domain", "a.test")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"display_name,extensions\r\nLan,12345\r\nMinh,113\r\n")

    for dry_run in (["--dry-run"], []):
        done = antring(env, tmp_path, "users", "import", str(bad), *dry_run)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stdout.splitlines() == [
            "2\textensions\t“12345”: Enter 2 to 4 digits.",
            "3\textensions\tExtension 113 could be mistaken for an emergency number (113, 114, or "
            "115).",
        ]
        assert len(done.stderr.splitlines()) == 1
    assert fails(env, tmp_path, "users", "import", str(bad)) == (
        "error: Problems in the file: 2, the first 2 listed in errors; nothing was imported."
    )
    assert fails(env, tmp_path, "users", "import", str(tmp_path / "missing.csv")) == (
        f"error: {tmp_path / 'missing.csv'}: cannot be read (No such file or directory)"
    )
    assert succeeds(env, tmp_path, "users", "export").count("\n") == 1


def _served_access_lines(env: dict[str, str], cwd: Path, *flags: str) -> list[str]:
    """Serves one request with `antring serve` (one worker) and returns its access lines."""
    port = reserve_port()
    server = subprocess.Popen(
        [str(ANTRING), "serve", "--host", "127.0.0.1", "--port", str(port), *flags],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        time.sleep(0.7)  # access lines are written every 0.5 s
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    return [line for line in output.splitlines() if "/health/live" in line]


def test_serve_writes_an_access_line_per_request_unless_told_not_to(tmp_path: Path) -> None:
    env = environment(f"sqlite+aiosqlite:///{tmp_path / 'served.db'}", ANTRING_BOOTSTRAP="false")
    succeeds(env, tmp_path, "migrate")
    assert len(_served_access_lines(env, tmp_path)) == 1
    assert _served_access_lines(env, tmp_path, "--no-access-log") == []
