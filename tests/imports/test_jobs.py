import asyncio
import io
import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.clock import utcnow
from app.db.session import Database
from app.imports.formats import FileFormat
from app.imports.importer import import_users
from app.imports.models import ImportJob, ImportStatus
from app.imports.runner import ImportRunner
from app.jobs.registry import run_job
from app.outbox.models import AuditEntry
from app.tenants.service import get_tenant
from tests.helpers.api import TenantKeys, assert_problem
from tests.helpers.imports import (
    HEADER,
    db_objects,
    finished_job,
    post_import,
    stored_counts,
)

# The app answers files of up to 1,000 rows at once (ANTRING_IMPORT_SYNC_MAX_ROWS).
ROWS = 1200


def agents(count: int, *, start: int = 0) -> bytes:
    rows = [f"Agent {i},,emp-{i:05d},,,,," for i in range(start, start + count)]
    return "\r\n".join([HEADER, *rows]).encode() + b"\r\n"


async def test_a_large_import_runs_as_a_job_whose_progress_can_be_polled(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    response = await post_import(client, tenant.admin, agents(ROWS))

    assert response.status_code == 202, response.text
    location = response.headers["location"]
    accepted = response.json()
    assert location == f"/v1/users/imports/{accepted['id']}"
    assert (accepted["status"], accepted["rows_done"], accepted["rows_total"]) == (
        "queued",
        0,
        ROWS,
    )
    # A viewer sees the progress and the report, never the passwords (and takes none away).
    seen = await finished_job(client, tenant.viewer, location)
    assert seen["report"]["new_devices"] is None

    job = await finished_job(client, tenant.admin, location)

    assert (job["status"], job["rows_done"], job["rows_total"]) == ("succeeded", ROWS, ROWS)
    assert job["finished_at"] is not None and job["detail"] is None
    report = job["report"]
    assert (report["created"], report["problems_total"]) == (ROWS, 0)
    assert len(report["new_devices"]) == ROWS
    assert all(len(device["password"]) == 20 for device in report["new_devices"])
    # Shown once: the next read has them no more.
    again = (await client.get(location, headers=tenant.admin)).json()
    assert again["report"]["new_devices"] is None
    assert again["report"]["created"] == ROWS
    counts = await stored_counts(db)
    assert (counts["user_account"], counts["device"]) == (ROWS, ROWS)
    # The job's events are the request's: its key, its request id.
    audit = await db_objects(db, select(AuditEntry).where(AuditEntry.action == "user.created"))
    assert len(audit) == ROWS
    assert {(a.actor_role, a.request_id) for a in audit} == {
        ("admin", response.headers["x-request-id"])
    }


async def test_a_dry_run_job_reports_and_stores_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    before = await stored_counts(db)

    response = await post_import(client, tenant.admin, agents(ROWS), dry_run=True)

    assert response.status_code == 202
    job = await finished_job(client, tenant.admin, response.headers["location"])
    assert (job["status"], job["dry_run"], job["report"]["created"]) == ("succeeded", True, ROWS)
    assert job["report"]["new_devices"] is None
    assert await stored_counts(db) == before


async def test_progress_is_told_after_each_batch(
    tenant: TenantKeys, db: Database, app: FastAPI
) -> None:
    told: list[int] = []

    async def progress(rows_done: int) -> None:
        told.append(rows_done)

    async with db.session_scope() as session:
        await import_users(
            session,
            app.state.cipher,
            tenant=await get_tenant(session, tenant_id=tenant.id),
            source=io.BytesIO(agents(ROWS)),
            file_format=FileFormat.csv,
            dry_run=True,
            progress=progress,
        )

    assert told == [500, 1000, 1200]


async def test_another_tenants_job_is_not_found(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    response = await post_import(client, tenant.admin, agents(ROWS), dry_run=True)
    location = response.headers["location"]
    await finished_job(client, tenant.admin, location)

    assert_problem(await client.get(location, headers=other_tenant.admin), 404)
    unknown = f"/v1/users/imports/{uuid.uuid4()}"
    assert_problem(await client.get(unknown, headers=tenant.admin), 404, code="import-not-found")


async def test_a_job_whose_process_stopped_is_shown_failed(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    # What a process that died mid-import leaves: a running job nobody touches any more.
    job_id = uuid.uuid4()
    async with db.session_scope() as session:
        session.add(
            ImportJob(
                id=job_id,
                tenant_id=tenant.id,
                dry_run=False,
                status=ImportStatus.running,
                rows_total=5000,
                rows_done=1500,
                updated_at=utcnow() - timedelta(minutes=11),
            )
        )

    job = (await client.get(f"/v1/users/imports/{job_id}", headers=tenant.viewer)).json()

    assert job["status"] == "failed"
    assert job["detail"].startswith("Abandoned: the process running it stopped. Nothing was stored")


async def test_a_shutdown_interrupts_a_job_and_records_it(
    tenant: TenantKeys, db: Database, app: FastAPI
) -> None:
    runner = ImportRunner(db, app.state.cipher, sync_max_rows=0)
    started = await runner.submit(
        tenant_id=tenant.id,
        source=io.BytesIO(agents(ROWS)),
        file_format=FileFormat.csv,
        dry_run=False,
    )

    await runner.close()

    (job,) = await db_objects(db, select(ImportJob).where(ImportJob.id == started.id))
    assert job.status == ImportStatus.failed
    assert job.detail.startswith("Interrupted: the service stopped. Nothing was stored")
    assert (await stored_counts(db))["user_account"] == 0


async def test_a_shutdown_midway_rolls_the_import_back(
    tenant: TenantKeys, db: Database, app: FastAPI
) -> None:
    runner = ImportRunner(db, app.state.cipher, sync_max_rows=0)
    started = await runner.submit(
        tenant_id=tenant.id,
        source=io.BytesIO(agents(5000)),
        file_format=FileFormat.csv,
        dry_run=False,
    )
    for _ in range(1000):
        midway = runner.live(started.id, tenant_id=tenant.id)
        assert midway is not None
        if midway.rows_done:
            break
        await asyncio.sleep(0.01)
    assert 0 < midway.rows_done < 5000

    await runner.close()

    (job,) = await db_objects(db, select(ImportJob).where(ImportJob.id == started.id))
    assert (job.status, job.detail[:12]) == (ImportStatus.failed, "Interrupted:")
    assert (await stored_counts(db))["user_account"] == 0


async def test_two_imports_racing_on_the_same_extensions_leave_one_winner(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    def claim(prefix: str) -> bytes:
        rows = [f"{prefix} {i},,{prefix}-{i},{2000 + i},,,," for i in range(300)]
        return "\r\n".join([HEADER, *rows]).encode()

    first, second = await asyncio.gather(
        post_import(client, tenant.admin, claim("a")),
        post_import(client, tenant.admin, claim("b")),
    )

    statuses = sorted([first.status_code, second.status_code])
    assert statuses[0] == 200, (first.text, second.text)
    loser = first if first.status_code != 200 else second
    # Checked after the winner committed: its rows' problems; or checked alongside it: the
    # database's unique constraint said no when it wrote.
    assert loser.status_code in (409, 422), loser.text
    assert_problem(loser, loser.status_code)
    listed = await client.get("/v1/users/export", headers=tenant.admin)
    winner = "a" if first.status_code == 200 else "b"
    rows = listed.text.splitlines()[1:]
    assert len(rows) == 300
    assert all(row.startswith(f"{winner} ") for row in rows)
    counts = await stored_counts(db)
    assert (counts["user_account"], counts["device"], counts["extension"]) == (300, 300, 300)


async def test_finished_jobs_are_forgotten_after_a_day(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    response = await post_import(client, tenant.admin, agents(ROWS))
    location = response.headers["location"]
    await finished_job(client, tenant.viewer, location)
    assert await run_job(db, "prune-import-jobs") == 0
    async with db.session_scope() as session:
        await session.execute(
            update(ImportJob).values(updated_at=utcnow() - timedelta(days=1, seconds=1))
        )

    assert await run_job(db, "prune-import-jobs") == 1
    assert_problem(await client.get(location, headers=tenant.admin), 404)
    # The users it made stay.
    assert (await stored_counts(db))["user_account"] == ROWS
