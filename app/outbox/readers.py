"""What the outbox's readers (the webhook fan-out, the platform's bus) share: the body an event
is sent with, the lock they take turns at, and the signal that a change was committed."""

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

# Held (across every replica) by whoever reads the outbox in order: one fan-out or one publishing
# round at a time, so a resource's deliveries are made, and its events published, in order.
OUTBOX_LOCK = "antring outbox"
# A burst of writes wakes a reader many times: one round for all of them.
GATHER_SECONDS = 0.05


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


class OutboxReaders:
    """The outbox's readers in one process: each woken when a change commits, and taking turns
    at OUTBOX_LOCK, so that neither finds the other holding it and waits a whole poll."""

    def __init__(self) -> None:
        self._wakes: list[asyncio.Event] = []
        self.turn = asyncio.Lock()

    def waker(self) -> asyncio.Event:
        """A reader's own wake-up, set by `written` (and by whatever else it waits for)."""
        wake = asyncio.Event()
        self._wakes.append(wake)
        return wake

    def written(self) -> None:
        """Something was committed: every reader looks now rather than at its next poll."""
        for wake in self._wakes:
            wake.set()


async def keep_reading(
    step: Callable[[], Awaitable[int]],
    wake: asyncio.Event,
    *,
    poll_seconds: float,
    logger: logging.Logger,
    failed: str,
) -> None:
    """A reader's loop: a round, then, when it found nothing to do, a wait for its wake-up or
    the poll. A round that fails is logged, and the next one tries again."""
    while True:
        try:
            busy = await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(failed)
            busy = 0
        if not busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll_seconds)
        await asyncio.sleep(GATHER_SECONDS)
        wake.clear()
