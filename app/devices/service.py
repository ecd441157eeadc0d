"""SIP accounts ("devices"): one per phone, softphone or browser an agent uses."""

import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import edgecache
from app.crypto import PasswordCipher, generate_password, ha1_md5, ha1_sha256
from app.db.conflicts import flush_or_conflict
from app.devices import registrations, repository
from app.devices.events import device_change
from app.devices.exceptions import DeviceNameTaken, DeviceNotFound, MacAddressTaken
from app.devices.models import Device, DeviceKind
from app.devices.schemas import (
    DeviceConfig,
    DeviceCreate,
    DeviceOut,
    DeviceUpdate,
    IceServer,
    IpPhoneConfig,
    TransportPorts,
    WebConfig,
)
from app.errors import InvalidInput
from app.outbox import record as outbox
from app.settings import Settings
from app.tenants.models import Tenant


@dataclass(frozen=True, slots=True)
class TenantDevice:
    """A device, and the tenant whose realm its digest HA1 is computed for."""

    device: Device
    tenant: Tenant


async def require_device(
    session: AsyncSession, *, tenant_id: uuid.UUID, device_id: uuid.UUID, for_update: bool = False
) -> TenantDevice:
    found = await repository.get_device_and_tenant(
        session, tenant_id=tenant_id, device_id=device_id, for_update=for_update
    )
    if found is None:
        raise DeviceNotFound(f"No device {device_id}.")
    return TenantDevice(device=found[0], tenant=found[1])


# The `type` of refusals that depend on what is stored, not on the request's form alone.
IP_PHONE_ONLY = "ip_phone_only"
PASSWORD_HAS_NAME = "password_contains_name"


def check_password(password: str, *, username: str, field: str = "body.password") -> None:
    """The rules for a password an operator chooses (generated ones always pass)."""
    if not all("!" <= c <= "~" for c in password):
        raise InvalidInput(field, "Use printable ASCII characters without spaces.")
    if not (any(c.isalpha() for c in password) and any(c.isdigit() for c in password)):
        raise InvalidInput(field, "The password needs both letters and digits.")
    if username.lower() in password.lower():
        raise InvalidInput(
            field, "The password must not contain the device name.", type=PASSWORD_HAS_NAME
        )


def stored_secrets(
    cipher: PasswordCipher, *, name: str, realm: str, password: str
) -> dict[str, str]:
    """What the database keeps of a device's password: encrypted, and the digest HA1 values."""
    return {
        "password_encrypted": cipher.encrypt(password),
        "ha1": ha1_md5(name, realm, password),
        "ha1_sha256": ha1_sha256(name, realm, password),
    }


def _set_password(device: Device, cipher: PasswordCipher, *, password: str, realm: str) -> None:
    for column, value in stored_secrets(
        cipher, name=device.name, realm=realm, password=password
    ).items():
        setattr(device, column, value)


async def _flush(session: AsyncSession, device: Device) -> None:
    await flush_or_conflict(
        session,
        {
            "uq_device_tenant_id_name_key": DeviceNameTaken(
                f"Device name {device.name} is already used in this tenant."
            ),
            "uq_device_tenant_id_mac": MacAddressTaken(
                f"MAC address {device.mac} belongs to another device of this tenant."
            ),
        },
    )


SHOWN = ("name", "kind", "enabled", "user_id", "mac", "model")


def _check_phone_fields(device: Device, *, kind_changed: bool) -> None:
    """A MAC address and a phone model belong to IP phones only."""
    if device.kind == DeviceKind.ip_phone:
        return
    for field in ("mac", "model"):
        if getattr(device, field) is not None:
            if kind_changed:
                raise InvalidInput(
                    "body.kind",
                    f"The device has a {field}: set it to null to change the kind.",
                    type=IP_PHONE_ONLY,
                )
            raise InvalidInput(
                f"body.{field}", f"Only an ip_phone has a {field}.", type=IP_PHONE_ONLY
            )


def device_created(
    *, tenant_id: uuid.UUID, device_id: uuid.UUID, shown: dict[str, Any]
) -> outbox.Change:
    """A new device's event: its SHOWN fields, as JSON holds them."""
    return device_change(
        "device.created",
        tenant_id=tenant_id,
        device_id=device_id,
        user_id=uuid.UUID(shown["user_id"]),
        name=shown["name"],
        data=shown,
        after=shown,
    )


async def _record(
    session: AsyncSession,
    device: Device,
    type: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await outbox.record_change(
        session,
        device_change(
            type,
            tenant_id=device.tenant_id,
            device_id=device.id,
            user_id=device.user_id,
            name=device.name,
            before=before,
            after=after,
        ),
    )


def default_device_name(display_name: str) -> str:
    """A readable SIP username from the agent's name: 'Nguyễn Văn An' → nguyen-van-an-3fa9c1."""
    ascii_name = unicodedata.normalize("NFKD", display_name.replace("đ", "d").replace("Đ", "D"))
    ascii_name = ascii_name.encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:40].strip("-") or "agent"
    return f"{slug}-{secrets.token_hex(3)}"


