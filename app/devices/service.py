"""SIP accounts ("devices"): one per phone, softphone or browser an agent uses."""

import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import edgecache
from app.clock import utcnow
from app.crypto import PasswordCipher, generate_password, ha1_md5, ha1_sha256
from app.db.conflicts import flush_or_conflict
from app.devices import repository
from app.devices.events import device_change, gone
from app.devices.exceptions import DeviceNameTaken, DeviceNotFound, MacAddressTaken
from app.devices.models import Device, DeviceKind, PhoneModel
from app.devices.repository import StoredDevice
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
from app.errors import AppError, Code, InvalidInput
from app.names import search_words
from app.outbox import record as outbox
from app.settings import Settings
from app.tenants.models import Tenant
from app.user_record import repository as user_records


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
        raise DeviceNotFound(device_id=str(device_id))
    return TenantDevice(device=found[0], tenant=found[1])


def check_password(password: str, *, username: str, field: str = "body.password") -> None:
    """The rules for a password an operator chooses (generated ones always pass)."""
    if not all("!" <= c <= "~" for c in password):
        raise InvalidInput(field, Code.password_characters)
    if not (any(c.isalpha() for c in password) and any(c.isdigit() for c in password)):
        raise InvalidInput(field, Code.password_letters_and_digits)
    if username.lower() in password.lower():
        raise InvalidInput(field, Code.password_contains_device_name)


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


def conflicts(device: Device) -> dict[str, AppError]:
    """The errors a flush of the device answers when a unique constraint says no."""
    return {
        "uq_device_tenant_id_name_key": DeviceNameTaken(field="body.name", name=device.name),
        "uq_device_tenant_id_mac": MacAddressTaken(field="body.mac", mac=device.mac),
    }


async def _flush(session: AsyncSession, device: Device) -> None:
    await flush_or_conflict(session, conflicts(device))


def _check_phone_fields(device: Device | DeviceCreate, *, kind_changed: bool) -> None:
    """A MAC address and a phone model belong to IP phones only."""
    if device.kind == DeviceKind.ip_phone:
        return
    for field in ("mac", "model"):
        if getattr(device, field) is not None:
            if kind_changed:
                raise InvalidInput("body.kind", Code.kind_change_needs_null, property=field)
            raise InvalidInput(f"body.{field}", Code.ip_phone_only, property=field)


def shown(device: Device | StoredDevice | dict[str, Any]) -> dict[str, Any]:
    """A device's fields as its events and audit entries show them (JSON's values), whether it
    is a row about to be stored, a stored row or the ORM's object."""
    get: Callable[[str], Any] = (
        device.__getitem__ if isinstance(device, dict) else partial(getattr, device)
    )
    model = get("model")
    return {
        "name": get("name"),
        "kind": DeviceKind(get("kind")).value,
        "enabled": get("enabled"),
        "user_id": str(get("user_id")),
        "mac": get("mac"),
        "model": None if model is None else PhoneModel(model).value,
    }


def device_updated(
    device: Device | StoredDevice,
    *,
    tenant_id: uuid.UUID,
    before: dict[str, Any],
    after: dict[str, Any],
) -> outbox.Change:
    """The event of a device's change: its `shown` fields before and after (only those that
    changed are recorded; none: nothing is)."""
    old, new = outbox.changes(before, after)
    return device_change(
        "device.updated",
        tenant_id=tenant_id,
        device_id=device.id,
        user_id=device.user_id,
        name=device.name,
        before=old,
        after=new,
    )


def device_deleted(device: Device | StoredDevice, *, tenant_id: uuid.UUID) -> outbox.Change:
    return device_change(
        "device.deleted",
        tenant_id=tenant_id,
        device_id=device.id,
        user_id=device.user_id,
        name=device.name,
        before=shown(device),
    )


def default_device_name(display_name: str) -> str:
    """A readable SIP username from the agent's name: 'Nguyễn Văn An' → nguyen-van-an-3fa9c1."""
    ascii_name = unicodedata.normalize("NFKD", display_name.replace("đ", "d").replace("Đ", "D"))
    ascii_name = ascii_name.encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:40].strip("-") or "agent"
    return f"{slug}-{secrets.token_hex(3)}"


