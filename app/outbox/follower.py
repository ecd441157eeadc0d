"""The outbox followed once per process and fanned out in memory: the event streams' one source.

The follower reads each committed event once (woken by this process's commits, and polling for
other replicas'), and offers it to the open subscriptions of its tenant, each a bounded queue:
a subscription too far behind is dropped, never slowing the others or growing memory. It reads
only while a subscription is open.

Numbers of `seq` are taken when a row is written, not when it commits: an event may commit after
one with a higher number. A number skipped over is kept as a gap and looked for again until
GAP_SECONDS have passed (a rolled-back write leaves one for good), so no event is missed and none
is offered twice."""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette import ServerSentEvent

from app.db.session import Database
from app.errors import ServiceUnavailable
from app.outbox.models import Event
from app.outbox.readers import OutboxReaders, payload

logger = logging.getLogger(__name__)

# How long a skipped number is waited for: longer than a write's transaction may take between
# its event and its commit.
GAP_SECONDS = 30.0
# Gaps remembered at most; beyond, the oldest are given up.
MAX_GAPS = 10_000
BATCH = 500
# How long a new subscription waits for the follower to start (its first query) before 503.
READY_SECONDS = 10.0

_EVENT = Event.__table__
assert isinstance(_EVENT, Table)


class StreamEvent(NamedTuple):
    """An event as every stream sends it: its number, id and type, and its message (the
    webhooks' body as a Server-Sent Event), made once for all the streams it goes to."""

    seq: int
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    type: str
    message: bytes


class _Row(NamedTuple):
    seq: int
    id: uuid.UUID
    tenant_id: uuid.UUID | None
    type: str
    resource_type: str
    resource_id: str
    data: dict[str, Any]
    request_id: str | None
    occurred_at: datetime


_COLUMNS = [_EVENT.c[name] for name in _Row._fields]


def stream_event(row: _Row) -> StreamEvent:
    message = ServerSentEvent(data=payload(row), event=row.type, id=str(row.id)).encode()
    return StreamEvent(row.seq, row.id, row.tenant_id, row.type, message)


