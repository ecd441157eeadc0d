import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: datetime
    action: str = Field(examples=["user.updated"])
    resource_type: str = Field(examples=["user"])
    resource_id: str
    user_id: uuid.UUID | None = Field(description="The user (agent) the change concerns.")
    actor_key_id: uuid.UUID | None = Field(description="The API key that acted; null for jobs.")
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
