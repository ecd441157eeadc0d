"""The directory as operations staff see it: the Users table (each user with their devices,
extensions and this month's minutes, in a fixed number of queries per page), a new user with
the SIP account every user gets by default, and tenant changes that reach every device and
extension of the tenant."""

import uuid
from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from app import edgecache
from app.clock import utcnow
from app.crypto import PasswordCipher
from app.devices import registrations
from app.devices import repository as devices_repository
from app.devices import service as devices
from app.devices.models import DeviceKind
from app.devices.schemas import DeviceCreate, DeviceSummary
from app.directory import repository
from app.directory.repository import UserSort
from app.directory.schemas import MinutesSummary, UserCreated, UserOut
from app.extensions import repository as extensions_repository
from app.extensions import service as extensions
from app.quotas import repository as quotas_repository
from app.quotas.periods import period_of
from app.quotas.service import used_minutes
from app.tenants import service as tenants
from app.tenants.exceptions import EmergencyNumberInUse
from app.tenants.models import Tenant
from app.tenants.schemas import TenantUpdate
from app.users import service as users
from app.users.models import User
from app.users.schemas import UserCreate, UserUpdate
from app.users.service import TenantUser


async def _present(session: AsyncSession, *, tenant: Tenant, page: list[User]) -> list[UserOut]:
    """Users as the Users table shows them: four queries whatever the page's size."""
    user_ids = [user.id for user in page]
    period = period_of(utcnow(), tenant.timezone)
    used = await quotas_repository.used_seconds_by_user(
        session, tenant_id=tenant.id, user_ids=user_ids, period=period
    )
    devices = await devices_repository.list_user_devices(
        session, tenant_id=tenant.id, user_ids=user_ids
    )
    counts = await registrations.contact_counts(
        session, tenant_id=tenant.id, device_ids=[device.id for device in devices]
    )
    devices_of: dict[uuid.UUID, list[DeviceSummary]] = defaultdict(list)
    for device in devices:
        devices_of[device.user_id].append(
            DeviceSummary.of(device, contact_count=counts.get(device.id, 0))
        )
    numbers_of: dict[uuid.UUID, list[str]] = defaultdict(list)
    for extension in await extensions_repository.list_user_extensions(
        session, tenant_id=tenant.id, user_ids=user_ids
    ):
        numbers_of[extension.user_id].append(extension.number)
    return [
        UserOut(
            id=user.id,
            display_name=user.display_name,
            email=user.email,
            external_ref=user.external_ref,
            enabled=user.enabled,
            outbound_allowed=user.outbound_allowed,
            auto_answer=user.auto_answer,
            limit_minutes=user.limit_minutes,
            devices=devices_of[user.id],
            extensions=numbers_of[user.id],
            minutes=MinutesSummary(
                period=period,
                used_minutes=used_minutes(used.get(user.id, 0)),
                limit_minutes=user.limit_minutes,
            ),
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
        for user in page
    ]


async def get_user(session: AsyncSession, *, current: TenantUser) -> UserOut:
    return (await _present(session, tenant=current.tenant, page=[current.user]))[0]


async def create_user(
    session: AsyncSession, cipher: PasswordCipher, *, tenant: Tenant, data: UserCreate
) -> UserCreated:
    """A new agent, with the one SIP account every agent gets by default (its password is in
    this answer once)."""
    user = await users.add_user(session, tenant_id=tenant.id, data=data)
    default_device = DeviceCreate(
        name=devices.default_device_name(data.display_name), kind=DeviceKind.web
    )
    _, password = await devices.add_device(
        session, cipher, tenant=tenant, user_id=user.id, data=default_device
    )
    shown = (await _present(session, tenant=tenant, page=[user]))[0]
    return UserCreated(**shown.model_dump(), default_device_password=password)


async def list_users(
    session: AsyncSession,
    *,
    tenant: Tenant,
    search: str | None,
    sort: UserSort,
    limit: int,
    offset: int,
) -> tuple[list[UserOut], int]:
    page, total = await repository.list_users(
        session, tenant_id=tenant.id, search=search, sort=sort, limit=limit, offset=offset
    )
    return await _present(session, tenant=tenant, page=page), total


async def update_user(session: AsyncSession, *, current: TenantUser, data: UserUpdate) -> UserOut:
    if data.changes().get("enabled") is False and current.user.enabled:
        await registrations.end_registrations(
            session, tenant=current.tenant, user_id=current.user.id, reason="user_disabled"
        )
    await users.update_user(session, user=current.user, data=data)
    return await get_user(session, current=current)


async def delete_user(session: AsyncSession, *, current: TenantUser) -> None:
    """Deletes the user with their devices and extensions; the SIP edges forget the devices."""
    await _forget_devices(session, tenant=current.tenant, user_id=current.user.id)
    await users.delete_user(session, user=current.user)


async def delete_tenant(session: AsyncSession, *, tenant: Tenant) -> None:
    """Deletes the tenant with everything it has; the SIP edges forget its devices."""
    await _forget_devices(session, tenant=tenant)
    await tenants.delete_tenant(session, tenant=tenant)


async def _forget_devices(
    session: AsyncSession, *, tenant: Tenant, user_id: uuid.UUID | None = None
) -> None:
    """The edges drop the devices (deleted: their registrations go with them)."""
    names = await devices_repository.device_names(session, tenant_id=tenant.id, user_id=user_id)
    edgecache.forget(session, domain=tenant.sip_domain, usernames=names)


async def update_tenant(
    session: AsyncSession, cipher: PasswordCipher, *, tenant: Tenant, data: TenantUpdate
) -> Tenant:
    """A tenant's new settings. New emergency numbers must not be shadowed by an existing
    extension; a new SIP domain (the digest realm) gives every device its HA1 again."""
    changes = data.changes()
    if "emergency_numbers" in changes:
        shadowed = await extensions.shadowed_extensions(
            session, tenant_id=tenant.id, emergency_numbers=changes["emergency_numbers"]
        )
        if shadowed:
            raise EmergencyNumberInUse(
                f"Extensions {', '.join(shadowed)} would shadow the new emergency numbers; "
                "remove them first."
            )
    realm_changed = "sip_domain" in changes and changes["sip_domain"] != tenant.sip_domain
    if realm_changed:
        # The edges know the accounts under the old domain: none of them signs in there now.
        await registrations.end_registrations(session, tenant=tenant, reason="domain_changed")
    await tenants.update_tenant(session, tenant=tenant, data=data)
    if realm_changed:
        await devices.rehash_tenant_devices(
            session, cipher, tenant_id=tenant.id, realm=tenant.sip_domain
        )
    return tenant
