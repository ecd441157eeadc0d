"""Forgetting old provisioning fetches, long-expired QR links and expired digest nonces."""

from datetime import timedelta

from app.clock import utcnow
from app.db.session import Database
from app.provisioning import repository

# A used or expired link answers 410 for a day, then is forgotten (and answers 404).
LINK_AFTERLIFE = timedelta(days=1)


async def prune_provisioning(db: Database, *, retention_days: int) -> int:
    now = utcnow()
    async with db.session_scope() as session:
        return await repository.prune(
            session,
            fetched_before=now - timedelta(days=retention_days),
            links_expired_before=now - LINK_AFTERLIFE,
            now=now,
        )
