"""Every scheduled job, by name: the scheduler, the CLI and the admin route run them from here."""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from app.audit.service import prune
from app.db.session import Database
from app.errors import Code, NotFound
from app.idempotency.service import prune_expired
from app.imports.jobs import prune_jobs
from app.observability.metrics import JOB_LAST_SUCCESS, JOB_RUNS
from app.provisioning.jobs import prune_provisioning
from app.quotas.jobs import close_finished_months
from app.registrations.jobs import expire_registrations
from app.settings import Settings


@dataclass(frozen=True)
class Job:
    run: Callable[[Database, Settings], Awaitable[int]]
    description: str
    interval: Callable[[Settings], int]


JOBS: dict[str, Job] = {
    "close-finished-months": Job(
        run=lambda db, _settings: close_finished_months(db),
        description="Close each tenant's finished months (history of limits); catches up on "
        "months missed while the service was down.",
        interval=lambda settings: settings.rollover_interval_seconds,
    ),
    "expire-registrations": Job(
        run=lambda db, _settings: expire_registrations(db),
        description="End the SIP registrations past their expiry (a device left with none is "
        "unregistered); forget the ended ones a day later.",
        interval=lambda _settings: 30,
    ),
    "prune-idempotency-keys": Job(
        run=lambda db, _settings: prune_expired(db),
        description="Forget the Idempotency-Keys of creates older than a day, with the answers "
        "kept for their retries.",
        interval=lambda _settings: 3600,
    ),
    "prune-import-jobs": Job(
        run=lambda db, _settings: prune_jobs(db),
        description="Forget import jobs a day after they ended, with any new passwords never "
        "collected.",
        interval=lambda _settings: 3600,
    ),
    "prune-audit-entries": Job(
        run=lambda db, settings: prune(db, retention_days=settings.audit_retention_days),
        description="Forget audit entries older than ANTRING_AUDIT_RETENTION_DAYS.",
        interval=lambda _settings: 86400,
    ),
    "prune-provisioning-fetches": Job(
        run=lambda db, settings: prune_provisioning(
            db, retention_days=settings.provisioning_fetch_retention_days
        ),
        description="Forget phones' provisioning fetches older than "
        "ANTRING_PROVISIONING_FETCH_RETENTION_DAYS, and QR links expired a day ago.",
        interval=lambda _settings: 86400,
    ),
}


class JobNotFound(NotFound):
    code = "job-not-found"
    default_rule = Code.job_not_found


async def run_job(db: Database, name: str) -> int:
    """Runs a job now, by name (every job is idempotent)."""
    job = JOBS.get(name)
    if job is None:
        raise JobNotFound(name=name, jobs=list(JOBS))
    return await _measured(name, job, db)


async def _measured(name: str, job: Job, db: Database) -> int:
    try:
        result = await job.run(db, db.settings)
    except Exception:
        JOB_RUNS.labels(name, "failed").inc()
        raise
    JOB_RUNS.labels(name, "ok").inc()
    JOB_LAST_SUCCESS.labels(name).set(time.time())
    return result


def start_scheduler(db: Database, settings: Settings) -> AsyncIOScheduler:
    """Runs every job now (to catch up) and then at its interval."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    for name, job in JOBS.items():
        scheduler.add_job(
            _measured,
            IntervalTrigger(seconds=job.interval(settings)),
            args=[name, job, db],
            id=name,
            name=name,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
    scheduler.start()
    return scheduler
