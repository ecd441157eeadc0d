import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from app.devices.models import DeviceKind, PhoneModel
from app.schemas import PatchModel

# A SIP username: what a device is called, and what a registrar lookup may ask for.
SIP_USERNAME = re.compile(r"[A-Za-z0-9._-]{3,64}")

DeviceName = Annotated[
    str,
    StringConstraints(pattern=rf"^{SIP_USERNAME.pattern}$"),
    Field(
        description="The SIP username: 3 to 64 letters, digits, '.', '_' or '-'; unique in the "
        "tenant whatever the case.",
        examples=["lan.softphone"],
    ),
]
DevicePassword = Annotated[
    str,
    Field(
        min_length=12,
        max_length=128,
        description="At least 12 printable ASCII characters with letters and digits, not "
        "containing the device name. Omit it to have a strong one generated.",
        examples=["Blue7Harbor42x"],
    ),
]

_MAC = re.compile(r"[0-9a-f]{12}")


def normalize_mac(value: str) -> str:
    """A MAC address in the form phones name their files with: 12 lower-case hex digits."""
    digits = value.strip().lower()
    if re.fullmatch(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}", digits):
        digits = digits.replace(digits[2], "")
    elif re.fullmatch(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}", digits):
        digits = digits.replace(".", "")
    if not _MAC.fullmatch(digits):
        raise ValueError("must be a MAC address such as 00:15:65:AA:BB:CC or 001565aabbcc")
    if digits == "000000000000" or int(digits[1], 16) & 1:
        raise ValueError("must be a phone's own (unicast) MAC address")
    return digits


MacAddress = Annotated[
    str,
    StringConstraints(max_length=17),
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


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DeviceName
    kind: DeviceKind = Field(examples=["softphone"])
    password: DevicePassword | None = None
    mac: MacAddress | None = None
    model: PhoneModelField | None = None


class DeviceUpdate(PatchModel):
    nullable = frozenset({"mac", "model"})

    name: DeviceName | None = None
    kind: DeviceKind | None = None
    enabled: StrictBool | None = Field(
        default=None, description="A disabled device cannot register."
    )
    mac: MacAddress | None = Field(default=None, description="null: the device has no MAC.")
    model: PhoneModelField | None = None


class PasswordRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: DevicePassword | None = None


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    kind: DeviceKind
    enabled: bool
    mac: str | None = Field(description="IP phones: 12 lower-case hex digits.")
    model: PhoneModel | None
    created_at: datetime
    updated_at: datetime


class DeviceSummary(BaseModel):
    """A device as the Users table shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: DeviceKind
    enabled: bool


class DeviceCreated(DeviceOut):
    password: str = Field(description="Shown here once; later only in the device's config view.")


class PasswordRotated(BaseModel):
    device_id: uuid.UUID
    password: str = Field(description="The new password, shown here once.")


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
    password: str
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
    password: str
    display_name: str


class DeviceConfig(BaseModel):
    device_id: uuid.UUID
    web: WebConfig
    ip_phone: IpPhoneConfig
