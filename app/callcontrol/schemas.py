import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)

from app.devices.schemas import DeviceName
from app.dialing import DestinationClass
from app.errors import Code
from app.schemas import DateTime, OmittableModel, SingleLine, WholeNumber, rule_error
from app.tenants.schemas import SipDomain

CallId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    SingleLine,
    Field(
        description="The SIP Call-ID: the key that makes retries safe.",
        examples=["a84b4c76e66710@pc33"],
    ),
]
Destination = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^\+?[0-9*#]+$"),
    Field(description="The dialled number.", examples=["0901234567"]),
]


class Reason(StrEnum):
    ok = "ok"
    outbound_disabled = "outbound_disabled"
    quota_exhausted = "quota_exhausted"
    device_disabled = "device_disabled"
    unknown_caller = "unknown_caller"
    destination_not_allowed = "destination_not_allowed"
    too_many_calls = "too_many_calls"
    outbound_suspended = "outbound_suspended"


class SipAccount(BaseModel):
    """What a SIP registrar needs to challenge a REGISTER (digest HA1, never the password)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    device_id: uuid.UUID
    username: str
    realm: str
    enabled: bool = Field(description="The device and its user are both enabled.")
    device_enabled: bool
    user_enabled: bool
    ha1: str = Field(description="MD5(username:realm:password), RFC 2617.")
    ha1_sha256: str = Field(description="SHA-256(username:realm:password), RFC 8760.")
    auto_answer: bool
    max_contacts: int = Field(
        examples=[5],
        description="Contacts the account may hold at once (the tenant's limit for the "
        "device's kind); a registrar replaces the oldest with a new one past it.",
    )


class SipAccountName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, StringConstraints(max_length=64)]
    domain: SipDomain


LOOKUPS_MAX = 200


class SipAccountLookups(BaseModel):
    """Registrar lookups sent together, as an edge gathers those its REGISTERs wait on."""

    model_config = ConfigDict(extra="forbid")

    accounts: list[SipAccountName] = Field(min_length=1, max_length=LOOKUPS_MAX)


class SipAccountsFound(BaseModel):
    accounts: dict[str, SipAccount | None] = Field(
        description="Each account asked for, keyed `username@domain` as asked; null when "
        "there is no such account (or it is another tenant's).",
        examples=[{"1001@acme.sip.example": None}],
    )


class SipHeader(BaseModel):
    name: str
    value: str


class ExtensionRoute(BaseModel):
    """Where a call to an extension goes: the SIP usernames of the holder's enabled devices."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    number: str
    user_enabled: bool
    auto_answer: bool
    targets: list[str] = Field(examples=[["lan.web", "lan.desk"]])
    auto_answer_headers: list[SipHeader] = Field(
        description="Headers a proxy adds to the INVITE when auto-answer is on (empty when off). "
        "`Call-Info: <sip:domain>;answer-after=0` is honoured by Polycom, Yealink, Snom, "
        "Grandstream, Fanvil and most softphones; `Alert-Info: <http://127.0.0.1>;"
        "info=alert-autoanswer` by Yealink, Grandstream, Cisco SPA/MPP and Fanvil."
    )
    auto_answer_header_block: str = Field(
        description="The same headers as one CRLF-terminated block, ready for a proxy's append_hf."
    )


class CallerRef(OmittableModel):
    """The caller: a device's SIP username, or a user id."""

    exactly_one_of = ("username", "user_id")

    domain: SipDomain = Field(examples=["acme.sip.antring.vn"])
    username: DeviceName | None = None
    user_id: uuid.UUID | None = None


class AuthorizationRequest(CallerRef):
    call_id: CallId
    destination: Destination


class AuthorizationOut(BaseModel):
    call_id: str
    allowed: bool
    reason: Reason
    max_duration_seconds: int | None = Field(description="null: no limit on this call.")
    emergency: bool
    user_id: uuid.UUID | None
    destination_class: DestinationClass | None = Field(
        description="The class the tenant's dial plan puts the number in (`emergency` for "
        "its emergency numbers); null for an unknown caller.",
        examples=["mobile"],
    )


# The Unix seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the ends of a date-time.
_FIRST_UNIX_SECOND = -62_135_596_800
_LAST_UNIX_SECOND = 253_402_300_799


def _unix_seconds(value: Any) -> Any:
    """An integer is Unix seconds, never milliseconds (pydantic would guess which); anything
    else must be an RFC 3339 date-time."""
    if isinstance(value, bool):
        raise rule_error(Code.call_start_form)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's integer
    if isinstance(value, int):
        if not _FIRST_UNIX_SECOND <= value <= _LAST_UNIX_SECOND:
            raise rule_error(Code.call_start_out_of_range)
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str | datetime):
        raise rule_error(Code.call_start_form)
    return value


class UsageReport(CallerRef):
    call_id: CallId
    destination: Destination
    started_at: Annotated[
        DateTime,
        BeforeValidator(_unix_seconds),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "format": "date-time"},
                    {
                        "type": "integer",
                        "minimum": _FIRST_UNIX_SECOND,
                        "maximum": _LAST_UNIX_SECOND,
                    },
                ]
            }
        ),
    ] = Field(
        description="When the call started (answer time): an RFC 3339 date-time with its "
        "offset, or integer Unix seconds. It must lie in the current month or the previous one "
        "(the tenant's calendar) and at most a few minutes ahead of the service's clock.",
        examples=["2026-11-25T09:30:00+07:00"],
    )
    duration_seconds: Annotated[StrictInt, Field(ge=0, le=7 * 86400), WholeNumber] = Field(
        examples=[125]
    )
