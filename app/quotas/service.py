"""The monthly outbound-minute quota: minutes used against minutes allowed."""

import math
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.quotas import repository
from app.quotas.periods import now_utc, period_of, resets_at
from app.quotas.schemas import QuotaHistoryEntry, QuotaOut
from app.tenants.models import Tenant
from app.users.repository import require_user


def used_minutes(used_seconds: int) -> int:
    return math.ceil(used_seconds / 60)


def remaining_seconds(limit_minutes: int | None, spent_seconds: int) -> int | None:
    return None if limit_minutes is None else max(limit_minutes * 60 - spent_seconds, 0)


async def used_seconds_by_user(
    session: AsyncSession, *, tenant: Tenant, user_ids: list[uuid.UUID], at: datetime
) -> tuple[str, dict[uuid.UUID, int]]:
    period = period_of(at, tenant.timezone)
    used = await repository.used_seconds_by_user(
        session, tenant_id=tenant.id, user_ids=user_ids, period=period
    )
    return period, used


async def get_quota(session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID) -> QuotaOut:
    user = await require_user(session, tenant_id=tenant_id, user_id=user_id)
    tenant = await session.get_one(Tenant, tenant_id)
    at = now_utc()
    period = period_of(at, tenant.timezone)
    used, held = await repository.used_and_held_seconds(
        await session.connection(), user_id=user.id, period=period, now=at
    )
    return QuotaOut(
        limit_minutes=user.limit_minutes,
        used_seconds=used,
        used_minutes=used_minutes(used),
        held_seconds=held,
        remaining_seconds=remaining_seconds(user.limit_minutes, used + held),
        period=period,
        resets_at=resets_at(at, tenant.timezone),
    )


async def set_limit(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit_minutes: int | None
) -> QuotaOut:
    user = await require_user(session, tenant_id=tenant_id, user_id=user_id)
    user.limit_minutes = limit_minutes
    await session.flush()
    return await get_quota(session, tenant_id=tenant_id, user_id=user_id)


async def quota_history(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[QuotaHistoryEntry], int]:
    """Closed months, newest first: the limit as it was, and what was used (late reports too)."""
    await require_user(session, tenant_id=tenant_id, user_id=user_id)
    rows, total = await repository.quota_history(
        session, tenant_id=tenant_id, user_id=user_id, limit=limit, offset=offset
    )
    entries = [
        QuotaHistoryEntry(
            period=row.period,
            limit_minutes=row.limit_minutes,
            used_seconds=row.used_seconds,
            used_minutes=used_minutes(row.used_seconds),
        )
        for row in rows
    ]
    return entries, total
