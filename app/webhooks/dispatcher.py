"""The delivery worker: fans the outbox's events out to the endpoints that want them, and sends
what is due, signed, with a short timeout; retries on a schedule of about a day (Svix's), keeps
every attempt, and disables an endpoint that answers 410 or has failed for days.

Endpoints do not wait for one another. A round settles the sends that ended since the last one
(each attempt kept, each delivery updated), then claims what is due, no more than brings an
endpoint to SENDS_PER_ENDPOINT sends in flight, and starts those sends without waiting for
them: a send that ends wakes the worker, and the next round settles it. A slow or hanging
receiver holds only its own endpoint's sends, and every other endpoint's deliveries go on.

Several replicas share the work: each claims its events (FOR UPDATE SKIP LOCKED on PostgreSQL,
the write lock on SQLite) and its deliveries (a lease, longer than a send may take, released
when the delivery is settled), so each event is delivered once between them. A resource's events
reach an endpoint in order: a delivery waits while an earlier one of the same resource is
pending."""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, cast

import aiohttp
from sqlalchemy import ColumnElement, Table, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.db.locks import hold_exclusively
from app.db.session import Database
from app.db.sql import insert_many
from app.outbox.models import Event
from app.webhooks import signing
from app.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.urls import AddressRefused, PublicResolver, delivery_problem

if TYPE_CHECKING:
    from app.webhooks.bus import EventBus  # bus.py imports payload() from here

logger = logging.getLogger(__name__)

# After the first try: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27 h in all).
RETRY_DELAYS = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=5)
# Sends in flight at once to one endpoint: a receiver that hangs holds this many, and no more.
# A fast one is sent up to this many a round (ten to twenty rounds a second): 32 keeps 200
# changes a second to one receiver as quick as when every due delivery went in each round.
SENDS_PER_ENDPOINT = 32
# Sends in flight at once in a process, over every endpoint: bounds its sockets (well under
# the 1,024 files a process may often open).
SENDS_MAX = 500
# A lease outlasts a send's timeout by this: a worker that died holding deliveries gives them
# up this long after the timeout, and a live one has settled them well before.
LEASE_MARGIN = timedelta(seconds=10)
BATCH = 200
# The worker's own connections: a round's transactions run one after another, and never wait
# for a connection behind the requests of a busy process.
CONNECTIONS = 2
OUTBOX_LOCK = "antring outbox"
GATHER_SECONDS = 0.05

_DELIVERY = cast(Table, WebhookDelivery.__table__)
_EVENT = cast(Table, Event.__table__)
_ENDPOINT = cast(Table, WebhookEndpoint.__table__)
_ATTEMPT = cast(Table, WebhookAttempt.__table__)


