import ipaddress
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.devices.models import PhoneModel
from app.errors import Code
from app.provisioning.models import FetchOutcome
from app.schemas import IP_NETWORK_PATTERN, Matches, PatchModel


def _network(value: str) -> str:
    return str(ipaddress.ip_network(value, strict=False))


Network = Annotated[
    str,
    StringConstraints(max_length=50),
    Matches(IP_NETWORK_PATTERN, Code.ip_network),
    AfterValidator(_network),
]
Networks = Annotated[
    list[Network],
    Field(
        max_length=100,
        description="The networks phones may fetch their files from, in CIDR form; empty: any "
        "address (the credentials and the MAC still apply).",
        examples=[["203.0.113.0/24", "2001:db8:42::/48"]],
    ),
]


class ProvisioningUpdate(PatchModel):
    allowed_networks: Networks | None = None


class ProvisioningOut(BaseModel):
    """How the tenant's phones fetch their files; never the secret."""

    enabled: bool = Field(description="False until provisioning credentials are made.")
    username: str | None = Field(
        description="The user name phones send (HTTP digest or basic).", examples=["prov-3fa9c1"]
    )
    allowed_networks: list[str]
    files_url: str = Field(
        description="The URL to give phones (DHCP option 66, or the vendor's redirect service): "
        "each appends its own file name.",
        examples=["https://provision.antring.vn/provision/5b0c9e0e-0d1d-4b8e-9b51-3b9e0b0d3a61/"],
    )
    secret_rotated_at: datetime | None


class CredentialsRotated(BaseModel):
    username: str
    password: str = Field(description="Shown here once: phones send it with the user name.")
    files_url: str


class FetchOut(BaseModel):
    """A request for a provisioning file or link, served or refused; or, for the refusals of
    requests that proved nothing (no or wrong credentials, a refused address, throttled, a used
    or expired link), all those of one client address, outcome and device in one minute."""

    model_config = ConfigDict(from_attributes=True)

    fetched_at: datetime = Field(description="The (first) request's time.")
    last_fetched_at: datetime = Field(
        description="The latest request's time: the same as fetched_at for a single request."
    )
    count: int = Field(
        ge=1,
        description="How many requests this entry stands for: 1, but for refusals counted per "
        "minute (the file name, MAC and user agent shown are then the first request's).",
        examples=[1],
    )
    outcome: FetchOutcome
    status_code: int
    filename: str
    mac: str | None
    device_id: uuid.UUID | None
    client_address: str
    user_agent: str | None


class DeviceProvisioningOut(BaseModel):
    """Where an IP phone's file is served, and its latest fetches."""

    device_id: uuid.UUID
    mac: str | None
    model: PhoneModel | None
    file_url: str | None = Field(
        description="The file this phone fetches; null until the device has a MAC and model."
    )
    last_fetches: list[FetchOut] = Field(description="Newest first, at most 10.")


class SoftphoneApp(StrEnum):
    linphone = "linphone"
    acrobits = "acrobits"
    web = "web"


class ProvisioningLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app: SoftphoneApp = Field(
        description="linphone: a one-time, expiring link to its remote provisioning file; "
        "acrobits: a `csc:` code for Acrobits-based apps (Groundwire, Cloud Softphone); web: "
        "the JSON of the device's web view, for the reference web phone.",
        examples=["linphone"],
    )


class ProvisioningCode(BaseModel):
    """What the softphone scans, and its QR code as PNG and SVG."""

    app: SoftphoneApp
    payload: str = Field(description="The text in the QR code (it carries the credentials).")
    expires_at: datetime | None = Field(
        description="linphone: the link works once, until then; null for the other apps."
    )
    png: str = Field(description="The QR code as a data: URI (image/png).")
    svg: str = Field(description="The QR code as a data: URI (image/svg+xml).")
