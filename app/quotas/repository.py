import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, String, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.base import AnyRow
from app.db.session import Database
from app.db.sql import dialect_insert
from app.quotas.models import (
    CallAuthorization,
    CallRecord,
    MonthlyUsage,
    MonthRollover,
    QuotaHistory,
)
from app.tenants.models import Tenant
from app.user_record.models import User


async def used_seconds_by_user(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: Sequence[uuid.UUID], period: str
) -> dict[uuid.UUID, int]:
    if not user_ids:
        return {}
    rows = await session.execute(
        select(MonthlyUsage.user_id, MonthlyUsage.used_seconds).where(
            MonthlyUsage.tenant_id == tenant_id,
            MonthlyUsage.period == period,
            MonthlyUsage.user_id.in_(user_ids),
        )
    )
    return {row.user_id: row.used_seconds for row in rows}


# Seconds charged to a month, and seconds held by its calls still in progress. Built once: the
# authorization runs it for every call of a limited user (parameters user_id, period, now).
USED_AND_HELD: Select[tuple[int, int]] = select(
    func.coalesce(
        select(MonthlyUsage.used_seconds)
        .where(
            MonthlyUsage.user_id == bindparam("user_id"),
            MonthlyUsage.period == bindparam("period"),
        )
        .scalar_subquery(),
        0,
    ).label("used"),
    func.coalesce(
        select(func.sum(CallAuthorization.held_seconds))
        .where(
            CallAuthorization.user_id == bindparam("user_id"),
            CallAuthorization.released_at.is_(None),
            CallAuthorization.period == bindparam("period"),
            CallAuthorization.held_seconds > 0,
            CallAuthorization.expires_at > bindparam("now"),
        )
        .scalar_subquery(),
        0,
    ).label("held"),
)


async def used_and_held_seconds(
    session: AsyncSession, *, user_id: uuid.UUID, period: str, now: datetime
) -> tuple[int, int]:
    row = (
        await session.execute(USED_AND_HELD, {"user_id": user_id, "period": period, "now": now})
    ).one()
    return int(row.used), int(row.held)


async def tenants_for_rollover(session: AsyncSession) -> list[AnyRow]:
    """Each tenant with its time zone, creation time and last closed month."""
    last_closed = (
        select(func.max(MonthRollover.period))
        .where(MonthRollover.tenant_id == Tenant.id)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Tenant.id, Tenant.timezone, Tenant.created_at, last_closed.label("last_closed"))
    )
    return list(rows.all())


async def claim_rollover(
    session: AsyncSession, *, tenant_id: uuid.UUID, period: str, now: datetime
) -> bool:
    """Marks a tenant's month closed; False when it already was (by this or another replica)."""
    claimed = await session.scalar(
        dialect_insert(session, MonthRollover.__table__)
        .values(tenant_id=tenant_id, period=period, closed_at=now)
        .on_conflict_do_nothing(index_elements=["tenant_id", "period"])
        .returning(MonthRollover.__table__.c.period)
    )
    return claimed is not None


async def snapshot_limits(
    session: AsyncSession, *, tenant_id: uuid.UUID, period: str, period_end: datetime
) -> None:
    """Keeps each user's limit for the closed month (users that existed by its end)."""
    users = select(User.id, literal(period, String(7)), User.tenant_id, User.limit_minutes).where(
        User.tenant_id == tenant_id, User.created_at < period_end
    )
    await session.execute(
        dialect_insert(session, QuotaHistory.__table__)
        .from_select(["user_id", "period", "tenant_id", "limit_minutes"], users)
        .on_conflict_do_nothing(index_elements=["user_id", "period"])
    )


async def quota_history(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[AnyRow], int]:
    where = (QuotaHistory.tenant_id == tenant_id, QuotaHistory.user_id == user_id)
    total = await session.scalar(select(func.count()).select_from(QuotaHistory).where(*where))
    rows = await session.execute(
        select(
            QuotaHistory.period,
            QuotaHistory.limit_minutes,
            func.coalesce(MonthlyUsage.used_seconds, 0).label("used_seconds"),
        )
        .outerjoin(
            MonthlyUsage,
            (MonthlyUsage.user_id == QuotaHistory.user_id)
            & (MonthlyUsage.period == QuotaHistory.period),
        )
        .where(*where)
        .order_by(QuotaHistory.period.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total or 0


# What the ledger says of a call: the usage report's answer and the calls list's rows.
CALL_COLUMNS = (
    CallRecord.call_id,
    CallRecord.user_id,
    CallRecord.device_id,
    CallRecord.destination,
    CallRecord.started_at,
    CallRecord.duration_seconds,
    CallRecord.charged_seconds,
    CallRecord.period,
    CallRecord.emergency,
)


async def list_calls(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[AnyRow], int]:
    where = (CallRecord.tenant_id == tenant_id, CallRecord.user_id == user_id)
    total = await session.scalar(select(func.count()).select_from(CallRecord).where(*where))
    rows = await session.execute(
        select(*CALL_COLUMNS)
        .where(*where)
        .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total or 0


async def open_holds(db: Database) -> tuple[int, int]:
    """Calls in progress that hold minutes, and the seconds they hold, over every tenant."""
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    func.count(), func.coalesce(func.sum(CallAuthorization.held_seconds), 0)
                ).where(
                    CallAuthorization.released_at.is_(None),
                    CallAuthorization.held_seconds > 0,
                    CallAuthorization.expires_at > utcnow(),
                )
            )
        ).one()
    return int(row[0]), int(row[1])
