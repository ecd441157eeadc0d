"""The platform's bus: the outbox's events published, in `seq` order, to a RabbitMQ topic exchange
(routing key: the event's type) for the platform's own services. At least once: an event is
marked published only when the broker confirmed it; consumers drop repeats by message id. It
runs beside the webhook delivery worker, woken by the same commits."""

import asyncio
import logging
from datetime import datetime

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection, AbstractRobustExchange

from app.clock import utcnow
from app.db.locks import hold_exclusively
from app.db.session import Database
from app.outbox.models import Event
from app.outbox.readers import OUTBOX_LOCK, OutboxReaders, keep_reading, payload
from app.webhooks import repository

logger = logging.getLogger(__name__)

BATCH = 200


def message(event: Event) -> aio_pika.Message:
    """What a listener receives: the webhooks' body, and what to route and drop repeats by."""
    return aio_pika.Message(
        payload(event).encode(),
        content_type="application/json",
        message_id=f"msg_{event.id.hex}",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={
            "tenant_id": str(event.tenant_id) if event.tenant_id else "",
            "event_type": event.type,
        },
    )


class EventBus:
    """Publishes the outbox to a durable topic exchange over one robust connection, kept open
    between rounds. Several replicas share the work: each claims its events (FOR UPDATE SKIP
    LOCKED on PostgreSQL, the write lock on SQLite), so each is published once between them."""

    def __init__(
        self,
        db: Database,
        *,
        url: str,
        exchange: str = "antring.events",
        timeout: float = 5.0,
        readers: OutboxReaders | None = None,
    ) -> None:
        self._db = db
        self._readers = readers or OutboxReaders()
        self._wake = self._readers.waker()
        self._url = url
        self._exchange_name = exchange
        # Bounds connecting and each confirm: a broker that does not answer fails the round
        # (rather than holding the claimed rows, on SQLite the write lock, for long).
        self._timeout = timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._opening = asyncio.Lock()

    async def run(self, *, poll_seconds: float) -> None:
        """Publishes round after round, woken by each commit (or at the poll)."""
        await keep_reading(
            self.publish_pending,
            self._wake,
            poll_seconds=poll_seconds,
            logger=logger,
            # Broker down or a message refused: what it did not confirm goes next round.
            failed="publishing events to the bus failed",
        )

    async def publish_pending(self, now: datetime | None = None) -> int:
        """One round: publish up to BATCH unpublished events in order; returns how many.

        Raises when the broker cannot be reached or refuses a message (after marking the
        events it confirmed before that one): the caller logs it and tries again next round,
        when the rest are published from the first unconfirmed one on."""
        now = now or utcnow()
        exchange = await self._open()
        failure: Exception | None = None
        published = 0
        # Taking turns with the webhook fan-out in this process, and one publisher at a time over
        # every replica: events leave in their order.
        async with self._readers.turn, self._db.session_scope() as session:
            if not await hold_exclusively(session, OUTBOX_LOCK):
                return 0
            for event in await repository.unpublished_events(session, limit=BATCH):
                try:
                    # Not mandatory: an event type no service listens to is dropped by the
                    # broker, and still confirmed.
                    await exchange.publish(
                        message(event), event.type, mandatory=False, timeout=self._timeout
                    )
                except Exception as error:
                    # Keep the order: what follows waits for this one, next round.
                    failure = error
                    break
                event.published_at = now
                published += 1
        if failure is not None:
            raise failure
        return published

    async def close(self) -> None:
        async with self._opening:
            connection, self._connection = self._connection, None
            self._channel = self._exchange = None
            if connection is not None:
                await connection.close()

    async def _open(self) -> AbstractRobustExchange:
        """The exchange on the open channel; connects on first use and after a failed start.
        Once connected, the robust connection reconnects by itself (and declares the exchange
        again); until it has, publishing fails and the round with it."""
        async with self._opening:
            if self._exchange is not None:
                return self._exchange
            connection = await aio_pika.connect_robust(self._url, timeout=self._timeout)
            try:
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.declare_exchange(
                    self._exchange_name,
                    aio_pika.ExchangeType.TOPIC,
                    durable=True,
                    timeout=self._timeout,
                )
            except BaseException:
                await connection.close()
                raise
            self._connection, self._channel, self._exchange = connection, channel, exchange
            return exchange
