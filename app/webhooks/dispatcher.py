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
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.db.locks import hold_exclusively
from app.db.session import Database
from app.outbox.models import Event
from app.webhooks import signing
from app.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.urls import address_problem

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
OUTBOX_LOCK = "antring outbox"
GATHER_SECONDS = 0.05

_CLAIM = """
UPDATE webhook_delivery SET leased_until = :until
WHERE id IN (
    SELECT d.id FROM webhook_delivery d
    JOIN webhook_endpoint ep ON ep.id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= :now
      AND (d.leased_until IS NULL OR d.leased_until < :now) AND ep.enabled
      AND NOT EXISTS (
          SELECT 1 FROM webhook_delivery earlier
          WHERE earlier.endpoint_id = d.endpoint_id AND earlier.resource_key = d.resource_key
            AND earlier.status = 'pending' AND earlier.event_seq < d.event_seq)
    ORDER BY d.event_seq
    LIMIT :batch {lock}
)
RETURNING id
"""


def payload(event: Event) -> str:
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
        self._db = db
        self._bus = bus
        self._cipher = cipher
        self._allow_private = allow_private
        self._poll = poll_seconds
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
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
        await self._http.aclose()
        if self._bus is not None:
            await self._bus.close()

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
            if deliveries:
                await session.execute(insert(WebhookDelivery), deliveries)
            await session.execute(
                update(Event)
                .where(Event.seq.in_([event.seq for event in events]))
                .values(fanned_out_at=now)
            )
        return len(events)

    async def deliver_due(self, now: datetime) -> int:
        lock = "FOR UPDATE OF d SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        async with self._db.session_scope() as session:
            claimed = list(
                await session.scalars(
                    text(_CLAIM.format(lock=lock)),
                    {"until": now + LEASE, "now": now, "batch": BATCH},
                )
            )
        if not claimed:
            return 0
        async with self._db.session_scope() as session:
            rows = (
                await session.execute(
                    select(WebhookDelivery, Event, WebhookEndpoint)
                    .join(Event, Event.seq == WebhookDelivery.event_seq)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.id.in_([uuid.UUID(str(c)) for c in claimed]))
                )
            ).all()
        outcomes = await asyncio.gather(
            *(self._send(event, endpoint, now) for _, event, endpoint in rows)
        )
        async with self._db.session_scope() as session:
            # Most deliveries succeed: theirs are settled together, by status code.
            succeeded: dict[int, list[uuid.UUID]] = defaultdict(list)
            recovered: set[uuid.UUID] = set()
            for (delivery, _, endpoint), (status_code, error, elapsed) in zip(
                rows, outcomes, strict=True
            ):
                session.add(
                    WebhookAttempt(
                        delivery_id=delivery.id,
                        attempted_at=now,
                        status_code=status_code,
                        error=error,
                        duration_ms=elapsed,
                    )
                )
                if status_code is not None and 200 <= status_code < 300:
                    succeeded[status_code].append(delivery.id)
                    if endpoint.failing_since is not None:
                        recovered.add(endpoint.id)
                else:
                    await self._settle_failure(session, delivery, endpoint, status_code, error, now)
            for status_code, ids in succeeded.items():
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(ids))
                    .values(
                        status=DeliveryStatus.succeeded,
                        delivered_at=now,
                        attempts=WebhookDelivery.attempts + 1,
                        leased_until=None,
                        last_status_code=status_code,
                        last_error=None,
                    )
                )
            if recovered:
                await session.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id.in_(recovered))
                    .values(failing_since=None)
                )
        return len(rows)

    def _decrypt(self, token: str) -> str:
        # Each secret is decrypted once per process, not once per delivery.
        secret = self._secrets_seen.get(token)
        if secret is None:
            if len(self._secrets_seen) > 10_000:
                self._secrets_seen.clear()
            secret = self._secrets_seen[token] = self._cipher.decrypt(token)
        return secret

    def _secrets(self, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
        found = [self._decrypt(endpoint.secret_encrypted)]
        if (
            endpoint.previous_secret_encrypted
            and endpoint.previous_secret_expires_at
            and endpoint.previous_secret_expires_at > now
        ):
            found.append(self._decrypt(endpoint.previous_secret_encrypted))
        return found

    async def _send(
        self, event: Event, endpoint: WebhookEndpoint, now: datetime
    ) -> tuple[int | None, str | None, int]:
        """(status code, error, milliseconds)."""
        began = time.perf_counter()
        refused = await address_problem(endpoint.url, allow_private=self._allow_private)
        if refused:
            return None, f"refused: {refused}", 0
        body = payload(event)
        headers = signing.headers(
            message_id=f"msg_{event.id.hex}",
            sent_at=utcnow(),
            body=body,
            secrets_=self._secrets(endpoint, now),
        )
        try:
            response = await self._http.post(endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            elapsed = int((time.perf_counter() - began) * 1000)
            return None, f"{type(error).__name__}: {str(error)[:200]}", elapsed
        elapsed = int((time.perf_counter() - began) * 1000)
        return response.status_code, None, elapsed

    async def _settle_failure(
        self,
        session: AsyncSession,
        delivery: WebhookDelivery,
        endpoint: WebhookEndpoint,
        status_code: int | None,
        error: str | None,
        now: datetime,
    ) -> None:
        attempts = delivery.attempts + 1
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
            failing_since = endpoint.failing_since or now
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
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values)
        )
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id)
            .values(**endpoint_values)
        )