def _claim(now: datetime, *, lease: timedelta, limit: int) -> Any:
    """Leases up to `limit` due deliveries: the first pending one of each resource for its
    endpoint, no more of an endpoint than brings it to SENDS_PER_ENDPOINT leased, and the
    endpoints with the fewest in flight first (when room is short, every endpoint gets some),
    then the oldest. Numbered by window functions rather than checked by a NOT EXISTS per
    delivery, whose plan on stale statistics took 0.6 s with a thousand pending: the cost grows
    with the pending deliveries of the endpoints that have room, and no more."""
    d, ep = _DELIVERY.alias("d"), _ENDPOINT.alias("ep")

    def lease_free(delivery: Any) -> ColumnElement[bool]:
        return or_(delivery.c.leased_until.is_(None), delivery.c.leased_until < now)

    in_flight = (
        select(_DELIVERY.c.endpoint_id, func.count().label("leased"))
        .where(_DELIVERY.c.status == DeliveryStatus.pending, ~lease_free(_DELIVERY))
        .group_by(_DELIVERY.c.endpoint_id)
        .subquery("in_flight")
    )
    # The pending deliveries of the endpoints with room, numbered within their resource: a
    # resource's first may go, the others wait for it.
    pending = (
        select(
            d.c.id,
            d.c.endpoint_id,
            d.c.event_seq,
            d.c.next_attempt_at,
            d.c.leased_until,
            func.coalesce(in_flight.c.leased, 0).label("leased"),
            func.row_number()
            .over(partition_by=(d.c.endpoint_id, d.c.resource_key), order_by=d.c.event_seq)
            .label("nth"),
        )
        .join(ep, and_(ep.c.id == d.c.endpoint_id, ep.c.enabled))
        .outerjoin(in_flight, in_flight.c.endpoint_id == d.c.endpoint_id)
        .where(
            d.c.status == DeliveryStatus.pending,
            func.coalesce(in_flight.c.leased, 0) < SENDS_PER_ENDPOINT,
        )
        .subquery("pending")
    )
    # Those that may go now, numbered within their endpoint on from those it has in flight.
    place = (
        func.row_number().over(partition_by=pending.c.endpoint_id, order_by=pending.c.event_seq)
        + pending.c.leased
    )
    due = (
        select(pending.c.id, pending.c.event_seq, place.label("place"))
        .where(pending.c.nth == 1, pending.c.next_attempt_at <= now, lease_free(pending))
        .subquery("due")
    )
    chosen = (
        select(due.c.id)
        .where(due.c.place <= SENDS_PER_ENDPOINT)
        .order_by(due.c.place, due.c.event_seq)
        .limit(limit)
    )
    # Locked and checked again: another replica may have leased some since this one looked.
    free = (
        select(_DELIVERY.c.id)
        .where(
            _DELIVERY.c.id.in_(chosen),
            _DELIVERY.c.status == DeliveryStatus.pending,
            lease_free(_DELIVERY),
        )
        .with_for_update(skip_locked=True)
    )
    return (
        update(_DELIVERY)
        .where(_DELIVERY.c.id.in_(free))
        .values(leased_until=now + lease)
        .returning(_DELIVERY.c.id)
    )


# What sending a claimed delivery takes: its event, and the endpoint it goes to.
_DUE = (
    select(
        _DELIVERY.c.id,
        _DELIVERY.c.attempts,
        _EVENT.c.id.label("event_id"),
        _EVENT.c.tenant_id,
        _EVENT.c.type,
        _EVENT.c.resource_type,
        _EVENT.c.resource_id,
        _EVENT.c.data,
        _EVENT.c.request_id,
        _EVENT.c.occurred_at,
        _ENDPOINT.c.id.label("endpoint_id"),
        _ENDPOINT.c.url,
        _ENDPOINT.c.secret_encrypted,
        _ENDPOINT.c.previous_secret_encrypted,
        _ENDPOINT.c.previous_secret_expires_at,
        _ENDPOINT.c.failing_since,
    )
    .join(_EVENT, _EVENT.c.seq == _DELIVERY.c.event_seq)
    .join(_ENDPOINT, _ENDPOINT.c.id == _DELIVERY.c.endpoint_id)
    .order_by(_DELIVERY.c.event_seq)
)


class EventFields(Protocol):
    """What a receiver is told of an event."""

    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def tenant_id(self) -> uuid.UUID | None: ...
    @property
    def resource_type(self) -> str: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def data(self) -> dict[str, Any]: ...


class _Due(NamedTuple):
    """A claimed delivery: its event, and the endpoint it goes to."""

    id: uuid.UUID
    attempts: int
    event_id: uuid.UUID
    tenant_id: uuid.UUID | None
    type: str
    resource_type: str
    resource_id: str
    data: dict[str, Any]
    request_id: str | None
    occurred_at: datetime
    endpoint_id: uuid.UUID
    url: str
    secret_encrypted: str
    previous_secret_encrypted: str | None
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None


class _Outcome(NamedTuple):
    """What a send got: the receiver's status code, or the error that stopped it."""

    status_code: int | None
    error: str | None
    duration_ms: int


class _Ended(NamedTuple):
    """A send that ended, to settle: the delivery, when it was tried, and what it got."""

    due: _Due
    attempted_at: datetime
    outcome: _Outcome


