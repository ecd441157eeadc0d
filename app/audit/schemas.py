import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, Field

from app.outbox.models import AuditEntry


class ActorOut(BaseModel):
    """Who acted: an API key, or a person (or a client) signed in with a token."""

    kind: Literal["api_key", "token"]
    id: str = Field(description="The key's id, or the token's subject (`sub`).")
    name: str | None = Field(examples=["Nguyễn Thị Lan"])
    email: str | None = Field(description="From the token; null for a key.")
    client_id: str | None = Field(description="The token's client; null for a key.")
    role: str | None = Field(examples=["operator"])
    address: str | None = Field(description="The address the request came from.")


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    action: str = Field(examples=["user.updated"])
    resource_type: str = Field(examples=["user"])
    resource_id: str
    user_id: uuid.UUID | None = Field(description="The user (agent) the change concerns.")
    actor: ActorOut | None = Field(description="Who acted; null for the service's own jobs.")
    actor_key_id: uuid.UUID | None = Field(
        description="The API key that acted; null for a token and for jobs (see `actor`)."
    )
    actor_key_name: str | None = Field(examples=["ops-console"])
    actor_role: str | None = Field(examples=["admin"])
    before: dict[str, Any] | None = Field(
        description="The changed fields before (secrets redacted).",
        examples=[{"outbound_allowed": True}],
    )
    after: dict[str, Any] | None = Field(
        description="The changed fields after.", examples=[{"outbound_allowed": False}]
    )
    request_id: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> Self:
        actor = None
        if entry.actor_kind is not None and entry.actor_id is not None:
            actor = ActorOut(
                kind="token" if entry.actor_kind == "token" else "api_key",
                id=entry.actor_id,
                name=entry.actor_name,
                email=entry.actor_email,
                client_id=entry.actor_client_id,
                role=entry.actor_role,
                address=entry.actor_address,
            )
        return cls(
            id=entry.id,
            occurred_at=entry.occurred_at,
            action=entry.action,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
            user_id=entry.user_id,
            actor=actor,
            actor_key_id=entry.actor_key_id,
            actor_key_name=entry.actor_key_name,
            actor_role=entry.actor_role,
            before=entry.before,
            after=entry.after,
            request_id=entry.request_id,
        )
