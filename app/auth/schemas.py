import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.auth.models import Role
from app.clock import utcnow
from app.errors import Code
from app.schemas import DateTime, TrimmedLine, rule_error


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100), TrimmedLine] = Field(
        examples=["kamailio-edge-1"]
    )
    role: Role = Field(
        description="admin: everything in the tenant; operator: the agents, their devices, "
        "extensions, quotas and switches, imports and exports (not keys, webhooks or the "
        "tenant's settings); viewer: read only, never a password; call_control: the "
        "call-control routes only; scim: the tenant's SCIM directory, /scim/v2 only.",
        examples=["call_control"],
    )
    expires_at: DateTime | None = Field(
        default=None,
        description="When the key stops working (401 after it); omitted: never.",
        examples=["2027-06-30T00:00:00Z"],
    )

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise rule_error(Code.expiry_in_past)
        return value


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    name: str
    role: Role
    prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key, shown only in this answer.")
