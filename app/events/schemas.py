from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator

from app.errors import Code
from app.outbox.catalogue import EVENT_TYPES
from app.schemas import rule_error

STREAM_DESCRIPTION = (
    "Server-Sent Events, one per event: `event` is its type, `id` its id, `data` the body the "
    "webhooks are sent (JSON). A comment line (`: ping …`) comes when nothing else has for a "
    "while. `event: reset` says the events since Last-Event-ID are no longer kept: reload what "
    "is shown. `event: dropped` ends a stream read too slowly, `event: expired` one whose token "
    "or key expired: connect again (with a fresh token) and Last-Event-ID."
)


def _split(value: object) -> object:
    # `types=a,b` and `types=a&types=b` alike.
    if isinstance(value, list):
        return [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value


def _check_types(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    unknown = sorted(set(values) - set(EVENT_TYPES))
    if unknown:
        raise rule_error(Code.unknown_event_types, types=unknown)
    return sorted(set(values))


StreamTypes = Annotated[
    list[str] | None,
    Query(
        description="The event types to send, comma-separated or repeated; none: all of them.",
        examples=["device.registered,device.unregistered,quota.used_changed"],
    ),
    BeforeValidator(_split),
    AfterValidator(_check_types),
]
