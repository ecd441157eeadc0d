"""A call center onboarded at once: 10,000 agents, each with a device and an extension, imported
from one CSV file on SQLite and on PostgreSQL, against writing the same rows (users, devices,
extensions, their events and audit entries) with plain SQLAlchemy Core INSERTs in the same run:
rows per second, the ratio (the database's own floor is 1.0), and the import's peak memory.

Each measurement runs in a process of its own on a fresh database (SQLite: a temporary file;
PostgreSQL: `antring_bench_import` on 127.0.0.1, made again each time and dropped at the end);
like the served app once started, the process freezes what start-up built out of the garbage
collector's way. The Core floor is timed on its statements alone (its rows are made
beforehand), as the better of executemany and SQLAlchemy's multi-row VALUES (insertmanyvalues).

    .venv/bin/python -m bench.imports [--rows 10000] [--sqlite-only]
"""

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from alembic import command
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from app.cli import alembic_config
from app.clock import utcnow
from app.crypto import PasswordCipher, generate_password
from app.db.session import Database
from app.devices.models import Device
from app.devices.service import stored_secrets
from app.dialing import shadows_emergency
from app.extensions.models import Extension
from app.imports.formats import COLUMNS, FileFormat
from app.imports.importer import count_rows, import_users
from app.outbox.models import AuditEntry, Event
from app.settings import Settings
from app.tenants.models import DEFAULT_EMERGENCY_NUMBERS
from app.tenants.schemas import TenantCreate
from app.tenants.service import create_tenant, get_tenant
from app.user_record.models import User
from bench.seed import drop_database, recreate_database

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/antring_bench_import"
SECRET_KEY = "bench-import-secret-key-0123456789-abcdef"
TARGET_RATIO = 0.5
TARGET_PEAK_MB = 200
_BATCH = 500


def extension_numbers(emergency_numbers: list[str]) -> Iterator[str]:
    """Every number an extension may have, 4 digits first."""
    for digits in (4, 3, 2):
        for value in range(10**digits):
            number = f"{value:0{digits}d}"
            if not shadows_emergency(number, emergency_numbers):
                yield number


def agents_csv(count: int, out: IO[bytes]) -> None:
    """`count` agents as a spreadsheet would save them: each with an external reference, an
    email, one softphone, one extension; one in ten with a monthly limit, one in four
    answering by itself. Ordered as the export orders them (by external reference)."""
    numbers = extension_numbers(DEFAULT_EMERGENCY_NUMBERS)
    out.write((",".join(COLUMNS) + "\r\n").encode())
    for i in range(count):
        limit = "600" if i % 10 == 0 else ""
        auto_answer = "true" if i % 4 == 0 else "false"
        line = (
            f"Agent {i:05d},agent{i:05d}@acme.vn,emp-{i:05d},{next(numbers)},"
            f"agent-{i:05d}:softphone,{limit},true,{auto_answer}\r\n"
        )
        out.write(line.encode())


def _settings(url: str) -> Settings:
    return Settings(database_url=url, secret_key=SECRET_KEY, bootstrap=False)


async def _fresh(url: str) -> uuid.UUID:
    """A migrated, empty database with one tenant; returns the tenant's id."""
    if url.startswith("postgresql"):
        await recreate_database(url)
    else:
        database = Path(make_url(url).database or "")
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            path.unlink(missing_ok=True)
    config = alembic_config(url)
    config.attributes["configure_logging"] = False
    await asyncio.to_thread(command.upgrade, config, "head")
    db = Database(_settings(url))
    try:
        async with db.session_scope() as session:
            tenant = await create_tenant(
                session, data=TenantCreate(name="Bench", sip_domain="import.bench.test")
            )
        return tenant.id
    finally:
        await db.dispose()