class StreamLimitReached(Exception):
    """No room for another subscription: `scope` is "key", "tenant" or "process", `limit` its
    bound."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(scope, limit)
        self.scope = scope
        self.limit = limit


DROPPED = "dropped"


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscription:
    """One stream's share of the fan-out: its tenant's events of its types, waiting in a bounded
    list for its reader (the events themselves are shared by every stream they go to). When the
    list is full the subscription ends as DROPPED: the events waiting are let go, `ended` is set
    and the reader, woken, ends the stream."""

    __slots__ = ("_pending", "_waiter", "ended", "owner", "size", "tenant_id", "types")

    def __init__(self, tenant_id: uuid.UUID, types: frozenset[str], owner: str, size: int) -> None:
        self.tenant_id = tenant_id
        self.types = types
        self.owner = owner
        self.size = size
        self.ended: str | None = None
        self._pending: list[StreamEvent] = []
        # The reader's, while it waits.
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: StreamEvent) -> None:
        if self.ended or (self.types and event.type not in self.types):
            return
        if len(self._pending) >= self.size:
            self.end(DROPPED)
            return
        self._pending.append(event)
        if self._waiter is not None:
            _wake(self._waiter)

    def end(self, reason: str) -> None:
        """No more events: the reader is told `reason` next."""
        if self.ended:
            return
        self.ended = reason
        self._pending = []
        if self._waiter is not None:
            _wake(self._waiter)

    def take(self, most: int) -> list[StreamEvent]:
        """The first `most` events waiting, in order (none once the subscription has ended)."""
        taken, self._pending = self._pending[:most], self._pending[most:]
        return taken

    async def wait(self, seconds: float) -> bool:
        """Until an event waits or the subscription ends (True), or `seconds` pass (False). No
        task and no queue: a timer and, while waiting, one future."""
        if self._pending or self.ended:
            return True
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        return bool(self._pending or self.ended)


class OutboxFollower:
    """Reads the outbox for this process's subscriptions, and bounds how many there are."""

    def __init__(
        self,
        db: Database,
        readers: OutboxReaders,
        *,
        poll_seconds: float,
        queue_events: int,
        per_owner: int,
        per_tenant: int,
        per_process: int,
    ) -> None:
        # Its own connection: a busy process's requests never hold up the streams.
        self._db = Database(db.settings.model_copy(update={"database_pool_size": 1}))
        self._wake = readers.waker()
        self._poll = poll_seconds
        self._size = queue_events
        # A round offers no more than half a queue: a reader that keeps up is never dropped for
        # a burst (a bulk import's thousands of events).
        self._batch = max(1, min(BATCH, queue_events // 2))
        self._per_owner = per_owner
        self._per_tenant = per_tenant
        self._per_process = per_process
        self._by_tenant: dict[uuid.UUID, set[Subscription]] = {}
        self._by_owner: dict[str, int] = {}
        self._count = 0
        self._wanted = asyncio.Event()
        self._ready = asyncio.Event()
        self._high = 0
        # Numbers skipped over, with when they were first missed.
        self._gaps: dict[int, float] = {}

    @property
    def subscriptions(self) -> int:
        return self._count

    async def subscribe(
        self, *, tenant_id: uuid.UUID, types: Iterable[str], owner: str
    ) -> Subscription:
        """A subscription to what commits from now on; StreamLimitReached when there is no
        room for it."""
        if self._count >= self._per_process:
            raise StreamLimitReached("process", self._per_process)
        if self._by_owner.get(owner, 0) >= self._per_owner:
            raise StreamLimitReached("key", self._per_owner)
        # One tenant's many screens never take the room every other tenant's need.
        if len(self._by_tenant.get(tenant_id, ())) >= self._per_tenant:
            raise StreamLimitReached("tenant", self._per_tenant)
        subscription = Subscription(tenant_id, frozenset(types), owner, self._size)
        self._by_tenant.setdefault(tenant_id, set()).add(subscription)
        self._by_owner[owner] = self._by_owner.get(owner, 0) + 1
        self._count += 1
        self._wanted.set()
        try:
            await asyncio.wait_for(self._ready.wait(), READY_SECONDS)
        except BaseException as error:
            self.unsubscribe(subscription)
            if isinstance(error, TimeoutError):
                raise ServiceUnavailable() from None
            raise
        return subscription

    def end_all(self, reason: str) -> None:
        """Ends every subscription with `reason` (the process is stopping)."""
        for subscriptions in self._by_tenant.values():
            for subscription in subscriptions:
                subscription.end(reason)

    def unsubscribe(self, subscription: Subscription) -> None:
        tenant = self._by_tenant.get(subscription.tenant_id)
        if tenant is None or subscription not in tenant:
            return
        tenant.discard(subscription)
        if not tenant:
            del self._by_tenant[subscription.tenant_id]
        left = self._by_owner[subscription.owner] - 1
        if left:
            self._by_owner[subscription.owner] = left
        else:
            del self._by_owner[subscription.owner]
        self._count -= 1

    async def run(self) -> None:
        while True:
            if not self._count:
                # Nobody listens: nothing is read until someone does, and then from that moment.
                self._ready.clear()
                await self._wanted.wait()
                self._wanted.clear()
                continue
            try:
                if not self._ready.is_set():
                    await self._start()
                    self._ready.set()
                busy = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("following the outbox failed")
                busy = 0
            if busy < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                self._wake.clear()

    async def close(self) -> None:
        await self._db.dispose()

    async def _start(self) -> None:
        async with self._session() as session:
            self._high = await _last_seq(session)
        self._gaps.clear()

    async def step(self) -> int:
        """Reads what committed since the last step and offers it; returns how many it read."""
        async with self._session() as session:
            found = _EVENT.c.seq > self._high
            if self._gaps:
                found = found | _EVENT.c.seq.in_(list(self._gaps))
            query = select(*_COLUMNS).where(found).order_by(_EVENT.c.seq).limit(self._batch)
            rows = [_Row(*row) for row in (await session.execute(query)).all()]
            if not rows and await _last_seq(session) < self._high:
                # Rows were deleted from the top (SQLite then numbers again from there).
                await self._restart(session)
                return 0
        now = time.monotonic()
        self._note_gaps(rows, now)
        for row in rows:
            subscriptions = self._by_tenant.get(row.tenant_id) if row.tenant_id else None
            if not subscriptions:
                continue
            event = stream_event(row)
            for subscription in list(subscriptions):
                subscription.offer(event)
        return len(rows)

    async def _restart(self, session: AsyncSession) -> None:
        self._high = await _last_seq(session)
        self._gaps.clear()

    def _note_gaps(self, rows: list[_Row], now: float) -> None:
        for row in rows:
            self._gaps.pop(row.seq, None)
        expired = [seq for seq, since in self._gaps.items() if now - since > GAP_SECONDS]
        for seq in expired:
            del self._gaps[seq]
        expected = self._high + 1
        for row in rows:
            if row.seq < expected:
                continue
            for missing in range(expected, min(row.seq, expected + MAX_GAPS)):
                self._gaps[missing] = now
            expected = row.seq + 1
        self._high = max(self._high, expected - 1)
        while len(self._gaps) > MAX_GAPS:
            del self._gaps[min(self._gaps)]

    @contextlib.asynccontextmanager
    async def _session(self) -> Any:
        # The follower's own queries are not the requests' traces.
        with suppress_instrumentation():
            async with self._db.session_scope() as session:
                yield session


async def _last_seq(session: AsyncSession) -> int:
    last = await session.scalar(select(func.max(_EVENT.c.seq)))
    return int(last or 0)


async def seq_of(session: AsyncSession, *, tenant_id: uuid.UUID, event_id: uuid.UUID) -> int | None:
    """The number of the tenant's event `event_id`, or None when it is not (or no longer) kept."""
    found = await session.scalar(
        select(_EVENT.c.seq).where(_EVENT.c.id == event_id, _EVENT.c.tenant_id == tenant_id)
    )
    return int(found) if found is not None else None


async def events_after(
    session: AsyncSession, *, tenant_id: uuid.UUID, seq: int, types: Iterable[str], limit: int
) -> list[StreamEvent]:
    """The tenant's events numbered after `seq` (of `types`; empty: all), in order, at most
    `limit`."""
    query = select(*_COLUMNS).where(_EVENT.c.tenant_id == tenant_id, _EVENT.c.seq > seq)
    wanted = list(types)
    if wanted:
        query = query.where(_EVENT.c.type.in_(wanted))
    rows = (await session.execute(query.order_by(_EVENT.c.seq).limit(limit))).all()
    return [stream_event(_Row(*row)) for row in rows]
