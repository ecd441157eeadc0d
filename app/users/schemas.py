import uuid
from datetime import datetime

from pydantic import BaseModel, Field, StrictBool

from app.devices.schemas import DeviceCreated, DeviceOut, DeviceSummary, PasswordRotated
from app.dialing import DestinationClass
from app.extensions.schemas import ExtensionOut
from app.quotas.schemas import QuotaOut
from app.schemas import PatchModel


class MinutesSummary(BaseModel):
    """The Users table's "minutes called / minutes allowed"."""

    period: str = Field(examples=["2026-11"])
    used_minutes: int = Field(examples=[125])
    limit_minutes: int | None = Field(examples=[600], description="null: unlimited")
    version: int = Field(
        examples=[1],
        description='The quota\'s version: its ETag (`"1"`), to send as If-Match when setting '
        "the limit. Only a change of the limit raises it.",
    )


class OutboundLimits(BaseModel):
    """The Users table's limits: what the agent may call, and how much at once."""

    classes: list[DestinationClass] = Field(
        description="The destination classes the agent may call: the tenant's, with "
        "`extra_classes` and without `removed_classes`. Emergency numbers are always allowed; "
        "`outbound_allowed` off or a suspension refuses every other call.",
        examples=[["emergency", "internal", "domestic", "mobile", "toll_free"]],
    )
    extra_classes: list[DestinationClass] = Field(examples=[["international"]])
    removed_classes: list[DestinationClass] = Field(examples=[[]])
    max_concurrent_calls: int | None = Field(
        examples=[4],
        description="Outbound calls at once (the agent's or the tenant's); null: no limit.",
    )
    own_max_concurrent_calls: int | None = Field(
        examples=[None], description="The agent's own limit; null: the tenant's applies."
    )
    max_calls_per_minute: int | None = Field(
        examples=[10],
        description="The tenant's velocity limit: one more call in a minute suspends the "
        "agent's outbound calls; null: none.",
    )
    suspended: bool = Field(
        description="Outbound calls suspended by the velocity limit (or by hand) until an "
        "operator lifts it (`outbound_suspended: false`)."
    )
    suspended_at: datetime | None


class UserOut(BaseModel):
    id: uuid.UUID
    version: int = Field(
        examples=[3],
        description='The user\'s version: its ETag (`"3"`), to send as If-Match with a change '
        "of the user or its switches. Every change of the user raises it.",
    )
    display_name: str
    email: str | None
    external_ref: str | None
    enabled: bool
    outbound_allowed: bool
    auto_answer: bool
    limit_minutes: int | None
    outbound: OutboundLimits
    devices: list[DeviceSummary]
    extensions: list[str] = Field(examples=[["102"]])
    minutes: MinutesSummary
    created_at: datetime
    updated_at: datetime


class UserCreated(UserOut):
    default_device_password: str = Field(
        description="The password of the default SIP account (the one device in `devices`), "
        "shown here once; later only in the device's config view.",
        examples=["qP4xN8vK2mR7tW3yZ6bA"],
    )


class Toggles(BaseModel):
    outbound_allowed: bool = Field(description="May the user call outside the company at all.")
    auto_answer: bool = Field(
        description="The user's phones answer hotline and internal calls by themselves."
    )


class TogglesUpdate(PatchModel):
    outbound_allowed: StrictBool | None = None
    auto_answer: StrictBool | None = None


_ROW = Field(
    description="The user's row in the Users table as the change left it (its versions "
    "included): what the console redraws, without reading the user again."
)


class UserRow(BaseModel):
    """What a deletion from a user's row answers when asked (`Prefer: return=representation`)."""

    user: UserOut = _ROW


class DeviceCreatedWithUser(DeviceCreated):
    user: UserOut = _ROW


class DeviceWithUser(DeviceOut):
    user: UserOut = _ROW


class PasswordRotatedWithUser(PasswordRotated):
    user: UserOut = _ROW


class ExtensionWithUser(ExtensionOut):
    user: UserOut = _ROW


class QuotaWithUser(QuotaOut):
    user: UserOut = _ROW


class TogglesWithUser(Toggles):
    user: UserOut = _ROW
