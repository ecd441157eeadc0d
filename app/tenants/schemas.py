import re
import uuid
from datetime import datetime
from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from pydantic.config import JsonDict

from app.errors import Code
from app.schemas import Matches, PatchModel, TrimmedLine, WholeNumber, rule_error

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"


def _loadable(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@cache
def time_zones() -> tuple[str, ...]:
    """The IANA time zones this machine knows (read once, when first needed: not at start-up)."""
    return tuple(sorted(name for name in available_timezones() if _loadable(name)))


def _check_timezone(value: str) -> str:
    if value not in time_zones():
        raise rule_error(Code.time_zone)
    return value


def _list_time_zones(schema: JsonDict) -> None:
    zones = time_zones()
    schema["enum"] = list(zones)
    # Names for a generated client's enum members: Etc/GMT+7 and Etc/GMT-7 must not both be
    # ETC_GMT7.
    schema["x-enum-varnames"] = [
        re.sub(r"-(?=[0-9])", "_MINUS_", re.sub(r"\+(?=[0-9])", "_PLUS_", zone)) for zone in zones
    ]


def _check_emergency(values: list[str]) -> list[str]:
    return sorted(set(values))


# Refused, not normalized: a domain is compared as it is stored, and a look-alike (the Kelvin
# sign lower-cases to "k") must not become someone else's domain.
SipDomain = Annotated[
    str,
    StringConstraints(max_length=253),
    Matches(rf"^{_LABEL}(\.{_LABEL})*$", Code.host_name),
]
TimeZoneName = Annotated[
    str, AfterValidator(_check_timezone), Field(json_schema_extra=_list_time_zones)
]
EmergencyNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{2,6}$")]
EmergencyNumbers = Annotated[
    list[EmergencyNumber],
    Field(min_length=1, max_length=20),
    AfterValidator(_check_emergency),
]
TenantName = Annotated[str, StringConstraints(min_length=1, max_length=200), TrimmedLine]
BillingIncrement = Annotated[StrictInt, Field(ge=1, le=3600), WholeNumber]


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TenantName = Field(examples=["Acme Call Center"])
    sip_domain: SipDomain = Field(
        description="The tenant's SIP domain, also the digest realm of its devices.",
        examples=["acme.sip.antring.vn"],
    )
    timezone: TimeZoneName = Field(
        default="Asia/Ho_Chi_Minh", description="IANA time zone: decides when a month starts."
    )
    emergency_numbers: EmergencyNumbers = Field(
        default_factory=lambda: ["113", "114", "115"],
        description="Always callable, never charged, never usable as extensions.",
    )
    billing_increment_seconds: BillingIncrement = Field(
        default=60, description="Each outbound call is rounded up to a multiple of this."
    )


class TenantUpdate(PatchModel):
    name: TenantName | None = None
    sip_domain: SipDomain | None = Field(
        default=None, description="Changing it recomputes every device's digest HA1."
    )
    timezone: TimeZoneName | None = None
    emergency_numbers: EmergencyNumbers | None = None
    billing_increment_seconds: BillingIncrement | None = None


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    version: int = Field(
        examples=[1],
        description="The tenant's version: its ETag, to send as If-Match with a change.",
    )
    name: str
    sip_domain: str
    timezone: str
    emergency_numbers: list[str]
    billing_increment_seconds: int
    created_at: datetime
    updated_at: datetime
