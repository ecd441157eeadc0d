"""The monthly outbound-minute quota: minutes used against minutes allowed, and the ledger of
calls behind it."""

import math
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.quotas import repository
from app.quotas.periods import period_of, resets_at
from app.quotas.schemas import CallOut, QuotaHistoryEntry, QuotaOut
from app.user_record import service as user_record
from app.user_record.service import TenantUser


def used_minutes(used_seconds: int) -> int:
    return math.ceil(used_seconds / 60)


def remaining_seconds(limit_minutes: int | None, spent_seconds: int) -> int | None:
    return None if limit_minutes is None else max(limit_minutes * 60 - spent_seconds, 0)


def charged_seconds(duration_seconds: int, increment: int) -> int:
    """A call is billed in whole increments, rounded up (60 s: whole minutes)."""
    return math.ceil(duration_seconds / increment) * increment


async def get_quota(session: AsyncSession, *, current: TenantUser) -> QuotaOut:
    user, timezone = current.user, current.tenant.timezone
    at = utcnow()
    period = period_of(at, timezone)
    used, held = await repository.used_and_held_seconds(
        session, user_id=user.id, period=period, now=at
    )
    return QuotaOut(
        version=user.quota_version,
        limit_minutes=user.limit_minutes,
        used_seconds=used,
        used_minutes=used_minutes(used),
        held_seconds=held,
        remaining_seconds=remaining_seconds(user.limit_minutes, used + held),
        period=period,
        resets_at=resets_at(at, timezone),
    )


async def set_limit(
    session: AsyncSession, *, current: TenantUser, limit_minutes: int | None
) -> QuotaOut:
    await user_record.set_limit(session, user=current.user, limit_minutes=limit_minutes)
    return await get_quota(session, current=current)


async def quota_history(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[QuotaHistoryEntry], int]:
    """Closed months, newest first: the limit as it was, and what was used (late reports too)."""
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


async def list_calls(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[CallOut], int]:
    rows, total = await repository.list_calls(
        session, tenant_id=tenant_id, user_id=user_id, limit=limit, offset=offset
    )
    return [CallOut.model_validate(row, from_attributes=True) for row in rows], total
