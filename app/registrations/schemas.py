"""What the SIP edges report of an account's contacts, and a device's live registrations as
the API lists them."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    StringConstraints,
)

from app.devices.models import Transport
from app.devices.schemas import SIP_USERNAME, ContactCount, Registered
from app.errors import Code
from app.schemas import (
    CONTROL_CHARACTERS,
    IP_ADDRESS_PATTERN,
    SPACES,
    Matches,
    OmittableModel,
    SingleLine,
    WholeNumber,
)
from app.tenants.schemas import SipDomain

# Unix seconds up to the last second of the year 9999, the last a date-time holds.
_LAST_UNIX_SECOND = 253_402_300_799

EdgeName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$"),
    Field(
        description="The reporting SIP edge: 1 to 64 letters, digits, '.', '_', ':' or '-'. "
        "Each edge's contacts are its own: a report replaces only what the same edge reported.",
        examples=["edge-1"],
    ),
]


SipUri = Annotated[
    str,
    StringConstraints(max_length=512),
    Matches(f"^[Ss][Ii][Pp][Ss]?:[^{CONTROL_CHARACTERS}{SPACES}]+$", Code.sip_uri),
    Field(
        description="A contact as the phone registered it: a SIP URI (sip: or sips:, any "
        "case), up to 512 characters, without spaces or control characters.",
        examples=["sip:lan.web@10.0.0.7:5070;transport=tcp"],
    ),
]


class ReportedContact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact: SipUri
    expires_at: Annotated[StrictInt, Field(ge=0, le=_LAST_UNIX_SECOND), WholeNumber] = Field(
        description="When the registration expires, in Unix seconds: after `at` and after the "
        "service's clock.",
        examples=[1796390307],
    )


class ReportSource(BaseModel):
    """Where the REGISTER came from, as the edge received it."""

    model_config = ConfigDict(extra="forbid")

    address: Annotated[
        str,
        StringConstraints(max_length=64),
        Matches(IP_ADDRESS_PATTERN, Code.ip_address),
    ] = Field(description="The IPv4 or IPv6 address.", examples=["10.0.0.7"])
    port: Annotated[StrictInt, Field(ge=1, le=65535), WholeNumber] = Field(examples=[5070])
    transport: Transport = Field(examples=["tcp"])


class AccountReport(OmittableModel):
    """What one edge holds of one account at `at`: either all its contacts there (`contacts`),
    or the contacts that ended at `at` (`expired`)."""

    exactly_one_of = ("contacts", "expired")

    domain: SipDomain = Field(
        description="The tenant's SIP domain.", examples=["acme.sip.antring.vn"]
    )
    username: Annotated[
        str,
        StringConstraints(pattern=rf"^{SIP_USERNAME.pattern}$"),
        Field(
            description="The device's SIP username (any case).",
            examples=["lan.web"],
        ),
    ]
    at: Annotated[float, Strict()] = Field(
        ge=0,
        le=_LAST_UNIX_SECOND,
        allow_inf_nan=False,
        description="The edge's clock when it read what it reports, in Unix seconds (a "
        "fraction allowed); at most ANTRING_USAGE_FUTURE_SECONDS ahead of the service's clock. "
        "A contact already changed by a later report is left as that report left it.",
        examples=[1796386707.689488],
    )
    contacts: list[ReportedContact] | None = Field(
        default=None,
        max_length=32,
        description="Every contact of the account on this edge; empty: it has none left there "
        "(it unregistered). Give this or `expired`.",
    )
    expired: list[SipUri] | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="Contacts that expired or whose connection closed at `at`; the others stay. "
        "Give this or `contacts`.",
        examples=[["sip:lan.web@10.0.0.7:5070;transport=tcp"]],
    )
    source: ReportSource | None = Field(
        default=None, description="Where the REGISTER came from (for the listed contacts)."
    )
    user_agent: Annotated[str, StringConstraints(max_length=256), SingleLine] | None = Field(
        default=None,
        description="The phone's User-Agent header.",
        examples=["Yealink SIP-T46U 108.86.0.45"],
    )


class RegistrationReport(AccountReport):
    """One account's registration state at one edge."""

    edge: EdgeName


class RegistrationBatch(BaseModel):
    """Many accounts' reports from one edge. Each is applied, or refused, on its own."""

    model_config = ConfigDict(extra="forbid")

    edge: EdgeName
    reports: list[AccountReport] = Field(min_length=1, max_length=500)


class RegistrationState(BaseModel):
    """A device's registration state once the report was applied."""

    device_id: uuid.UUID
    registered: Registered
    contact_count: ContactCount


class RefusedReport(BaseModel):
    """A report of a batch that changed nothing, and why: the problem (type, title, detail)
    the single report would have been answered with."""

    index: int = Field(description="The report's place in `reports`, from 0.", examples=[1])
    status: int = Field(examples=[404])
    type: str = Field(examples=["urn:antring:problem:sip-account-not-found"])
    title: str = Field(examples=["SIP account not found"])
    detail: str | None = Field(
        description="In the language Accept-Language asks for.",
        examples=["There is no SIP account lan.web@acme.sip.antring.vn."],
    )
    code: Code | None = Field(
        description="The rule `detail` tells of (as a problem's `code`).",
        examples=["sip-account-not-found"],
    )
    params: dict[str, Any] | None = Field(
        description="The rule's values.",
        examples=[{"username": "lan.web", "domain": "acme.sip.antring.vn"}],
    )
    field: str | None = Field(
        description="The field at fault, when one is.", examples=["reports.1.username"]
    )


class RegistrationBatchResult(BaseModel):
    applied: int = Field(description="Reports applied (a late or repeated one too).")
    refused: list[RefusedReport]


class RegistrationOut(BaseModel):
    """A live contact of a device at one edge."""

    model_config = ConfigDict(from_attributes=True)

    edge: str = Field(examples=["edge-1"])
    contact: str = Field(examples=["sip:lan.web@10.0.0.7:5070;transport=tcp"])
    transport: Transport | None
    source_address: str | None = Field(examples=["10.0.0.7"])
    source_port: int | None = Field(examples=[5070])
    user_agent: str | None = Field(examples=["Yealink SIP-T46U 108.86.0.45"])
    expires_at: datetime
    registered_at: datetime = Field(
        description="When the contact became live (the service's clock)."
    )
    updated_at: datetime