async def add_device(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant: Tenant,
    user_id: uuid.UUID,
    data: DeviceCreate,
) -> tuple[Device, str]:
    """A new SIP account for the user; returns it with its password (generated unless given)."""
    if data.password is None:
        password = generate_password()
    else:
        password = data.password
        check_password(password, username=data.name)
    device = Device(
        tenant_id=tenant.id,
        user_id=user_id,
        name=data.name,
        name_key=data.name.lower(),
        kind=data.kind,
        mac=data.mac,
        model=data.model,
    )
    _check_phone_fields(device, kind_changed=False)
    _set_password(device, cipher, password=password, realm=tenant.sip_domain)
    session.add(device)
    await _flush(session, device)
    created = device_created(
        tenant_id=tenant.id, device_id=device.id, shown=outbox.snapshot(device, SHOWN)
    )
    await outbox.record_change(session, created)
    return device, password


async def list_devices(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[DeviceOut]:
    devices = await repository.list_user_devices(session, tenant_id=tenant_id, user_ids=[user_id])
    return await device_views(session, tenant_id=tenant_id, devices=devices)


async def device_views(
    session: AsyncSession, *, tenant_id: uuid.UUID, devices: list[Device]
) -> list[DeviceOut]:
    """Devices as the API shows them, each with whether it is registered now (one query)."""
    counts = await registrations.contact_counts(
        session, tenant_id=tenant_id, device_ids=[device.id for device in devices]
    )
    return [DeviceOut.of(device, contact_count=counts.get(device.id, 0)) for device in devices]


async def update_device(
    session: AsyncSession, cipher: PasswordCipher, *, current: TenantDevice, data: DeviceUpdate
) -> Device:
    device = current.device
    before = outbox.snapshot(device, SHOWN)
    changes = data.changes()
    renamed = "name" in changes and changes["name"] != device.name
    if renamed or changes.get("enabled") is False:
        # Under the old name: renamed, it no longer signs in; disabled, not at all.
        await registrations.end_registrations(
            session,
            tenant=current.tenant,
            device=device,
            reason="renamed" if renamed else "disabled",
        )
    if renamed:
        # The digest HA1 covers the username, so a rename needs it computed again.
        password = cipher.decrypt(device.password_encrypted)
        if changes["name"].lower() in password.lower():
            raise InvalidInput(
                "body.name", "The device password contains the new name.", type=PASSWORD_HAS_NAME
            )
        device.name = changes["name"]
        device.name_key = device.name.lower()
        _set_password(device, cipher, password=password, realm=current.tenant.sip_domain)
    if "kind" in changes:
        device.kind = changes["kind"]
    if "enabled" in changes:
        device.enabled = changes["enabled"]
    for field in ("mac", "model"):
        if field in changes:
            setattr(device, field, changes[field])
    _check_phone_fields(device, kind_changed="kind" in changes)
    await _flush(session, device)
    old, new = outbox.changes(before, outbox.snapshot(device, SHOWN))
    await _record(session, device, "device.updated", before=old, after=new)
    return device


async def delete_device(session: AsyncSession, *, current: TenantDevice) -> None:
    device = current.device
    edgecache.forget(session, domain=current.tenant.sip_domain, usernames=[device.name])
    await _record(session, device, "device.deleted", before=outbox.snapshot(device, SHOWN))
    await session.delete(device)
    await session.flush()


async def rotate_password(
    session: AsyncSession, cipher: PasswordCipher, *, current: TenantDevice, password: str | None
) -> tuple[Device, str]:
    device = current.device
    if password is None:
        password = generate_password()
    else:
        check_password(password, username=device.name)
    _set_password(device, cipher, password=password, realm=current.tenant.sip_domain)
    await session.flush()
    await registrations.end_registrations(
        session, tenant=current.tenant, device=device, reason="password_rotated"
    )
    # The new password is nowhere in it: the edge only learns to drop what it cached.
    await _record(session, device, "device.password_rotated")
    return device, password


async def device_config(
    session: AsyncSession, cipher: PasswordCipher, settings: Settings, *, current: TenantDevice
) -> DeviceConfig:
    device, domain = current.device, current.tenant.sip_domain
    # The views show what the edge serves, and nothing it does not.
    offered = set(settings.sip_transports)
    display_name = await repository.owner_name(session, device=device)
    password = cipher.decrypt(device.password_encrypted)
    return DeviceConfig(
        device_id=device.id,
        web=WebConfig(
            websocket_url=settings.sip_websocket_url if offered & {"ws", "wss"} else None,
            uri=f"sip:{device.name}@{domain}",
            sip_uri=f"sip:{device.name}@{domain}",
            authorization_user=device.name,
            password=password,
            realm=domain,
            display_name=display_name,
            ice_servers=[IceServer.model_validate(server) for server in settings.sip_ice_servers],
        ),
        ip_phone=IpPhoneConfig(
            registrar=domain,
            domain=domain,
            outbound_proxy=settings.sip_proxy_host,
            transports=[t for t in ("udp", "tcp", "tls") if t in offered],
            ports=TransportPorts(
                udp=settings.sip_udp_port if "udp" in offered else None,
                tcp=settings.sip_tcp_port if "tcp" in offered else None,
                tls=settings.sip_tls_port if "tls" in offered else None,
            ),
            username=device.name,
            auth_id=device.name,
            password=password,
            display_name=display_name,
        ),
    )


async def rehash_tenant_devices(
    session: AsyncSession, cipher: PasswordCipher, *, tenant_id: uuid.UUID, realm: str
) -> None:
    """The realm is part of HA1: a tenant's new SIP domain needs every device's HA1 again."""
    for device in await repository.list_tenant_devices(session, tenant_id=tenant_id):
        password = cipher.decrypt(device.password_encrypted)
        _set_password(device, cipher, password=password, realm=realm)
    await session.flush()
