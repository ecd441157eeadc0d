import re
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    StringConstraints,
    TypeAdapter,
)
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from app.devices.models import Device, DeviceKind, PhoneModel
from app.errors import Code
from app.schemas import (
    Matches,
    PatchModel,
    rule_error,
)

# A SIP username: what a device is called, and what a registrar lookup may ask for.
SIP_USERNAME = re.compile(r"[A-Za-z0-9._-]{3,64}")

# `GET /v1/call-control/sip-accounts/lookups` is not a registrar lookup of the account `lookups`:
# the concrete path comes first. No device is called so, whatever the case.
RESERVED_DEVICE_NAME = "lookups"


def _not_reserved(name: str) -> str:
    if name.lower() == RESERVED_DEVICE_NAME:
        raise rule_error(Code.reserved_device_name, name=RESERVED_DEVICE_NAME)
    return name


DeviceName = Annotated[
    str,
    StringConstraints(pattern=rf"^{SIP_USERNAME.pattern}$"),
    AfterValidator(_not_reserved),
    Field(
        description="The SIP username: 3 to 64 letters, digits, '.', '_' or '-'; unique in the "
        f"tenant whatever the case; not {RESERVED_DEVICE_NAME}.",
        examples=["lan.softphone"],
        json_schema_extra={
            "not": {
                "pattern": "^" + "".join(f"[{c.upper()}{c}]" for c in RESERVED_DEVICE_NAME) + "$"
            }
        },
    ),
]
_LETTER_AND_DIGIT = "[!-~]*([A-Za-z][!-~]*[0-9]|[0-9][!-~]*[A-Za-z])[!-~]*"
DevicePassword = Annotated[
    str,
    Field(
        min_length=12,
        max_length=128,
        description="At least 12 printable ASCII characters with letters and digits, not "
        "containing the device name. Omit it to have a strong one generated.",
        examples=["Blue7Harbor42x"],
    ),
    Matches(f"^{_LETTER_AND_DIGIT}$", Code.password_form),
]

_HEX = "[0-9A-Fa-f]"
# 00:15:65:AA:BB:CC, 00-15-65-AA-BB-CC, 0015.65AA.BBCC or 001565AABBCC, any case; a phone's own
# (unicast: the first octet even), not all zeros.
MAC_PATTERN = (
    r"^(?!0{12}$|00(:00){5}$|00(-00){5}$|0000\.0000\.0000$)"
    rf"{_HEX}[02468aceACE]((:{_HEX}{{2}}){{5}}|(-{_HEX}{{2}}){{5}}"
    rf"|{_HEX}{{2}}(\.{_HEX}{{4}}){{2}}|{_HEX}{{10}})$"
)


def normalize_mac(value: str) -> str:
    """A MAC address (MAC_PATTERN) in the form phones name their files with: 12 lower-case hex
    digits."""
    return re.sub(r"[:.-]", "", value).lower()


MacAddress = Annotated[
    str,
    StringConstraints(max_length=17),
    Matches(MAC_PATTERN, Code.mac_address),
    AfterValidator(normalize_mac),
    Field(
        description="IP phones only: the phone's MAC address (00:15:65:AA:BB:CC, "
        "00-15-65-aa-bb-cc or 001565aabbcc), kept as 12 lower-case hex digits; unique in the "
        "tenant. The phone's provisioning file is served to this MAC only.",
        examples=["001565aabbcc"],
    ),
]
PhoneModelField = Annotated[
    PhoneModel,
    Field(
        description="IP phones only: the vendor family, which decides the provisioning file's "
        "form.",
        examples=["yealink"],
    ),
]


# A MAC address and a phone model belong to IP phones only (the service checks it, and whether
# a device that is not one, as stored, is given them).
PHONE_FIELDS_RULE: JsonDict = {
    "if": {"required": ["kind"], "properties": {"kind": {"not": {"const": "ip_phone"}}}},
    "then": {"properties": {"mac": {"type": "null"}, "model": {"type": "null"}}},
}


class _NewDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DeviceName
    password: DevicePassword | None = None


class WebDeviceCreate(_NewDevice):
    """A browser's SIP account (SIP over WebSocket)."""

    kind: Literal[DeviceKind.web]


class SoftphoneCreate(_NewDevice):
    """A desktop or mobile softphone's SIP account."""

    kind: Literal[DeviceKind.softphone]


class IpPhoneCreate(_NewDevice):
    """An IP phone's SIP account: the only kind with a MAC address and a phone model."""

    kind: Literal[DeviceKind.ip_phone]
    mac: MacAddress | None = None
    model: PhoneModelField | None = None


# What the document says a new device is: one of the three, told apart by `kind`.
_BY_KIND = TypeAdapter(
    Annotated[WebDeviceCreate | SoftphoneCreate | IpPhoneCreate, Field(discriminator="kind")]
)