async def _import(url: str, tenant_id: uuid.UUID, path: Path) -> dict[str, Any]:
    db = Database(_settings(url))
    cipher = PasswordCipher(SECRET_KEY)
    # As the served app does once started (app.main): what start-up built is not walked by
    # every full pass of the garbage collector.
    gc.freeze()
    try:
        baseline = _peak_mb()
        started = time.perf_counter()
        with path.open("rb") as source:
            rows = count_rows(source, FileFormat.csv)
            async with db.session_scope() as session:
                tenant = await get_tenant(session, tenant_id=tenant_id)
                report = await import_users(
                    session,
                    cipher,
                    tenant=tenant,
                    source=source,
                    file_format=FileFormat.csv,
                    dry_run=False,
                )
        seconds = time.perf_counter() - started
        assert report.created == rows and not report.problems_total, report.problems[:3]
        return {
            "rows": rows,
            "seconds": seconds,
            "peak_mb": _peak_mb(),
            "baseline_mb": baseline,
        }
    finally:
        await db.dispose()


def _floor_rows(
    cipher: PasswordCipher, tenant_id: uuid.UUID, realm: str, start: int, count: int, numbers: Any
) -> dict[Any, list[dict[str, Any]]]:
    """A batch of what the import writes for `count` agents: each table's rows."""
    now = utcnow()
    tables: dict[Any, list[dict[str, Any]]] = {
        User.__table__: [],
        Device.__table__: [],
        Extension.__table__: [],
        Event.__table__: [],
        AuditEntry.__table__: [],
    }
    for i in range(start, start + count):
        user_id, device_id, name = uuid.uuid4(), uuid.uuid4(), f"agent-{i:05d}"
        number = next(numbers)
        user = {
            "display_name": f"Agent {i:05d}",
            "email": f"agent{i:05d}@acme.vn",
            "external_ref": f"emp-{i:05d}",
            "enabled": True,
            "outbound_allowed": True,
            "auto_answer": i % 4 == 0,
            "limit_minutes": 600 if i % 10 == 0 else None,
        }
        tables[User.__table__].append(
            {"id": user_id, "tenant_id": tenant_id, **user, "created_at": now, "updated_at": now}
        )
        secrets = stored_secrets(cipher, name=name, realm=realm, password=generate_password())
        tables[Device.__table__].append(
            {
                "id": device_id,
                "tenant_id": tenant_id,
                "user_id": user_id,
                "name": name,
                "name_key": name,
                "kind": "softphone",
                "enabled": True,
                **secrets,
                "created_at": now,
                "updated_at": now,
            }
        )
        tables[Extension.__table__].append(
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "user_id": user_id,
                "number": number,
                "created_at": now,
            }
        )
        device = {"name": name, "kind": "softphone", "enabled": True, "user_id": str(user_id)}
        extension = {"number": number, "user_id": str(user_id)}
        for type, resource_type, resource_id, data in (
            ("user.created", "user", user_id, user),
            ("device.created", "device", device_id, device),
            ("extension.added", "extension", number, extension),
        ):
            tables[Event.__table__].append(
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant_id,
                    "type": type,
                    "resource_type": resource_type,
                    "resource_id": str(resource_id),
                    "data": {**data, "changed": data},
                    "request_id": None,
                    "occurred_at": now,
                }
            )
            tables[AuditEntry.__table__].append(
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant_id,
                    "occurred_at": now,
                    "actor_key_id": None,
                    "actor_key_name": None,
                    "actor_role": None,
                    "action": type,
                    "resource_type": resource_type,
                    "resource_id": str(resource_id),
                    "user_id": user_id,
                    "before": None,
                    "after": data,
                    "request_id": None,
                }
            )
    return tables


