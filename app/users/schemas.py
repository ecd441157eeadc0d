import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.devices.schemas import DeviceSummary
from app.schemas import PatchModel, SingleLine

DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    SingleLine,
    Field(examples=["Nguyễn Thị Lan"]),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    SingleLine,
    Field(examples=["lan@acme.vn"]),
]
ExternalRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    SingleLine,
    Field(description="The agent's id in the company's identity system; unique in the tenant."),
]
LimitMinutes = Annotated[
    int,
    Field(ge=0, le=1_000_000, description="Monthly outbound minutes; null means unlimited."),
]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName
    email: Email | None = None
    external_ref: ExternalRef | None = None
    outbound_allowed: bool = True
    auto_answer: bool = False
    limit_minutes: LimitMinutes | None = None


class UserUpdate(PatchModel):
    nullable = frozenset({"email", "external_ref", "limit_minutes"})

    display_name: DisplayName | None = None
    email: Email | None = None
    external_ref: ExternalRef | None = None
    enabled: bool | None = Field(
        default=None, description="A disabled user's devices cannot register or call."
    )
    outbound_allowed: bool | None = None
    auto_answer: bool | None = None
    limit_minutes: LimitMinutes | None = None


class MinutesSummary(BaseModel):
    """The Users table's "minutes called / minutes allowed"."""

    period: str = Field(examples=["2026-11"])
    used_minutes: int = Field(examples=[125])
    limit_minutes: int | None = Field(examples=[600], description="null: unlimited")


class UserOut(BaseModel):
    id: uuid.UUID
    display_name: str
    email: str | None
    external_ref: str | None
    enabled: bool
    outbound_allowed: bool
    auto_answer: bool
    limit_minutes: int | None
    devices: list[DeviceSummary]
    extensions: list[str] = Field(examples=[["102"]])
    minutes: MinutesSummary
    created_at: datetime
    updated_at: datetime


class Toggles(BaseModel):
    outbound_allowed: bool = Field(description="May the user call outside the company at all.")
    auto_answer: bool = Field(
        description="The user's phones answer hotline and internal calls by themselves."
    )


class TogglesUpdate(PatchModel):
    outbound_allowed: bool | None = None
    auto_answer: bool | None = None
