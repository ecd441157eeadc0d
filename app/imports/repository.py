"""The import's own queries: its jobs' rows, and how a batch's lookups are planned. What it
reads and writes of users, devices and extensions is each domain's repository's."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.imports.models import ImportJob


@asynccontextmanager
async def lookups_planned_for_their_values(session: AsyncSession) -> AsyncIterator[None]:
    """On PostgreSQL, the statements run inside are planned for their own values. A prepared
    statement's generic plan (from its sixth run on) cannot hash an `IN` list of hundreds of
    parameters and compares each row with every one of them: a batch's lookups took 30 times
    longer. The writes after them keep the generic plans (planning each row of an INSERT
    again costs more than it saves)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    yield
    if postgres:
        await session.execute(text("SET LOCAL plan_cache_mode = auto"))


async def add_job(session: AsyncSession, job: ImportJob) -> None:
    session.add(job)
    await session.flush()


async def get_job(
    session: AsyncSession, *, tenant_id: uuid.UUID, job_id: uuid.UUID, for_update: bool = False
) -> ImportJob | None:
    query = select(ImportJob).where(ImportJob.id == job_id, ImportJob.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update()
    job: ImportJob | None = await session.scalar(query)
    return job


async def set_job_progress(
    session: AsyncSession, *, job_id: uuid.UUID, rows_done: int, at: datetime
) -> None:
    await session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(rows_done=rows_done, updated_at=at)
    )


async def finish_job(session: AsyncSession, *, job_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Sets a job's columns. The values (a report, encrypted passwords: megabytes for a large
    import) go as the statement's parameters, not in the statement, which SQLAlchemy keeps in
    its cache of compiled statements long after the job."""
    jobs = cast(Table, ImportJob.__table__)
    statement = (
        update(jobs)
        .where(jobs.c.id == bindparam("job_id_"))
        .values({name: bindparam(name) for name in values})
    )
    await session.execute(statement, {"job_id_": job_id, **values})


async def delete_jobs_before(session: AsyncSession, *, before: datetime) -> int:
    result = await session.execute(delete(ImportJob).where(ImportJob.updated_at < before))
    return int(getattr(result, "rowcount", 0) or 0)
