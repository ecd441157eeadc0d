"""The imports' scheduled work."""

from datetime import timedelta

from app.clock import utcnow
from app.db.session import Database
from app.imports import repository

JOBS_KEPT = timedelta(days=1)


async def prune_jobs(db: Database) -> int:
    """Forgets import jobs a day after they last changed (with passwords never collected);
    returns how many."""
    async with db.session_scope() as session:
        return await repository.delete_jobs_before(session, before=utcnow() - JOBS_KEPT)