def name_columns(name: str) -> dict[str, str]:
    """A device's name and what it decides: the key it is unique by (any case) and the words a
    search finds its user by; one place for a new device and a renamed one."""
    return {"name": name, "name_key": name.lower(), "search_key": search_words([name])}


def check_new_device(data: DeviceCreate) -> None:
    """The rules a new device meets beyond its schema: a chosen password's, a phone's fields.
    `new_device` checks them; the import checks them also where it makes no device (a dry
    run)."""
    if data.password is not None:
        check_password(data.password, username=data.name)
    _check_phone_fields(data, kind_changed=False)


@dataclass(frozen=True, slots=True)
class NewDevice:
    """A device about to be stored: its row (every column, the digest HA1 values and the
    encrypted password among them), its password, and the event that records it."""

    row: dict[str, Any]
    password: str
    created: outbox.Change


def new_device(
    cipher: PasswordCipher,
    *,
    tenant: Tenant,
    user_id: uuid.UUID,
    data: DeviceCreate,
    at: datetime,
) -> NewDevice:
    """A new device's row, its password (generated unless given) and its event: the one place a
    device is made, by a single create and by the import alike."""
    check_new_device(data)
    password = generate_password() if data.password is None else data.password
    device_id = uuid.uuid4()
    row = {
        "id": device_id,
        "tenant_id": tenant.id,
        "user_id": user_id,
        **name_columns(data.name),
        "kind": data.kind,
        "enabled": True,
        "mac": data.mac,
        "model": data.model,
        **stored_secrets(cipher, name=data.name, realm=tenant.sip_domain, password=password),
        "created_at": at,
        "updated_at": at,
    }
    after = shown(row)
    created = device_change(
        "device.created",
        tenant_id=tenant.id,
        device_id=device_id,
        user_id=user_id,
        name=data.name,
        data=after,
        after=after,
    )
    return NewDevice(row=row, password=password, created=created)


async def add_device(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant: Tenant,
    user_id: uuid.UUID,
    data: DeviceCreate,
) -> tuple[Device, str]:
    """A new SIP account for the user; returns it with its password (generated unless given)."""
    new = new_device(cipher, tenant=tenant, user_id=user_id, data=data, at=utcnow())
    device = Device(**new.row)
    session.add(device)
    await _flush(session, device)
    await user_records.refresh_search_text(session, [user_id])
    await outbox.record_change(session, new.created)
    return device, new.password


