"""The Users aggregate as operations staff see it: the Users table (each user with their
devices, extensions and this month's minutes, in a fixed number of queries per page), a new
user with the SIP account every user gets by default, a user's changes and switches, and a
user's deletion with what the SIP edges must forget."""

import base64
import binascii
import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.db.conflicts import flush_or_conflict
from app.devices import repository as devices_repository
from app.devices import service as devices
from app.devices.models import Device, DeviceKind
from app.devices.schemas import DeviceCreate, DeviceSummary
from app.dialing import DestinationClass, allowed_classes
from app.errors import Code, InvalidInput
from app.extensions import repository as extensions_repository
from app.outbox import record as outbox
from app.pagination import Page, PageParams, decode_cursor, encode_cursor
from app.quotas import repository as quotas_repository
from app.quotas.periods import period_of
from app.quotas.service import used_minutes
from app.tenants.models import Tenant
from app.user_record import repository as user_record_repository
from app.user_record import service as user_record
from app.user_record.models import User
from app.user_record.schemas import UserCreate, UserUpdate
from app.user_record.service import TenantUser
from app.users import repository
from app.users.repository import Position, SortValue, UserSort
from app.users.schemas import (
    MinutesSummary,
    OutboundLimits,
    Toggles,
    TogglesUpdate,
    UserCreated,
    UserOut,
)


def default_device(display_name: str) -> DeviceCreate:
    """The SIP account every new user gets unless told otherwise (by a single create, and by an
    import row that lists no devices): a web device named after them."""
    return DeviceCreate(name=devices.default_device_name(display_name), kind=DeviceKind.web)


async def _present(session: AsyncSession, *, tenant: Tenant, page: list[User]) -> list[UserOut]:
    """Users as the Users table shows them: four queries whatever the page's size."""
    user_ids = [user.id for user in page]
    period = period_of(utcnow(), tenant.timezone)
    used = await quotas_repository.used_seconds_by_user(
        session, tenant_id=tenant.id, user_ids=user_ids, period=period
    )
    rows = await devices_repository.list_user_devices(
        session, tenant_id=tenant.id, user_ids=user_ids
    )
    counts = await devices.contact_counts(
        session, tenant_id=tenant.id, device_ids=[device.id for device in rows]
    )
    devices_of: dict[uuid.UUID, list[DeviceSummary]] = defaultdict(list)
    for device in rows:
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
            version=user.version,
            display_name=user.display_name,
            email=user.email,
            external_ref=user.external_ref,
            enabled=user.enabled,
            outbound_allowed=user.outbound_allowed,
            auto_answer=user.auto_answer,
            limit_minutes=user.limit_minutes,
            outbound=outbound_limits(tenant, user),
            devices=devices_of[user.id],
            extensions=numbers_of[user.id],
            minutes=MinutesSummary(
                period=period,
                used_minutes=used_minutes(used.get(user.id, 0)),
                limit_minutes=user.limit_minutes,
                version=user.quota_version,
            ),
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
        for user in page
    ]


def outbound_limits(tenant: Tenant, user: User) -> OutboundLimits:
    allowed = allowed_classes(tenant.outbound_classes, user.extra_classes, user.removed_classes)
    return OutboundLimits(
        classes=[c for c in DestinationClass if c in allowed],
        extra_classes=user.extra_classes,
        removed_classes=user.removed_classes,
        max_concurrent_calls=(
            user.max_concurrent_calls
            if user.max_concurrent_calls is not None
            else tenant.max_concurrent_calls
        ),
        own_max_concurrent_calls=user.max_concurrent_calls,
        max_calls_per_minute=tenant.max_calls_per_minute,
        suspended=user.outbound_suspended,
        suspended_at=user.outbound_suspended_at,
    )


async def get_user(session: AsyncSession, *, current: TenantUser) -> UserOut:
    return (await _present(session, tenant=current.tenant, page=[current.user]))[0]


async def user_row(session: AsyncSession, *, tenant: Tenant, user_id: uuid.UUID) -> UserOut:
    """The user's row as a change of its devices, extensions, switches or quota left it."""
    current = await user_record.require_user(session, tenant_id=tenant.id, user_id=user_id)
    return await get_user(session, current=current)