async def _floor(url: str, tenant_id: uuid.UUID, rows: int, mode: str) -> dict[str, Any]:
    """The same rows written by plain Core INSERTs in one transaction; only the statements
    are timed. `mode`: executemany, or multi-row VALUES (SQLAlchemy's insertmanyvalues, which
    a RETURNING executemany uses)."""
    db = Database(_settings(url))
    cipher = PasswordCipher(SECRET_KEY)
    numbers = extension_numbers(DEFAULT_EMERGENCY_NUMBERS)
    seconds = 0.0
    gc.freeze()
    try:
        async with db.engine.connect() as conn:
            async with conn.begin():
                for start in range(0, rows, _BATCH):
                    tables = _floor_rows(
                        cipher,
                        tenant_id,
                        "import.bench.test",
                        start,
                        min(_BATCH, rows - start),
                        numbers,
                    )
                    began = time.perf_counter()
                    for table, values in tables.items():
                        statement = insert(table)
                        if mode == "values":
                            statement = statement.returning(*table.primary_key.columns)
                        await conn.execute(statement, values)
                    seconds += time.perf_counter() - began
                began = time.perf_counter()
            seconds += time.perf_counter() - began  # the commit
        return {"rows": rows, "seconds": seconds, "mode": mode}
    finally:
        await db.dispose()


def _peak_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args: argparse.Namespace) -> None:
    url, tenant = args.url, uuid.UUID(args.tenant)
    if args.child == "import":
        result = asyncio.run(_import(url, tenant, Path(args.file)))
    else:
        result = asyncio.run(_floor(url, tenant, args.rows, args.child))
    print(json.dumps(result))


def _run_child(*argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.imports", *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANTRING_LOG_LEVEL": "WARNING"},
    )
    if done.returncode != 0:
        raise SystemExit(f"bench.imports {' '.join(argv)} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _measure(label: str, url: str, rows: int, path: Path) -> dict[str, Any]:
    print(f"{label}: import", file=sys.stderr, flush=True)
    tenant = asyncio.run(_fresh(url))
    imported = _run_child(
        "--child", "import", "--url", url, "--tenant", str(tenant), "--file", str(path)
    )
    floors = []
    for mode in ("executemany", "values"):
        print(f"{label}: Core INSERTs ({mode})", file=sys.stderr, flush=True)
        tenant = asyncio.run(_fresh(url))
        floors.append(
            _run_child("--child", mode, "--url", url, "--tenant", str(tenant), "--rows", str(rows))
        )
    floor = min(floors, key=lambda f: f["seconds"])
    return {
        "backend": label,
        "rows": rows,
        "import_seconds": imported["seconds"],
        "import_rows_per_second": rows / imported["seconds"],
        "floor": {f["mode"]: f["seconds"] for f in floors},
        "floor_rows_per_second": rows / floor["seconds"],
        "ratio": floor["seconds"] / imported["seconds"],
        "peak_mb": imported["peak_mb"],
        "baseline_mb": imported["baseline_mb"],
    }


def _table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | import rows/s | Core INSERT rows/s | ratio | peak memory | target met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        met = r["ratio"] >= TARGET_RATIO and r["peak_mb"] < TARGET_PEAK_MB
        lines.append(
            f"| {r['backend']} | {r['import_rows_per_second']:,.0f} "
            f"| {r['floor_rows_per_second']:,.0f} | {r['ratio']:.2f} "
            f"| {r['peak_mb']:.0f} MB ({r['baseline_mb']:.0f} MB before) "
            f"| ≥ {TARGET_RATIO}, < {TARGET_PEAK_MB} MB: {'yes' if met else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000, help="agents in the file")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--child", choices=["import", "executemany", "values"], help=argparse.SUPPRESS
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--tenant", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="antring-bench-import-") as tmp:
        path = Path(tmp) / "agents.csv"
        with path.open("wb") as out:
            agents_csv(args.rows, out)
        results.append(
            _measure("SQLite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args.rows, path)
        )
        if not args.sqlite_only:
            try:
                results.append(_measure("PostgreSQL", POSTGRES_URL, args.rows, path))
            finally:
                asyncio.run(drop_database(POSTGRES_URL))
    print(_table(results))
    print(json.dumps(results, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
