"""The monthly rollover: closes each tenant's finished months, once, at its local month start.

Correctness never waits for it (usage is always counted in the month a call started), so a late,
missed or repeated run changes nothing users see; what it adds is the history of each month's
limit. Each (tenant, month) is claimed by inserting a unique row, in the same transaction as the
month's effects, so replicas running it at the same instant close a month exactly once.
"""

import logging
from datetime import datetime

from app.clock import utcnow
from app.db.session import Database
from app.outbox import record as outbox
from app.quotas import repository
from app.quotas.live import announce_new_month
from app.quotas.periods import next_period, period_of, period_start

logger = logging.getLogger(__name__)


async def close_finished_months(db: Database, *, now: datetime | None = None) -> int:
    """Closes every finished month not closed yet, for every tenant; returns how many it closed."""
    now = now or utcnow()
    async with db.session_scope() as session:
        tenants = await repository.tenants_for_rollover(session)
    closed = 0
    for tenant in tenants:
        current = period_of(now, tenant.timezone)
        period = (
            next_period(tenant.last_closed)
            if tenant.last_closed
            else period_of(tenant.created_at, tenant.timezone)
        )
        while period < current:
            async with db.session_scope() as session:
                if await repository.claim_rollover(
                    session, tenant_id=tenant.id, period=period, now=now
                ):
                    await repository.snapshot_limits(
                        session,
                        tenant_id=tenant.id,
                        period=period,
                        period_end=period_start(next_period(period), tenant.timezone),
                    )
                    await outbox.record(
                        session,
                        type="month.closed",
                        tenant_id=tenant.id,
                        resource_type="tenant",
                        resource_id=tenant.id,
                        data={"period": period},
                    )
                    if next_period(period) == current:
                        await announce_new_month(
                            session, tenant_id=tenant.id, closed=period, current=current
                        )
                    closed += 1
                    logger.info("closed month %s of tenant %s", period, tenant.id)
            period = next_period(period)
    return closed
