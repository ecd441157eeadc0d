import re
import uuid
from datetime import datetime
from functools import cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from app.dialing import (
    DEFAULT_OUTBOUND_CLASSES,
    VIETNAM_PLAN,
    DestinationClass,
    plan_of_json,
    plan_rules_json,
)
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


def _distinct(values: list[DestinationClass]) -> list[DestinationClass]:
    return sorted(set(values), key=list(DestinationClass).index)


DestinationClasses = Annotated[
    list[DestinationClass],
    Field(max_length=len(DestinationClass)),
    AfterValidator(_distinct),
]
DIAL_PREFIX = Annotated[str, StringConstraints(pattern=r"^[0-9]{0,8}$")]
DialLength = Annotated[StrictInt, Field(ge=1, le=32), WholeNumber]


class DialRuleIn(BaseModel):
    """Numbers that start with `prefix` and have `min_length` to `max_length` digits are of
    `destination_class`; of the rules that fit a number, the longest prefix decides."""

    model_config = ConfigDict(extra="forbid")

    prefix: DIAL_PREFIX = Field(examples=["1900"])
    min_length: DialLength = Field(examples=[8])
    max_length: DialLength = Field(examples=[10])
    destination_class: DestinationClass = Field(examples=["premium"])

    @model_validator(mode="after")
    def _lengths_in_order(self) -> "DialRuleIn":
        if self.min_length > self.max_length:
            raise rule_error(Code.dial_rule_lengths)
        return self


class DialPlanIn(BaseModel):
    """How dialled numbers are sorted into destination classes. A number given as
    `+<country_code>…` or `00<country_code>…` is read as `0…`; any other `+` as `00`; a number
    no rule fits is `other`."""

    model_config = ConfigDict(extra="forbid")

    country_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,3}$")] = Field(
        examples=["84"]
    )
    rules: list[DialRuleIn] = Field(min_length=1, max_length=200)


class DialPlanOut(BaseModel):
    country_code: str
    rules: list[DialRuleIn]
    default: bool = Field(description="true: the default plan (Vietnam's numbering).")


_DEFAULT_PLAN = plan_rules_json(VIETNAM_PLAN)

MaxConcurrentCalls = Annotated[StrictInt, Field(ge=1, le=1000), WholeNumber]
MaxCallsPerMinute = Annotated[StrictInt, Field(ge=1, le=10_000), WholeNumber]
MaxContacts = Annotated[StrictInt, Field(ge=1, le=100), WholeNumber]


class RegistrationLimits(BaseModel):
    """Contacts one SIP account may hold at once, by its kind. A REGISTER that adds a contact
    past the limit replaces the account's oldest contact: a phone is never locked out."""

    web: MaxContacts = Field(examples=[5])
    softphone: MaxContacts = Field(examples=[2])
    ip_phone: MaxContacts = Field(examples=[1])


class RegistrationLimitsUpdate(PatchModel):
    web: MaxContacts | None = None
    softphone: MaxContacts | None = None
    ip_phone: MaxContacts | None = None


class OutboundPolicy(BaseModel):
    """What a tenant's agents may call, and how much at once."""

    dial_plan: DialPlanOut
    outbound_classes: list[DestinationClass] = Field(
        description="The destination classes an agent may call unless the agent has more or "
        "fewer. Emergency numbers are always allowed; the agent's outbound switch is above all.",
        examples=[list(DEFAULT_OUTBOUND_CLASSES)],
    )
    max_concurrent_calls: int | None = Field(
        examples=[4],
        description="Outbound calls one agent may have at once unless the agent has a limit of "
        "their own; null: no limit.",
    )
    max_calls_per_minute: int | None = Field(
        examples=[10],
        description="More outbound calls than this in a minute suspend the agent's outbound "
        "calls until an operator lifts it; null: no limit.",
    )
    registration_limits: RegistrationLimits
    version: int = Field(description="The tenant's version: send it as If-Match with a change.")

    @classmethod
    def of(cls, tenant: Any) -> "OutboundPolicy":
        plan = tenant.dial_plan
        shown = plan_rules_json(plan_of_json(plan)) if plan is not None else _DEFAULT_PLAN
        return cls(
            dial_plan=DialPlanOut(**shown, default=plan is None),
            outbound_classes=tenant.outbound_classes,
            max_concurrent_calls=tenant.max_concurrent_calls,
            max_calls_per_minute=tenant.max_calls_per_minute,
            registration_limits=RegistrationLimits(
                web=tenant.max_contacts_web,
                softphone=tenant.max_contacts_softphone,
                ip_phone=tenant.max_contacts_ip_phone,
            ),
            version=tenant.version,
        )


class OutboundPolicyUpdate(PatchModel):
    nullable = frozenset({"dial_plan", "max_concurrent_calls", "max_calls_per_minute"})

    dial_plan: DialPlanIn | None = Field(
        default=None, description="null: back to the default plan (Vietnam's numbering)."
    )
    outbound_classes: DestinationClasses | None = None
    max_concurrent_calls: MaxConcurrentCalls | None = None
    max_calls_per_minute: MaxCallsPerMinute | None = None
    registration_limits: RegistrationLimitsUpdate | None = None