def payload(event: EventFields) -> str:
    """The body every receiver gets: Standard Webhooks' type, timestamp and data."""
    return json.dumps(
        {
            "type": event.type,
            "timestamp": event.occurred_at.isoformat(),
            "data": {
                "tenant_id": str(event.tenant_id) if event.tenant_id else None,
                "resource": {"type": event.resource_type, "id": event.resource_id},
                "request_id": event.request_id,
                **event.data,
            },
        },
        separators=(",", ":"),
    )


class Dispatcher:
    def __init__(
        self,
        db: Database,
        cipher: PasswordCipher,
        *,
        allow_private: bool,
        timeout: float = 5.0,
        poll_seconds: float = 0.2,
        bus: "EventBus | None" = None,
    ) -> None:
        self._db = Database(db.settings.model_copy(update={"database_pool_size": CONNECTIONS}))
        self._bus = bus
        self._cipher = cipher
        self._allow_private = allow_private
        self._poll = poll_seconds
        self._timeout = timeout
        self._lease = timedelta(seconds=timeout) + LEASE_MARGIN
        self._http: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self._secrets_seen: dict[str, str] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._ended: list[_Ended] = []
        self._closing = False

    def wake(self) -> None:
        """Something was committed: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                busy = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook delivery step failed")
                busy = 0
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
            # A burst of writes (or of sends ending) wakes it many times: one round for all.
            await asyncio.sleep(GATHER_SECONDS)
            self._wake.clear()

    async def idle(self) -> None:
        """Returns once every send under way has ended and been settled."""
        while self._sending:
            await asyncio.wait(self._sending)
        await self.deliver_due(utcnow(), claim=False)

    async def close(self) -> None:
        # Sends under way may end, within their timeout, and are settled; no new one starts.
        # One cut short stays leased, and goes again once its lease has run out.
        self._closing = True
        if self._sending:
            await asyncio.wait(self._sending, timeout=self._timeout)
        sending = list(self._sending)
        for send in sending:
            send.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        try:
            await self.deliver_due(utcnow(), claim=False)
        except Exception:
            logger.exception("settling the last webhook sends failed")
        if self._http is not None:
            await self._http.close()
        if self._bus is not None:
            await self._bus.close()
        await self._db.dispose()

    async def step(self, now: datetime | None = None) -> int:
        """One round: fan out new events, settle the sends that ended and start sending what is
        due; returns how much it did. It waits for no send (`idle` does)."""
        now = now or utcnow()
        return await self.fan_out(now) + await self.deliver_due(now) + await self._publish(now)

    async def _publish(self, now: datetime) -> int:
        if self._bus is None:
            return 0
        try:
            return await self._bus.publish_pending(now)
        except Exception:
            # Broker down or a message refused: what it did not confirm goes next round.
            logger.exception("publishing events to the bus failed")
            return 0

    async def fan_out(self, now: datetime) -> int:
        async with self._db.session_scope() as session:
            # One fan-out at a time over every replica (and not beside the bus's publishing):
            # a resource's deliveries are made in the order of its events.
            if not await hold_exclusively(session, OUTBOX_LOCK):
                return 0
            claim = (
                select(Event.seq, Event.tenant_id, Event.type, Event.resource_type)
                .add_columns(Event.resource_id, Event.occurred_at)
                .where(Event.fanned_out_at.is_(None))
                .order_by(Event.seq)
                .limit(BATCH)
            )
            events = (await session.execute(claim)).all()
            if not events:
                return 0
            tenants = {e.tenant_id for e in events if e.tenant_id is not None}
            listeners: dict[uuid.UUID, list[tuple[uuid.UUID, list[str], datetime]]] = defaultdict(
                list
            )
            for endpoint in await session.execute(
                select(
                    WebhookEndpoint.id,
                    WebhookEndpoint.tenant_id,
                    WebhookEndpoint.event_types,
                    WebhookEndpoint.created_at,
                ).where(WebhookEndpoint.tenant_id.in_(tenants), WebhookEndpoint.enabled.is_(True))
            ):
                listeners[endpoint.tenant_id].append(
                    (endpoint.id, endpoint.event_types, endpoint.created_at)
                )
            deliveries = [
                {
                    "id": uuid.uuid4(),
                    "endpoint_id": endpoint_id,
                    "event_seq": event.seq,
                    "resource_key": f"{event.resource_type}:{event.resource_id}",
                    "status": DeliveryStatus.pending,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for event in events
                for endpoint_id, types, created_at in listeners.get(event.tenant_id, [])
                # An endpoint hears what happened once it was registered.
                if (not types or event.type in types) and created_at <= event.occurred_at
            ]
            # Core statements on the tables: the ORM's bulk path costs more than they do.
            if deliveries:
                await session.execute(insert(_DELIVERY), deliveries)
            await session.execute(
                update(_EVENT)
                .where(_EVENT.c.seq.in_([event.seq for event in events]))
                .values(fanned_out_at=now)
            )
        return len(events)

    async def deliver_due(self, now: datetime, *, claim: bool = True) -> int:
        """Settles the sends that ended, then claims what is due and starts sending it; returns
        how many it settled and started."""
        ended, self._ended = self._ended, []
        room = min(BATCH, SENDS_MAX - len(self._sending)) if claim and not self._closing else 0
        if not ended and room <= 0:
            return 0
        try:
            async with self._db.session_scope() as session:
                # Settled first: a resource's next delivery may then be claimed in this round.
                await self._settle(session, ended)
                claimed = await self._claim(session, now, limit=room) if room > 0 else []
        except BaseException:
            self._ended[:0] = ended  # settled next round
            raise
        for due in claimed:
            send = asyncio.create_task(self._send_and_report(due, now))
            self._sending.add(send)
            send.add_done_callback(self._sending.discard)
        return len(ended) + len(claimed)

    async def _claim(self, session: AsyncSession, now: datetime, *, limit: int) -> list[_Due]:
        ids = list(await session.scalars(_claim(now, lease=self._lease, limit=limit)))
        if not ids:
            return []
        where = _DELIVERY.c.id.in_(ids)
        return [_Due._make(row) for row in await session.execute(_DUE.where(where))]

    async def _send_and_report(self, due: _Due, now: datetime) -> None:
        """Sends a claimed delivery, for the next round to settle what it got."""
        try:
            outcome = await self._send(due, now)
        except Exception as error:
            logger.exception("webhook send failed")
            outcome = _Outcome(None, f"{type(error).__name__}: {str(error)[:200]}", 0)
        self._ended.append(_Ended(due, now, outcome))
        self._wake.set()

    def _decrypt(self, token: str) -> str:
        # Each secret is decrypted once per process, not once per delivery.
        secret = self._secrets_seen.get(token)
        if secret is None:
            if len(self._secrets_seen) > 10_000:
                self._secrets_seen.clear()
            secret = self._secrets_seen[token] = self._cipher.decrypt(token)
        return secret

    def _secrets(self, due: _Due, now: datetime) -> list[str]:
        found = [self._decrypt(due.secret_encrypted)]
        if (
            due.previous_secret_encrypted
            and due.previous_secret_expires_at
            and due.previous_secret_expires_at > now
        ):
            found.append(self._decrypt(due.previous_secret_encrypted))
        return found

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            # Kept connections to each receiver; aiohttp costs a tenth of httpx's CPU a request.
            # Connections go to the addresses its resolver checked; as many as sends may run.
            connector = aiohttp.TCPConnector(
                resolver=PublicResolver(allow_private=self._allow_private), limit=SENDS_MAX
            )
            self._http = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._http

    async def _send(self, due: _Due, now: datetime) -> _Outcome:
        refused = delivery_problem(due.url, allow_private=self._allow_private)
        if refused:
            return _Outcome(None, f"refused: {refused}", 0)
        began = time.perf_counter()
        body = payload(due)
        headers = signing.headers(
            message_id=f"msg_{due.event_id.hex}",
            sent_at=utcnow(),
            body=body,
            secrets_=self._secrets(due, now),
        )
        try:
            async with self._client().post(
                due.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            elapsed = int((time.perf_counter() - began) * 1000)
            if isinstance(error.__cause__, AddressRefused):
                return _Outcome(None, f"refused: {str(error.__cause__)[:200]}", elapsed)
            return _Outcome(None, f"{type(error).__name__}: {str(error)[:200]}", elapsed)
        return _Outcome(status, None, int((time.perf_counter() - began) * 1000))

    async def _settle(self, session: AsyncSession, ended: list[_Ended]) -> None:
        """Keeps each attempt, and updates each delivery and its endpoint by what it got."""
        if not ended:
            return
        # Those whose endpoint was deleted meanwhile are gone, and their attempts with them.
        ids = [sent.due.id for sent in ended]
        kept = set(await session.scalars(select(_DELIVERY.c.id).where(_DELIVERY.c.id.in_(ids))))
        ended = [sent for sent in ended if sent.due.id in kept]
        await insert_many(
            session,
            _ATTEMPT,
            [
                {
                    "id": uuid.uuid4(),
                    "delivery_id": due.id,
                    "attempted_at": attempted_at,
                    **outcome._asdict(),
                }
                for due, attempted_at, outcome in ended
            ],
        )
        # Most deliveries succeed: theirs are settled together, by status code and round.
        succeeded: dict[tuple[int, datetime], list[uuid.UUID]] = defaultdict(list)
        recovered: set[uuid.UUID] = set()
        for due, attempted_at, (status_code, error, _) in ended:
            if status_code is not None and 200 <= status_code < 300:
                succeeded[status_code, attempted_at].append(due.id)
                if due.failing_since is not None:
                    recovered.add(due.endpoint_id)
            else:
                await self._settle_failure(session, due, status_code, error, attempted_at)
        for (status_code, attempted_at), ids in succeeded.items():
            await session.execute(
                update(_DELIVERY)
                .where(_DELIVERY.c.id.in_(ids))
                .values(
                    status=DeliveryStatus.succeeded,
                    delivered_at=attempted_at,
                    attempts=_DELIVERY.c.attempts + 1,
                    leased_until=None,
                    last_status_code=status_code,
                    last_error=None,
                )
            )
        if recovered:
            await session.execute(
                update(_ENDPOINT).where(_ENDPOINT.c.id.in_(recovered)).values(failing_since=None)
            )

    async def _settle_failure(
        self,
        session: AsyncSession,
        due: _Due,
        status_code: int | None,
        error: str | None,
        now: datetime,
    ) -> None:
        attempts = due.attempts + 1
        values: dict[str, object] = {
            "attempts": attempts,
            "leased_until": None,
            "last_status_code": status_code,
            "last_error": error,
        }
        endpoint_values: dict[str, object] = {}
        if status_code == 410:
            values["status"] = DeliveryStatus.failed
            endpoint_values |= {
                "enabled": False,
                "disabled_reason": "The receiver answered 410 Gone.",
            }
        else:
            failing_since = due.failing_since or now
            endpoint_values["failing_since"] = failing_since
            if attempts >= len(RETRY_DELAYS):
                values["status"] = DeliveryStatus.failed
            else:
                values["next_attempt_at"] = now + RETRY_DELAYS[attempts]
            if now - failing_since >= DISABLE_AFTER:
                endpoint_values |= {
                    "enabled": False,
                    "disabled_reason": f"Every delivery failed for {DISABLE_AFTER.days} days.",
                }
        await session.execute(update(_DELIVERY).where(_DELIVERY.c.id == due.id).values(**values))
        await session.execute(
            update(_ENDPOINT).where(_ENDPOINT.c.id == due.endpoint_id).values(**endpoint_values)
        )
