"""The delivery worker: fans the outbox's events out to the endpoints that want them, and sends
what is due, signed, with a short timeout; keeps every attempt, and retries or gives up as the
policy (`policy.py`) says. Its queries are in `repository.py`.

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
import logging
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import NamedTuple

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.db.locks import hold_exclusively
from app.db.session import Database
from app.outbox.readers import OUTBOX_LOCK, OutboxReaders, keep_reading, payload
from app.webhooks import policy, repository, signing
from app.webhooks.models import DeliveryStatus
from app.webhooks.repository import Due
from app.webhooks.urls import AddressRefused, PublicResolver, delivery_problem

logger = logging.getLogger(__name__)

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


class _Outcome(NamedTuple):
    """What a send got: the receiver's status code, or the error that stopped it."""

    status_code: int | None
    error: str | None
    duration_ms: int


class _Ended(NamedTuple):
    """A send that ended, to settle: the delivery, when it was tried, and what it got."""

    due: Due
    attempted_at: datetime
    outcome: _Outcome


class Dispatcher:
    def __init__(
        self,
        db: Database,
        cipher: PasswordCipher,
        *,
        allow_private: bool,
        timeout: float = 5.0,
        poll_seconds: float = 0.2,
        readers: OutboxReaders | None = None,
    ) -> None:
        self._db = Database(db.settings.model_copy(update={"database_pool_size": CONNECTIONS}))
        self._readers = readers or OutboxReaders()
        self._cipher = cipher
        self._allow_private = allow_private
        self._poll = poll_seconds
        self._timeout = timeout
        self._lease = timedelta(seconds=timeout) + LEASE_MARGIN
        self._http: aiohttp.ClientSession | None = None
        self._wake = self._readers.waker()
        self._secrets_seen: dict[str, str] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._ended: list[_Ended] = []
        self._closing = False

    def wake(self) -> None:
        """Something was committed: the outbox's readers (this worker, and the bus beside it)
        look now rather than at their next poll."""
        self._readers.written()

    async def run(self) -> None:
        await keep_reading(
            self.step,
            self._wake,
            poll_seconds=self._poll,
            logger=logger,
            failed="webhook delivery step failed",
        )

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
        await self._db.dispose()

    async def step(self, now: datetime | None = None) -> int:
        """One round: fan out new events, settle the sends that ended and start sending what is
        due; returns how much it did. It waits for no send (`idle` does)."""
        now = now or utcnow()
        return await self.fan_out(now) + await self.deliver_due(now)

    async def fan_out(self, now: datetime) -> int:
        # Taking turns with the bus in this process, and one fan-out at a time over every
        # replica (not beside the bus's publishing either): a resource's deliveries are made in
        # the order of its events.
        async with self._readers.turn, self._db.session_scope() as session:
            if not await hold_exclusively(session, OUTBOX_LOCK):
                return 0
            events = await repository.events_to_fan_out(session, limit=BATCH)
            if not events:
                return 0
            tenants = {e.tenant_id for e in events if e.tenant_id is not None}
            listeners: dict[uuid.UUID | None, list[repository.Listener]] = defaultdict(list)
            for endpoint in await repository.listeners(session, tenants):
                listeners[endpoint.tenant_id].append(endpoint)
            await repository.add_deliveries(
                session,
                [
                    {
                        "id": uuid.uuid4(),
                        "endpoint_id": endpoint.id,
                        "event_seq": event.seq,
                        "resource_key": f"{event.resource_type}:{event.resource_id}",
                        "status": DeliveryStatus.pending,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for event in events
                    for endpoint in listeners.get(event.tenant_id, [])
                    # An endpoint hears what happened once it was registered.
                    if (not endpoint.event_types or event.type in endpoint.event_types)
                    and endpoint.created_at <= event.occurred_at
                ],
            )
            await repository.mark_fanned_out(session, [event.seq for event in events], at=now)
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
                claimed = (
                    await repository.claim_due(
                        session,
                        now,
                        lease=self._lease,
                        limit=room,
                        per_endpoint=SENDS_PER_ENDPOINT,
                    )
                    if room > 0
                    else []
                )
        except BaseException:
            self._ended[:0] = ended  # settled next round
            raise
        for due in claimed:
            send = asyncio.create_task(self._send_and_report(due, now))
            self._sending.add(send)
            send.add_done_callback(self._sending.discard)
        return len(ended) + len(claimed)

    async def _send_and_report(self, due: Due, now: datetime) -> None:
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

    def _secrets(self, due: Due, now: datetime) -> list[str]:
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

    async def _send(self, due: Due, now: datetime) -> _Outcome:
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
        kept = await repository.existing_deliveries(session, [sent.due.id for sent in ended])
        ended = [sent for sent in ended if sent.due.id in kept]
        await repository.add_attempts(
            session,
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
                continue
            attempts = due.attempts + 1
            delivery, endpoint = policy.after_failure(
                attempts=attempts,
                status_code=status_code,
                failing_since=due.failing_since,
                now=attempted_at,
            )
            await repository.update_delivery(
                session,
                due.id,
                {
                    "attempts": attempts,
                    "leased_until": None,
                    "last_status_code": status_code,
                    "last_error": error,
                    **delivery,
                },
            )
            await repository.update_endpoint(session, due.endpoint_id, endpoint)
        for (status_code, attempted_at), ids in succeeded.items():
            await repository.mark_succeeded(session, ids, status_code=status_code, at=attempted_at)
        await repository.mark_recovered(session, recovered)
