"""A stream opened: its subscription to the process's follower, what was missed since the
client's Last-Event-ID, and the messages the stream sends."""

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

from sse_starlette import ServerSentEvent

from app.clock import utcnow
from app.db.session import Database
from app.errors import Code
from app.events.exceptions import LastEventIdForm, TooManyStreams
from app.outbox.follower import (
    DROPPED,
    OutboxFollower,
    StreamEvent,
    StreamLimitReached,
    Subscription,
    events_after,
    seq_of,
)

# Sent instead of a replay the service cannot make: the client reloads what it shows.
RESET = "reset"
# The last event of a stream whose credential (a token, a key with an expiry) has expired; a
# stream read too slowly ends with DROPPED.
EXPIRED = "expired"
_REASONS = {
    DROPPED: "The stream was read too slowly.",
    EXPIRED: "The credential the stream was opened with has expired.",
}


_LIMIT_RULES = {
    "key": Code.too_many_streams_for_key,
    "tenant": Code.too_many_streams_for_tenant,
    "process": Code.too_many_streams,
}


@dataclass(frozen=True, slots=True)
class Opened:
    subscription: Subscription
    # What the client missed, in order; None: it cannot be replayed (a reset).
    missed: list[StreamEvent] | None


async def open_stream(
    db: Database,
    follower: OutboxFollower,
    *,
    tenant_id: uuid.UUID,
    owner: str,
    types: list[str],
    last_event_id: str | None,
    replay_max: int,
) -> Opened:
    """Subscribes, then reads what was missed since `last_event_id`: an event committed in
    between is in one or the other, and `messages` sends it once."""
    resume_from: uuid.UUID | None = None
    if last_event_id is not None:
        try:
            resume_from = uuid.UUID(last_event_id)
        except ValueError:
            raise LastEventIdForm() from None
    try:
        subscription = await follower.subscribe(tenant_id=tenant_id, types=types, owner=owner)
    except StreamLimitReached as full:
        raise TooManyStreams(_LIMIT_RULES[full.scope], limit=full.limit) from None
    if resume_from is None:
        return Opened(subscription, [])
    try:
        async with db.session_scope() as session:
            seq = await seq_of(session, tenant_id=tenant_id, event_id=resume_from)
            missed = (
                await events_after(
                    session, tenant_id=tenant_id, seq=seq, types=types, limit=replay_max + 1
                )
                if seq is not None
                else None
            )
    except BaseException:
        follower.unsubscribe(subscription)
        raise
    if missed is not None and len(missed) > replay_max:
        missed = None
    return Opened(subscription, missed)


# Events sent together when several wait: one write, not one each.
SEND_TOGETHER = 64
# How a stream ends without a last event: its client left, or the process stops (the client
# connects again, to another replica, with Last-Event-ID).
GONE = "gone"
STOPPING = "stopping"


def _notice(event: str, reason: str) -> bytes:
    return ServerSentEvent(data=json.dumps({"reason": reason}), event=event).encode()


def _ping() -> bytes:
    return ServerSentEvent(comment=f"ping - {utcnow()}").encode()


async def messages(
    subscription: Subscription,
    missed: list[StreamEvent] | None,
    *,
    heartbeat: float,
    expires_at: datetime | None,
) -> AsyncGenerator[bytes, None]:
    """The stream: a reset (`missed` None) or the missed events, then each event as it commits
    (and a heartbeat when nothing was sent for `heartbeat` seconds), until the subscription
    ends: the client left, fell too far behind, its credential expired (`expires_at`) or the
    process stops."""
    expiry = (
        asyncio.get_running_loop().call_later(
            max((expires_at - utcnow()).total_seconds(), 0), subscription.end, EXPIRED
        )
        if expires_at is not None
        else None
    )
    try:
        if missed is None:
            yield _notice(RESET, "The events since Last-Event-ID are not kept.")
        # The numbers alone are kept, to send none of these events twice.
        replayed = {event.seq for event in missed or []}
        last_replayed = max(replayed, default=0)
        for event in missed or []:
            yield event.message
        missed = None
        while True:
            if not await subscription.wait(heartbeat):
                yield _ping()
                continue
            if subscription.ended:
                reason = subscription.ended
                if reason in _REASONS:
                    yield _notice(reason, _REASONS[reason])
                return
            chunk = b"".join(
                event.message
                for event in subscription.take(SEND_TOGETHER)
                if not (event.seq <= last_replayed and event.seq in replayed)
            )
            if chunk:
                yield chunk
    finally:
        if expiry is not None:
            expiry.cancel()
