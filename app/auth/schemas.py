import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.auth.models import Role
from app.schemas import TrimmedLine


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100), TrimmedLine] = Field(
        examples=["kamailio-edge-1"]
    )
    role: Role = Field(
        description="admin: everything in the tenant; viewer: read only; call_control: the "
        "call-control routes only.",
        examples=["call_control"],
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    name: str
    role: Role
    prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key, shown only in this answer.")
