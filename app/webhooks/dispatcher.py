"""The delivery worker: fans the outbox's events out to the endpoints that want them, and sends
what is due, signed, with a short timeout; retries on a schedule of about a day (Svix's), keeps
every attempt, and disables an endpoint that answers 410 or has failed for days. Several
replicas share the work: each claims its events (FOR UPDATE SKIP LOCKED on PostgreSQL, the write
lock on SQLite) and its deliveries (a lease), so each event is delivered once between them. A
resource's events reach an endpoint in order: a delivery waits while an earlier one of the same
resource is pending."""

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
from sqlalchemy import Table, exists, insert, or_, select, update
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
# Longer than a round of sends (they run together, each within the 5 s timeout): a worker
# that died holding deliveries gives them up this long after it claimed them.
LEASE = timedelta(seconds=15)
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


def _claim(now: datetime) -> Any:
    """Leases the due deliveries: up to BATCH, the first pending one of each resource for its
    endpoint, oldest first."""
    d, earlier, ep = _DELIVERY.alias("d"), _DELIVERY.alias("earlier"), _ENDPOINT.alias("ep")
    due = (
        select(d.c.id)
        .join(ep, ep.c.id == d.c.endpoint_id)
        .where(
            d.c.status == DeliveryStatus.pending,
            d.c.next_attempt_at <= now,
            or_(d.c.leased_until.is_(None), d.c.leased_until < now),
            ep.c.enabled,
            ~exists().where(
                earlier.c.endpoint_id == d.c.endpoint_id,
                earlier.c.resource_key == d.c.resource_key,
                earlier.c.status == DeliveryStatus.pending,
                earlier.c.event_seq < d.c.event_seq,
            ),
        )
        .order_by(d.c.event_seq)
        .limit(BATCH)
        .with_for_update(of=d, skip_locked=True)
    )
    return (
        update(_DELIVERY)
        .where(_DELIVERY.c.id.in_(due))
        .values(leased_until=now + LEASE)
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
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self._secrets_seen: dict[str, str] = {}

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
            # A burst of writes wakes it many times: one round for all of them, not one each.
            await asyncio.sleep(GATHER_SECONDS)
            self._wake.clear()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._bus is not None:
            await self._bus.close()
        await self._db.dispose()

    async def step(self, now: datetime | None = None) -> int:
        """One round: fan out new events, send what is due; returns how much it did."""
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

    async def deliver_due(self, now: datetime) -> int:
        async with self._db.session_scope() as session:
            ids = list(await session.scalars(_claim(now)))
            if not ids:
                return 0
            where = _DELIVERY.c.id.in_(ids)
            claimed = [_Due._make(row) for row in await session.execute(_DUE.where(where))]
        outcomes = await asyncio.gather(*(self._send(due, now) for due in claimed))
        async with self._db.session_scope() as session:
            await insert_many(
                session,
                _ATTEMPT,
                [
                    {
                        "id": uuid.uuid4(),
                        "delivery_id": due.id,
                        "attempted_at": now,
                        "status_code": status_code,
                        "error": error,
                        "duration_ms": elapsed,
                    }
                    for due, (status_code, error, elapsed) in zip(claimed, outcomes, strict=True)
                ],
            )
            # Most deliveries succeed: theirs are settled together, by status code.
            succeeded: dict[int, list[uuid.UUID]] = defaultdict(list)
            recovered: set[uuid.UUID] = set()
            for due, (status_code, error, _) in zip(claimed, outcomes, strict=True):
                if status_code is not None and 200 <= status_code < 300:
                    succeeded[status_code].append(due.id)
                    if due.failing_since is not None:
                        recovered.add(due.endpoint_id)
                else:
                    await self._settle_failure(session, due, status_code, error, now)
            for status_code, ids in succeeded.items():
                await session.execute(
                    update(_DELIVERY)
                    .where(_DELIVERY.c.id.in_(ids))
                    .values(
                        status=DeliveryStatus.succeeded,
                        delivered_at=now,
                        attempts=_DELIVERY.c.attempts + 1,
                        leased_until=None,
                        last_status_code=status_code,
                        last_error=None,
                    )
                )
            if recovered:
                await session.execute(
                    update(_ENDPOINT)
                    .where(_ENDPOINT.c.id.in_(recovered))
                    .values(failing_since=None)
                )
        return len(claimed)

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
            # Connections go to the addresses its resolver checked.
            connector = aiohttp.TCPConnector(
                resolver=PublicResolver(allow_private=self._allow_private)
            )
            self._http = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._http

    async def _send(self, due: _Due, now: datetime) -> tuple[int | None, str | None, int]:
        """(status code, error, milliseconds)."""
        refused = delivery_problem(due.url, allow_private=self._allow_private)
        if refused:
            return None, f"refused: {refused}", 0
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
                return None, f"refused: {str(error.__cause__)[:200]}", elapsed
            return None, f"{type(error).__name__}: {str(error)[:200]}", elapsed
        elapsed = int((time.perf_counter() - began) * 1000)
        return status, None, elapsed

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