class DeviceCreate(BaseModel):
    """A new device. The document describes it by kind (only an ip_phone has `mac` and
    `model`); the service reads it as one object, so that a refusal names the field and its
    rule (body.mac: only an ip_phone has a mac)."""

    model_config = ConfigDict(extra="forbid")

    name: DeviceName
    kind: DeviceKind = Field(examples=["ip_phone"])
    password: DevicePassword | None = None
    mac: MacAddress | None = None
    model: PhoneModelField | None = None

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(_BY_KIND.core_schema)


class DeviceUpdate(PatchModel):
    nullable = frozenset({"mac", "model"})
    schema_rules = PHONE_FIELDS_RULE

    name: DeviceName | None = None
    kind: DeviceKind | None = Field(default=None, examples=["ip_phone"])
    enabled: StrictBool | None = Field(
        default=None, description="A disabled device cannot register."
    )
    mac: MacAddress | None = Field(default=None, description="null: the device has no MAC.")
    model: PhoneModelField | None = None


class PasswordRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: DevicePassword | None = None


Registered = Annotated[
    bool,
    Field(
        description="The device is online: an edge reported a contact of it that has not expired."
    ),
]
ContactCount = Annotated[
    int, Field(description="Its live contacts, over every SIP edge.", examples=[1])
]


class _DeviceView(BaseModel):
    @classmethod
    def of(cls, device: Device, *, contact_count: int) -> Self:
        """The view of a device that has `contact_count` live contacts."""
        shown = {
            name: getattr(device, name)
            for name in cls.model_fields
            if name not in ("registered", "contact_count")
        }
        return cls(**shown, registered=contact_count > 0, contact_count=contact_count)


DeviceVersion = Annotated[
    int,
    Field(
        examples=[1],
        description='The device\'s version: its ETag (`"1"`), to send as If-Match with a '
        "change or deletion of the device.",
    ),
]


class DeviceOut(_DeviceView):
    id: uuid.UUID
    version: DeviceVersion
    user_id: uuid.UUID
    name: str
    kind: DeviceKind
    enabled: bool
    mac: str | None = Field(description="IP phones: 12 lower-case hex digits.")
    model: PhoneModel | None
    registered: Registered
    contact_count: ContactCount
    created_at: datetime
    updated_at: datetime


class DeviceSummary(_DeviceView):
    """A device as the Users table shows it."""

    id: uuid.UUID
    version: DeviceVersion
    name: str
    kind: DeviceKind
    enabled: bool
    registered: Registered
    contact_count: ContactCount


class DeviceCreated(DeviceOut):
    password: str = Field(description="Shown here once; later only in the device's config view.")


class PasswordRotated(BaseModel):
    device_id: uuid.UUID
    password: str = Field(description="The new password, shown here once.")


REVEALED = (
    "The SIP password: null unless asked for with `reveal=password` (admins and operators; "
    "each reveal is on the audit trail)."
)


class ConfigReveal(StrEnum):
    password = "password"


class TransportPorts(BaseModel):
    """The port of each transport the edge serves; null when it does not serve it."""

    udp: int | None = Field(examples=[5060])
    tcp: int | None = Field(examples=[5060])
    tls: int | None = Field(examples=[5061])


class IceServer(BaseModel):
    """A STUN or TURN server, in WebRTC's `RTCIceServer` form."""

    urls: list[str] = Field(examples=[["stun:stun.antring.vn:3478"]])
    username: str | None = None
    credential: str | None = None


class WebConfig(BaseModel):
    """What a browser softphone (SIP over WebSocket) needs. The names are JsSIP's UA
    configuration (`uri`, `authorization_user`, `password`, `realm`, `display_name`; the socket
    from `websocket_url`), and `ice_servers` is the `iceServers` of its calls' `pcConfig`."""

    websocket_url: str | None = Field(
        examples=["wss://sip.antring.vn:7443/ws"],
        description="Null when the edge serves no WebSocket.",
    )
    uri: str = Field(examples=["sip:lan.web@acme.sip.antring.vn"])
    sip_uri: str = Field(
        examples=["sip:lan.web@acme.sip.antring.vn"], description="The same as `uri`."
    )
    authorization_user: str
    password: str | None = Field(description=REVEALED)
    realm: str
    display_name: str
    ice_servers: list[IceServer]


class IpPhoneConfig(BaseModel):
    """What an IP phone or desktop softphone needs."""

    registrar: str = Field(examples=["acme.sip.antring.vn"])
    domain: str
    outbound_proxy: str = Field(examples=["sip.antring.vn"])
    transports: list[str] = Field(
        examples=[["udp", "tcp", "tls"]], description="The transports a phone may use."
    )
    ports: TransportPorts
    username: str
    auth_id: str
    password: str | None = Field(description=REVEALED)
    display_name: str


class DeviceConfig(BaseModel):
    device_id: uuid.UUID
    web: WebConfig
    ip_phone: IpPhoneConfig
