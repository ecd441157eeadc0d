import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.quotas.models import MonthlyUsage


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
