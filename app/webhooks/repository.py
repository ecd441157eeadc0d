"""The queries of webhooks: endpoints and their deliveries as the API reads and changes them,
and the delivery worker's claims, fan-out and settling. The worker's statements are Core, on
the tables: the ORM's unit of work and bulk path cost more than they do."""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Table, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.sql import insert_many
from app.outbox.models import Event
from app.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

_DELIVERY = cast(Table, WebhookDelivery.__table__)
_EVENT = cast(Table, Event.__table__)
_ENDPOINT = cast(Table, WebhookEndpoint.__table__)
_ATTEMPT = cast(Table, WebhookAttempt.__table__)


# -- Endpoints and deliveries, as the API reads and changes them


async def find_endpoint(
    session: AsyncSession, *, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint | None:
    return await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.tenant_id == tenant_id
        )
    )


async def list_endpoints(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[WebhookEndpoint], int]:
    where = WebhookEndpoint.tenant_id == tenant_id
    total = await session.scalar(select(func.count()).select_from(WebhookEndpoint).where(where))
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(where)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total or 0


class DeliveryRow(NamedTuple):
    """A delivery as its endpoint's history shows it: with its event's id and type."""

    delivery: WebhookDelivery
    event_id: uuid.UUID
    event_type: str


async def list_deliveries(
    session: AsyncSession, *, endpoint_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[DeliveryRow], int]:
    """The endpoint's deliveries, newest first."""
    where = WebhookDelivery.endpoint_id == endpoint_id
    total = await session.scalar(select(func.count()).select_from(WebhookDelivery).where(where))
    rows = (
        await session.execute(
            select(WebhookDelivery, Event.id, Event.type)
            .join(Event, Event.seq == WebhookDelivery.event_seq)
            .where(where)
            .order_by(WebhookDelivery.event_seq.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return [DeliveryRow._make(row) for row in rows], total or 0


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """Every attempt of these deliveries, oldest first, by delivery."""
    found: dict[uuid.UUID, list[WebhookAttempt]] = defaultdict(list)
    if not delivery_ids:
        return found
    for attempt in await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(list(delivery_ids)))
        .order_by(WebhookAttempt.attempted_at)
    ):
        found[attempt.delivery_id].append(attempt)
    return found


async def reschedule(
    session: AsyncSession, *, endpoint_id: uuid.UUID, delivery_id: uuid.UUID, at: datetime
) -> bool:
    """Makes the endpoint's delivery pending again, due `at`; False when it has no such one."""
    done = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
        .values(
            status=DeliveryStatus.pending,
            attempts=0,
            next_attempt_at=at,
            leased_until=None,
        )
    )
    return bool(getattr(done, "rowcount", 0))


# -- The outbox as its readers take it


async def unpublished_events(session: AsyncSession, *, limit: int) -> list[Event]:
    """The first events not yet on the bus, in order."""
    claim = select(Event).where(Event.published_at.is_(None)).order_by(Event.seq)
    return list(await session.scalars(claim.limit(limit)))


class NewEvent(NamedTuple):
    """An event not yet fanned out: what choosing its endpoints takes."""

    seq: int
    tenant_id: uuid.UUID | None
    type: str
    resource_type: str
    resource_id: str
    occurred_at: datetime


class Listener(NamedTuple):
    """An enabled endpoint of a tenant: the types it wants (none: every one), and since when."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    event_types: list[str]
    created_at: datetime


async def events_to_fan_out(session: AsyncSession, *, limit: int) -> list[NewEvent]:
    claim = (
        select(Event.seq, Event.tenant_id, Event.type, Event.resource_type)
        .add_columns(Event.resource_id, Event.occurred_at)
        .where(Event.fanned_out_at.is_(None))
        .order_by(Event.seq)
        .limit(limit)
    )
    return [NewEvent._make(row) for row in await session.execute(claim)]


async def listeners(session: AsyncSession, tenant_ids: Iterable[uuid.UUID]) -> list[Listener]:
    """The enabled endpoints of these tenants."""
    rows = await session.execute(
        select(
            WebhookEndpoint.id,
            WebhookEndpoint.tenant_id,
            WebhookEndpoint.event_types,
            WebhookEndpoint.created_at,
        ).where(WebhookEndpoint.tenant_id.in_(tenant_ids), WebhookEndpoint.enabled.is_(True))
    )
    return [Listener._make(row) for row in rows]


async def add_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(_DELIVERY), rows)


async def mark_fanned_out(session: AsyncSession, seqs: list[int], *, at: datetime) -> None:
    await session.execute(update(_EVENT).where(_EVENT.c.seq.in_(seqs)).values(fanned_out_at=at))


# -- Claiming due deliveries, and settling what their sends got


class Due(NamedTuple):
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


def _claim(now: datetime, *, lease: timedelta, limit: int, per_endpoint: int) -> Any:
    """Leases up to `limit` due deliveries: the first pending one of each resource for its
    endpoint, no more of an endpoint than brings it to `per_endpoint` leased, and the endpoints
    with the fewest in flight first (when room is short, every endpoint gets some), then the
    oldest. Numbered by window functions rather than checked by a NOT EXISTS per delivery, whose
    plan on stale statistics took 0.6 s with a thousand pending: the cost grows with the pending
    deliveries of the endpoints that have room, and no more."""
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
            func.coalesce(in_flight.c.leased, 0) < per_endpoint,
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
        .where(due.c.place <= per_endpoint)
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


async def claim_due(
    session: AsyncSession, now: datetime, *, lease: timedelta, limit: int, per_endpoint: int
) -> list[Due]:
    """Leases what is due (see `_claim`) until `now + lease`, and reads what sending it takes."""
    statement = _claim(now, lease=lease, limit=limit, per_endpoint=per_endpoint)
    ids = list(await session.scalars(statement))
    if not ids:
        return []
    where = _DELIVERY.c.id.in_(ids)
    return [Due._make(row) for row in await session.execute(_DUE.where(where))]


async def existing_deliveries(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these deliveries still there (an endpoint deleted takes its deliveries along)."""
    return set(await session.scalars(select(_DELIVERY.c.id).where(_DELIVERY.c.id.in_(ids))))


async def add_attempts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_many(session, _ATTEMPT, rows)


async def mark_succeeded(
    session: AsyncSession, ids: list[uuid.UUID], *, status_code: int, at: datetime
) -> None:
    await session.execute(
        update(_DELIVERY)
        .where(_DELIVERY.c.id.in_(ids))
        .values(
            status=DeliveryStatus.succeeded,
            delivered_at=at,
            attempts=_DELIVERY.c.attempts + 1,
            leased_until=None,
            last_status_code=status_code,
            last_error=None,
        )
    )


async def mark_recovered(session: AsyncSession, endpoint_ids: set[uuid.UUID]) -> None:
    """These endpoints no longer fail."""
    if endpoint_ids:
        await session.execute(
            update(_ENDPOINT).where(_ENDPOINT.c.id.in_(endpoint_ids)).values(failing_since=None)
        )


async def update_delivery(
    session: AsyncSession, delivery_id: uuid.UUID, values: dict[str, object]
) -> None:
    await session.execute(update(_DELIVERY).where(_DELIVERY.c.id == delivery_id).values(**values))


async def update_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, values: dict[str, object]
) -> None:
    await session.execute(update(_ENDPOINT).where(_ENDPOINT.c.id == endpoint_id).values(**values))
