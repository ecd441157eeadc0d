from typing import Annotated

from fastapi import Header, Request

from app.auth.deps import ReadAccess
from app.deps import DatabaseDep, SettingsDep
from app.errors import InvalidInput, ResponseHeaders, responses
from app.events import service
from app.events.exceptions import TooManyStreams
from app.events.response import EventStreamResponse
from app.events.schemas import STREAM_DESCRIPTION, StreamTypes
from app.outbox.follower import OutboxFollower
from app.routing import api_router

router = api_router(prefix="/v1/events", tags=["events"])


@router.get(
    "/stream",
    status_code=200,
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": STREAM_DESCRIPTION,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **responses(
            TooManyStreams,
            ResponseHeaders(429, {"Retry-After": "Seconds to wait before trying again."}),
            InvalidInput,
        ),
    },
)
async def stream_events(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    scope: ReadAccess,
    types: StreamTypes = None,
    last_event_id: Annotated[
        str | None,
        Header(
            description="The id of the last event received: the events since are sent first, "
            "in order (or a `reset` when they are no longer kept).",
            json_schema_extra={"format": "uuid"},
        ),
    ] = None,
) -> EventStreamResponse:
    """Stream the tenant's events as they happen (Server-Sent Events)."""
    follower: OutboxFollower = request.app.state.follower
    opened = await service.open_stream(
        db,
        follower,
        tenant_id=scope.tenant_id,
        owner=str(scope.principal.id),
        types=types or [],
        last_event_id=last_event_id,
        replay_max=settings.stream_replay_events,
    )
    subscription = opened.subscription
    return EventStreamResponse(
        service.messages(
            subscription,
            opened.missed,
            heartbeat=settings.stream_heartbeat_seconds,
            expires_at=scope.principal.expires_at,
        ),
        send_timeout=settings.stream_send_timeout_seconds,
        on_disconnect=lambda: subscription.end(service.GONE),
        on_close=lambda: follower.unsubscribe(subscription),
    )