async def list_devices(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[DeviceOut]:
    devices = await repository.list_user_devices(session, tenant_id=tenant_id, user_ids=[user_id])
    return await device_views(session, tenant_id=tenant_id, devices=devices)


async def device_views(
    session: AsyncSession, *, tenant_id: uuid.UUID, devices: list[Device]
) -> list[DeviceOut]:
    """Devices as the API shows them, each with whether it is registered now (one query)."""
    counts = await contact_counts(
        session, tenant_id=tenant_id, device_ids=[device.id for device in devices]
    )
    return [DeviceOut.of(device, contact_count=counts.get(device.id, 0)) for device in devices]


async def update_device(
    session: AsyncSession, cipher: PasswordCipher, *, current: TenantDevice, data: DeviceUpdate
) -> Device:
    device = current.device
    before = shown(device)
    changes = data.changes()
    renamed = "name" in changes and changes["name"] != device.name
    if renamed or changes.get("enabled") is False:
        # Under the old name: renamed, it no longer signs in; disabled, not at all.
        await end_registrations(
            session,
            tenant=current.tenant,
            device=device,
            reason="renamed" if renamed else "disabled",
        )
    if renamed:
        # The digest HA1 covers the username, so a rename needs it computed again.
        password = cipher.decrypt(device.password_encrypted)
        if changes["name"].lower() in password.lower():
            raise InvalidInput("body.name", Code.password_contains_new_name)
        for column, value in name_columns(changes["name"]).items():
            setattr(device, column, value)
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
    if renamed:
        await user_records.refresh_search_text(session, [device.user_id])
    await outbox.record_change(
        session,
        device_updated(device, tenant_id=device.tenant_id, before=before, after=shown(device)),
    )
    return device


async def delete_device(session: AsyncSession, *, current: TenantDevice) -> None:
    device = current.device
    edgecache.forget(session, domain=current.tenant.sip_domain, usernames=[device.name])
    await outbox.record_change(session, device_deleted(device, tenant_id=device.tenant_id))
    user_id = device.user_id
    await session.delete(device)
    await session.flush()
    await user_records.refresh_search_text(session, [user_id])


async def forget_devices(
    session: AsyncSession, *, tenant: Tenant, user_id: uuid.UUID | None = None
) -> None:
    """The SIP edges drop the tenant's devices (one user's, when given) that are deleted with
    their tenant or user: their registrations go with them."""
    names = await repository.device_names(session, tenant_id=tenant.id, user_id=user_id)
    edgecache.forget(session, domain=tenant.sip_domain, usernames=names)


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
    await end_registrations(
        session, tenant=current.tenant, device=device, reason="password_rotated"
    )
    # The new password is nowhere in it: the edge only learns to drop what it cached.
    await outbox.record_change(
        session,
        device_change(
            "device.password_rotated",
            tenant_id=device.tenant_id,
            device_id=device.id,
            user_id=device.user_id,
            name=device.name,
        ),
    )
    return device, password


async def show_device_config(
    session: AsyncSession,
    cipher: PasswordCipher,
    settings: Settings,
    *,
    current: TenantDevice,
    reveal_password: bool,
) -> DeviceConfig:
    """A device's settings as a person sees them: the password only when revealed, and each
    reveal on the audit trail (who, when, from where)."""
    if reveal_password:
        await outbox.record_access(
            session,
            outbox.Change(
                type="device.password_revealed",
                tenant_id=current.tenant.id,
                resource_type="device",
                resource_id=current.device.id,
                user_id=current.device.user_id,
            ),
        )
    return await device_config(
        session, cipher, settings, current=current, with_password=reveal_password
    )


async def device_config(
    session: AsyncSession,
    cipher: PasswordCipher,
    settings: Settings,
    *,
    current: TenantDevice,
    with_password: bool,
) -> DeviceConfig:
    """A device's settings for the web client and for an IP phone (with the password: for the
    device itself, as a provisioning file or code hands it over)."""
    device, domain = current.device, current.tenant.sip_domain
    # The views show what the edge serves, and nothing it does not.
    offered = set(settings.sip_transports)
    display_name = await repository.owner_name(session, device=device)
    password = cipher.decrypt(device.password_encrypted) if with_password else None
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


async def contact_counts(
    session: AsyncSession, *, tenant_id: uuid.UUID, device_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many live contacts each device has now (absent: none): one query."""
    return await repository.contact_counts(
        session, tenant_id=tenant_id, device_ids=device_ids, now=utcnow()
    )


async def end_registrations(
    session: AsyncSession,
    *,
    tenant: Tenant,
    reason: str,
    device: Device | None = None,
    user_id: uuid.UUID | None = None,
    keep_cached: bool = False,
    now: datetime | None = None,
) -> None:
    """Ends the registrations of one device, of a user's devices, or of every device of the
    tenant: once this commits the edges remove the accounts' contacts (and, unless
    `keep_cached`, drop what they cached of them); the service's contacts of them are no longer
    live at once, with `device.unregistered` for each device that was registered. A report
    from before now cannot bring them back; the phones' next REGISTER does.

    Call it before a rename or a new domain takes effect: the edges know the accounts by the
    old names."""
    now = now or utcnow()
    device_id = device.id if device is not None else None
    devices = await repository.lock_devices(
        session, tenant_id=tenant.id, user_id=user_id, device_id=device_id
    )
    tell_edges = edgecache.unregister if keep_cached else edgecache.forget
    tell_edges(session, domain=tenant.sip_domain, usernames=[d.name for d in devices])
    ended = await repository.end_live_registrations(
        session,
        tenant_id=tenant.id,
        user_id=user_id,
        device_id=device_id,
        seen_at=now.timestamp(),
        now=now,
    )
    await outbox.record_many(session, gone([d for d in devices if d.id in ended], reason=reason))
