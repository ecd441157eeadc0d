"""SIP accounts ("devices"): one per phone, softphone or browser an agent uses."""

import re
import secrets
import unicodedata
import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import PasswordCipher, generate_password, ha1_md5, ha1_sha256
from app.devices import repository
from app.devices.exceptions import DeviceNameTaken, DeviceNotFound
from app.devices.models import Device, DeviceKind
from app.devices.schemas import (
    DeviceConfig,
    DeviceCreate,
    DeviceUpdate,
    IpPhoneConfig,
    TransportPorts,
    WebConfig,
)
from app.errors import InvalidInput
from app.settings import Settings
from app.tenants.models import Tenant
from app.users.repository import require_user


def check_password(password: str, *, username: str, field: str = "body.password") -> None:
    """The rules for a password an operator chooses (generated ones always pass)."""
    if not all("!" <= c <= "~" for c in password):
        raise InvalidInput(field, "Use printable ASCII characters without spaces.")
    if not (any(c.isalpha() for c in password) and any(c.isdigit() for c in password)):
        raise InvalidInput(field, "The password needs both letters and digits.")
    if username.lower() in password.lower():
        raise InvalidInput(field, "The password must not contain the device name.")


def _set_password(device: Device, cipher: PasswordCipher, *, password: str, realm: str) -> None:
    device.password_encrypted = cipher.encrypt(password)
    device.ha1 = ha1_md5(device.name, realm, password)
    device.ha1_sha256 = ha1_sha256(device.name, realm, password)


async def _flush(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise DeviceNameTaken(f"Device name {name} is already used in this tenant.") from None


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
    name: str,
    kind: DeviceKind,
    password: str | None,
) -> tuple[Device, str]:
    if password is None:
        password = generate_password()
    else:
        check_password(password, username=name)
    device = Device(
        tenant_id=tenant.id, user_id=user_id, name=name, name_key=name.lower(), kind=kind
    )
    _set_password(device, cipher, password=password, realm=tenant.sip_domain)
    session.add(device)
    await _flush(session, name)
    return device, password


async def create_device(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    data: DeviceCreate,
) -> tuple[Device, str]:
    await require_user(session, tenant_id=tenant_id, user_id=user_id)
    tenant = await session.get_one(Tenant, tenant_id)
    return await add_device(
        session,
        cipher,
        tenant=tenant,
        user_id=user_id,
        name=data.name,
        kind=data.kind,
        password=data.password,
    )


async def list_devices(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[Device]:
    await require_user(session, tenant_id=tenant_id, user_id=user_id)
    return await repository.list_user_devices(session, tenant_id=tenant_id, user_id=user_id)


async def get_device(
    session: AsyncSession, *, tenant_id: uuid.UUID, device_id: uuid.UUID
) -> Device:
    device = await repository.get_device(session, tenant_id=tenant_id, device_id=device_id)
    if device is None:
        raise DeviceNotFound(f"No device {device_id}.")
    return device


async def update_device(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
    data: DeviceUpdate,
) -> Device:
    device = await get_device(session, tenant_id=tenant_id, device_id=device_id)
    changes = data.changes()
    if "name" in changes and changes["name"] != device.name:
        # The digest HA1 covers the username, so a rename needs it computed again.
        password = cipher.decrypt(device.password_encrypted)
        if changes["name"].lower() in password.lower():
            raise InvalidInput("body.name", "The device password contains the new name.")
        # Loaded before the rename: its query would autoflush a taken name outside `_flush`.
        tenant = await session.get_one(Tenant, tenant_id)
        device.name = changes["name"]
        device.name_key = device.name.lower()
        _set_password(device, cipher, password=password, realm=tenant.sip_domain)
    if "kind" in changes:
        device.kind = changes["kind"]
    if "enabled" in changes:
        device.enabled = changes["enabled"]
    await _flush(session, device.name)
    return device


async def delete_device(
    session: AsyncSession, *, tenant_id: uuid.UUID, device_id: uuid.UUID
) -> None:
    device = await get_device(session, tenant_id=tenant_id, device_id=device_id)
    await session.delete(device)
    await session.flush()


async def rotate_password(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
    password: str | None,
) -> tuple[Device, str]:
    device = await get_device(session, tenant_id=tenant_id, device_id=device_id)
    if password is None:
        password = generate_password()
    else:
        check_password(password, username=device.name)
    tenant = await session.get_one(Tenant, tenant_id)
    _set_password(device, cipher, password=password, realm=tenant.sip_domain)
    await session.flush()
    return device, password


async def device_config(
    session: AsyncSession,
    cipher: PasswordCipher,
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
) -> DeviceConfig:
    found = await repository.get_device_and_owner_name(
        session, tenant_id=tenant_id, device_id=device_id
    )
    if found is None:
        raise DeviceNotFound(f"No device {device_id}.")
    device, display_name = found
    tenant = await session.get_one(Tenant, tenant_id)
    password = cipher.decrypt(device.password_encrypted)
    domain = tenant.sip_domain
    return DeviceConfig(
        device_id=device.id,
        web=WebConfig(
            websocket_url=settings.sip_websocket_url,
            sip_uri=f"sip:{device.name}@{domain}",
            authorization_user=device.name,
            password=password,
            realm=domain,
            display_name=display_name,
        ),
        ip_phone=IpPhoneConfig(
            registrar=domain,
            domain=domain,
            outbound_proxy=settings.sip_proxy_host,
            ports=TransportPorts(
                udp=settings.sip_udp_port, tcp=settings.sip_tcp_port, tls=settings.sip_tls_port
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
