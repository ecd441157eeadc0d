import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.user_record.schemas import LimitMinutes


class QuotaOut(BaseModel):
    version: int = Field(
        examples=[1],
        description="The quota's version, as its ETag: only a change of the limit raises it.",
    )
    limit_minutes: int | None = Field(examples=[600], description="null: unlimited")
    used_seconds: int = Field(examples=[7440], description="Charged this month, after rounding.")
    used_minutes: int = Field(examples=[124], description="used_seconds in minutes, rounded up.")
    held_seconds: int = Field(
        examples=[0], description="Held by calls in progress until their usage is reported."
    )
    remaining_seconds: int | None = Field(
        examples=[28560], description="What new calls may still use; null when unlimited."
    )
    period: str = Field(examples=["2026-11"], description="The month, in the tenant's time zone.")
    resets_at: datetime = Field(
        examples=["2026-12-01T00:00:00+07:00"], description="Next local month start."
    )


class QuotaUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit_minutes: LimitMinutes | None = Field(
        description="Minutes allowed each month; null for unlimited.", examples=[600]
    )


class QuotaHistoryEntry(BaseModel):
    period: str = Field(examples=["2026-10"])
    limit_minutes: int | None = Field(
        description="The limit when the month closed; null: unlimited."
    )
    used_seconds: int
    used_minutes: int


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    call_id: str
    user_id: uuid.UUID
    device_id: uuid.UUID | None
    destination: str
    started_at: datetime
    duration_seconds: int
    charged_seconds: int = Field(description="Rounded up to the tenant's billing increment.")
    period: str = Field(description="The month charged, in the tenant's time zone.")
    emergency: bool