async def create_user(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant: Tenant,
    data: UserCreate,
    user_name: str | None = None,
) -> UserCreated:
    """A new agent, with the one SIP account every agent gets by default (its password is in
    this answer once); `user_name`: the login name a SCIM directory gave them."""
    user, password = await add_agent(session, cipher, tenant=tenant, data=data, user_name=user_name)
    shown = (await _present(session, tenant=tenant, page=[user]))[0]
    return UserCreated(**shown.model_dump(), default_device_password=password)


async def add_agent(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant: Tenant,
    data: UserCreate,
    user_name: str | None = None,
) -> tuple[User, str]:
    """The write path of a new agent (a single create's, a SCIM directory's): the user and the
    default web device, made as the import makes them (the user with its search text already),
    and their events and audit entries in one statement each. Returns the user and the
    device's password."""
    at = utcnow()
    new = user_record.new_user(tenant_id=tenant.id, data=data, at=at)
    device = devices.new_device(
        cipher,
        tenant=tenant,
        user_id=new.row["id"],
        data=default_device(data.display_name),
        at=at,
    )
    user = User(**new.row, user_name=user_name)
    user.search_text = user_record_repository.search_text(
        new.row["search_key"], [device.row["search_key"]], []
    )
    session.add(user)
    await flush_or_conflict(session, user_record.conflicts(user))
    stored = Device(**device.row)
    session.add(stored)
    await flush_or_conflict(session, devices.conflicts(stored))
    await outbox.record_many(session, [new.created, device.created])
    return user, device.password


async def list_users(
    session: AsyncSession,
    *,
    tenant: Tenant,
    search: str | None,
    sort: UserSort,
    params: PageParams,
    cursor: str | None = None,
) -> Page[UserOut]:
    """A page of the Users table; read on by `cursor` (the `next` of the page before, in the
    same order), or by offset."""
    found = await repository.list_users(
        session,
        tenant_id=tenant.id,
        search=search,
        sort=sort,
        limit=params.limit,
        offset=params.offset,
        after=_cursor_after(cursor, sort=sort, params=params),
    )
    return Page.of(
        await _present(session, tenant=tenant, page=found.users),
        found.total,
        params,
        next=_next_cursor(found.last, sort=sort),
        capped=found.capped,
    )


def _cursor_after(cursor: str | None, *, sort: UserSort, params: PageParams) -> Position | None:
    """The place a cursor of the Users table carries: [order, value, id]."""
    if cursor is None:
        return None
    order, value, user_id = decode_cursor(cursor, params=params, arity=3)
    if order != sort.value:
        raise InvalidInput("query.cursor", Code.cursor_other_order)
    try:
        if not isinstance(value, str):
            raise ValueError
        place: SortValue
        if repository.sort_column(sort) == "created_at":
            place = datetime.fromisoformat(value)
            if place.tzinfo is None:
                raise ValueError
        else:
            place = base64.urlsafe_b64decode(value.encode())
        return place, uuid.UUID(str(user_id))
    except (ValueError, binascii.Error):
        raise InvalidInput("query.cursor", Code.cursor_invalid) from None


def _next_cursor(last: Position | None, *, sort: UserSort) -> str | None:
    if last is None:
        return None
    value, user_id = last
    if isinstance(value, datetime):
        shown = value.isoformat()
    else:
        shown = base64.urlsafe_b64encode(value).decode()
    return encode_cursor([sort.value, shown, str(user_id)])


async def update_user(session: AsyncSession, *, current: TenantUser, data: UserUpdate) -> UserOut:
    if data.changes().get("enabled") is False and current.user.enabled:
        await devices.end_registrations(
            session, tenant=current.tenant, user_id=current.user.id, reason="user_disabled"
        )
    await user_record.update_user(session, user=current.user, data=data)
    return await get_user(session, current=current)


async def delete_user(session: AsyncSession, *, current: TenantUser) -> None:
    """Deletes the user with their devices and extensions; the SIP edges forget the devices."""
    await devices.forget_devices(session, tenant=current.tenant, user_id=current.user.id)
    await user_record.delete_user(session, user=current.user)


def toggles(user: User) -> Toggles:
    return Toggles(outbound_allowed=user.outbound_allowed, auto_answer=user.auto_answer)


async def update_toggles(session: AsyncSession, *, user: User, data: TogglesUpdate) -> Toggles:
    await user_record.update_user(session, user=user, data=data)
    return toggles(user)
