"""A stream opened: its subscription to the process's follower, what was missed since the
client's Last-Event-ID, and the messages the stream sends."""

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sse_starlette import ServerSentEvent

from app.db.session import Database
from app.errors import Code
from app.events.exceptions import LastEventIdForm, TooManyStreams
from app.outbox.follower import (
    OutboxFollower,
    StreamEvent,
    StreamLimitReached,
    Subscription,
    events_after,
    seq_of,
)

# Sent instead of a replay the service cannot make: the client reloads what it shows.
RESET = "reset"
# The last message of a stream whose reader fell too far behind.
DROPPED = "dropped"


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
        rule = Code.too_many_streams_for_key if full.scope == "key" else Code.too_many_streams
        raise TooManyStreams(rule, limit=full.limit) from None
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


def _message(event: StreamEvent) -> ServerSentEvent:
    return ServerSentEvent(data=event.body, event=event.type, id=str(event.id))


async def messages(follower: OutboxFollower, opened: Opened) -> AsyncIterator[ServerSentEvent]:
    """The stream: a reset or the missed events, then each event as it commits, until the
    client leaves or falls too far behind."""
    subscription = opened.subscription
    try:
        if opened.missed is None:
            yield ServerSentEvent(
                data=json.dumps({"reason": "The events since Last-Event-ID are not kept."}),
                event=RESET,
            )
        replayed = {event.seq for event in opened.missed or []}
        last_replayed = max(replayed, default=0)
        for event in opened.missed or []:
            yield _message(event)
        while True:
            event = await subscription.queue.get()
            if event is None:
                yield ServerSentEvent(
                    data=json.dumps({"reason": "The stream was read too slowly."}), event=DROPPED
                )
                return
            if event.seq <= last_replayed and event.seq in replayed:
                continue
            yield _message(event)
    finally:
        follower.unsubscribe(subscription)
