"""The import jobs' records: a larger file's import as a row that shows its progress, then its
report (the new devices' passwords encrypted apart, shown once), or why it failed."""

import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.imports import repository
from app.imports.exceptions import ImportJobNotFound
from app.imports.models import ImportJob, ImportStatus
from app.imports.schemas import ImportJobOut, ImportReport, NewDevice

# A job still queued or running that no process has touched for this long was abandoned: the
# process running it stopped, and its transaction with it.
ABANDONED_AFTER = timedelta(minutes=10)


def job_out(job: ImportJob) -> ImportJobOut:
    report = ImportReport.model_validate(job.report) if job.report is not None else None
    return ImportJobOut(
        id=job.id,
        status=job.status,
        dry_run=job.dry_run,
        rows_total=job.rows_total,
        rows_done=job.rows_done,
        detail=job.detail,
        report=report,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def finished(
    cipher: PasswordCipher,
    *,
    status: ImportStatus,
    report: ImportReport | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """A job's columns once it ended: its report, and the new passwords encrypted apart (they
    are shown once)."""
    at = utcnow()
    passwords = report.new_devices if report is not None else None
    return {
        "status": status,
        "rows_done": report.rows_total if report is not None else 0,
        "detail": detail,
        "report": None
        if report is None
        else report.model_dump(mode="json", exclude={"new_devices"}) | {"new_devices": None},
        "new_devices_encrypted": cipher.encrypt(
            json.dumps([device.model_dump(mode="json") for device in passwords])
        )
        if passwords
        else None,
        "updated_at": at,
        "finished_at": at,
    }


async def new_job(
    session: AsyncSession, *, tenant_id: uuid.UUID, rows_total: int, dry_run: bool
) -> ImportJob:
    job = ImportJob(
        tenant_id=tenant_id, dry_run=dry_run, status=ImportStatus.queued, rows_total=rows_total
    )
    await repository.add_job(session, job)
    return job


async def read_job(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant_id: uuid.UUID,
    job_id: uuid.UUID,
    reveal: bool,
) -> ImportJobOut:
    """An import job as it stands. With `reveal`, the new devices' passwords, which are then
    forgotten (shown once)."""
    job = await repository.get_job(session, tenant_id=tenant_id, job_id=job_id, for_update=reveal)
    if job is None:
        raise ImportJobNotFound(import_id=str(job_id))
    if job.finished_at is None and job.updated_at < utcnow() - ABANDONED_AFTER:
        job.status = ImportStatus.failed
        job.detail = "Abandoned: the process running it stopped. Nothing was stored; import again."
        job.updated_at = job.finished_at = utcnow()
        await session.flush()
    shown = job_out(job)
    if reveal and job.new_devices_encrypted is not None and shown.report is not None:
        shown.report.new_devices = [
            NewDevice.model_validate(device)
            for device in json.loads(cipher.decrypt(job.new_devices_encrypted))
        ]
        job.new_devices_encrypted = None
        await session.flush()
    return shown
