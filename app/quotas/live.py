"""Minutes used, announced as they change: a charged call marks its user in memory, and every
few seconds one `quota.used_changed` event per marked user is written to the outbox with the
month's total read from the ledger. The usage report itself writes no event for it: a set
insert is all it costs (bench/minutes.py measures it)."""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import NamedTuple

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database
from app.outbox.record import Change, record_many
from app.quotas.models import MonthlyUsage
from app.quotas.service import used_minutes

logger = logging.getLogger(__name__)

USED_CHANGED = "quota.used_changed"


class Month(NamedTuple):
    """A user's month whose minutes used changed."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    period: str


def used_changed(month: Month, used_seconds: int) -> Change:
    return Change(
        type=USED_CHANGED,
        tenant_id=month.tenant_id,
        resource_type="user",
        resource_id=month.user_id,
        user_id=month.user_id,
        data={
            "user_id": str(month.user_id),
            "period": month.period,
            "used_seconds": used_seconds,
            "used_minutes": used_minutes(used_seconds),
        },
    )


async def announce(session: AsyncSession, months: Iterable[Month]) -> int:
    """Writes each month's `quota.used_changed` with its total now; returns how many."""
    wanted = list(months)
    if not wanted:
        return 0
    keys = [(month.user_id, month.period) for month in wanted]
    used: dict[tuple[uuid.UUID, str], int] = {}
    for start in range(0, len(keys), 500):
        rows = await session.execute(
            select(MonthlyUsage.user_id, MonthlyUsage.period, MonthlyUsage.used_seconds).where(
                tuple_(MonthlyUsage.user_id, MonthlyUsage.period).in_(keys[start : start + 500])
            )
        )
        used.update({(row.user_id, row.period): row.used_seconds for row in rows})
    # A month no longer in the ledger went with its user (or tenant): nothing to announce.
    found = [month for month in wanted if (month.user_id, month.period) in used]
    await record_many(
        session, [used_changed(month, used[month.user_id, month.period]) for month in found]
    )
    return len(found)


async def announce_new_month(
    session: AsyncSession, *, tenant_id: uuid.UUID, closed: str, current: str
) -> None:
    """A closed month's users with minutes used now count those of `current` (often none): the
    minutes column moves for each of them."""
    closed_usage = MonthlyUsage.__table__.alias("closed")
    now_used = (
        select(MonthlyUsage.used_seconds)
        .where(MonthlyUsage.user_id == closed_usage.c.user_id, MonthlyUsage.period == current)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(closed_usage.c.user_id, now_used).where(
            closed_usage.c.tenant_id == tenant_id,
            closed_usage.c.period == closed,
            closed_usage.c.used_seconds > 0,
        )
    )
    await record_many(
        session,
        [
            used_changed(Month(tenant_id, user_id, current), used or 0)
            for user_id, used in rows.all()
        ],
    )


class MinutesAnnouncer:
    """The months changed in this process since its last round, announced at most once every
    `every_seconds` (a first change after a quiet spell at once)."""

    def __init__(
        self, db: Database, *, every_seconds: float, on_written: Callable[[], None]
    ) -> None:
        self._db = db
        self._every = every_seconds
        self._on_written = on_written
        self._pending: set[Month] = set()
        self._marked = asyncio.Event()
        self._last = 0.0

    def changed(self, month: Month) -> None:
        """The hot path's whole share: remember the month."""
        self._pending.add(month)
        self._marked.set()

    async def run(self) -> None:
        while True:
            await self._marked.wait()
            wait = self._last + self._every - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("announcing minutes used failed")

    async def flush(self) -> int:
        """Announces what changed since the last round; returns how many months."""
        months, self._pending = self._pending, set()
        self._marked.clear()
        self._last = time.monotonic()
        if not months:
            return 0
        try:
            # Not any request's work: kept out of the requests' traces.
            with suppress_instrumentation():
                async with self._db.session_scope() as session:
                    count = await announce(session, months)
        except BaseException:
            # Announced next round.
            self._pending |= months
            self._marked.set()
            raise
        self._on_written()
        return count
