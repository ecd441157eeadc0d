import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from app.errors import Code
from app.outbox.catalogue import EVENT_TYPES
from app.schemas import (
    CONTROL_CHARACTERS,
    IPV6,
    SPACES,
    Matches,
    PatchModel,
    SingleLine,
    rule_error,
)
from app.webhooks.models import DeliveryStatus
from app.webhooks.urls import url_problem


def _check_url(value: str) -> str:
    problem = url_problem(value)
    if problem:
        raise rule_error(problem.rule, **problem.params)
    return value


def _check_types(values: list[str]) -> list[str]:
    unknown = sorted(set(values) - set(EVENT_TYPES))
    if unknown:
        raise rule_error(Code.unknown_event_types, types=unknown)
    return sorted(set(values))


_LABEL = "[A-Za-z0-9-]{1,63}"
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# http or https, a host (a DNS name or an IP address) without credentials, an optional port, and
# whatever follows without spaces or control characters.
URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://({_LABEL}(\.{_LABEL})*|\[({IPV6})\])(:{_PORT})?"
    rf"([/?#][^{CONTROL_CHARACTERS}{SPACES}]*)?$"
)
WebhookUrl = Annotated[
    str,
    StringConstraints(min_length=8, max_length=2000),
    Matches(URL_PATTERN, Code.webhook_url),
    AfterValidator(_check_url),
    Field(examples=["https://billing.example.com/antring/events"]),
]
EventType = Annotated[str, Field(json_schema_extra={"enum": sorted(EVENT_TYPES)})]
EventTypes = Annotated[
    list[EventType],
    Field(
        max_length=len(EVENT_TYPES),
        description="The event types to receive; empty: all of them.",
        examples=[["quota.threshold_reached", "call.refused_for_quota"]],
    ),
    AfterValidator(_check_types),
]
Description = Annotated[
    str, StringConstraints(max_length=200), SingleLine, AfterValidator(str.strip)
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    event_types: EventTypes = Field(default_factory=list)
    description: Description | None = None
    enabled: StrictBool = True


class WebhookUpdate(PatchModel):
    nullable = frozenset({"description"})

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: StrictBool | None = Field(
        default=None, description="true again after it was disabled: deliveries resume."
    )


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why deliveries stopped: a 410 answer, or days of failures."
    )
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Signs every delivery (Standard Webhooks); shown here and on rotation only.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class SecretRotated(BaseModel):
    secret: str = Field(description="The new secret, shown here once.")
    previous_secret_expires_at: datetime = Field(
        description="Until then deliveries are signed with the old secret too."
    )


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


class EventTypeOut(BaseModel):
    type: str
    description: str
