import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.sql import dialect_insert
from app.devices.models import Device
from app.provisioning.models import (
    ProvisioningAccess,
    ProvisioningFetch,
    ProvisioningLink,
    ProvisioningNonce,
)
from app.user_record.models import User

_FETCHES = cast(Table, ProvisioningFetch.__table__)
_NONCES = cast(Table, ProvisioningNonce.__table__)


async def get_access(
    session: AsyncSession, *, tenant_id: uuid.UUID, for_update: bool = False
) -> ProvisioningAccess | None:
    query = select(ProvisioningAccess).where(ProvisioningAccess.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def device_by_mac(
    session: AsyncSession, *, tenant_id: uuid.UUID, mac: str
) -> tuple[Device, User] | None:
    row = (
        await session.execute(
            select(Device, User)
            .join(User, User.id == Device.user_id)
            .where(Device.tenant_id == tenant_id, Device.mac == mac)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def device_id_by_mac(
    session: AsyncSession, *, tenant_id: uuid.UUID, mac: str
) -> uuid.UUID | None:
    return await session.scalar(
        select(Device.id).where(Device.tenant_id == tenant_id, Device.mac == mac)
    )


async def get_user(session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID) -> User:
    user = await session.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))
    assert user is not None  # a device's user: the foreign key keeps it
    return user


async def add_fetch(session: AsyncSession, fetch: ProvisioningFetch) -> None:
    session.add(fetch)
    await session.flush()


async def count_fetch(session: AsyncSession, values: dict[str, Any]) -> None:
    """Adds one request to the row whose `id` the values name, made from them if there is none
    yet: one statement, so concurrent requests (on any replica) count on one row."""
    statement = dialect_insert(session, _FETCHES).values(**values, count=1)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[_FETCHES.c.id],
            set_={
                "count": _FETCHES.c.count + 1,
                "last_fetched_at": statement.excluded.last_fetched_at,
            },
        )
    )


async def claim_nonce(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    nonce: str,
    count: int,
    expires_at: datetime,
) -> bool:
    """Records that `nonce` was used with `count`; False if it was used with this count or a
    higher one already (on any replica: the row is the database's)."""
    statement = dialect_insert(session, _NONCES).values(
        nonce=nonce, tenant_id=tenant_id, highest_count=count, expires_at=expires_at
    )
    claimed = await session.execute(
        statement.on_conflict_do_update(
            index_elements=[_NONCES.c.nonce],
            set_={"highest_count": statement.excluded.highest_count},
            where=_NONCES.c.highest_count < statement.excluded.highest_count,
        ).returning(_NONCES.c.nonce)
    )
    return claimed.first() is not None


async def list_fetches(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[ProvisioningFetch], int]:
    """The tenant's fetches (one device's, when given), newest first."""
    where = [ProvisioningFetch.tenant_id == tenant_id]
    if device_id is not None:
        where.append(ProvisioningFetch.device_id == device_id)
    total = await session.scalar(select(func.count()).select_from(ProvisioningFetch).where(*where))
    rows = await session.scalars(
        select(ProvisioningFetch)
        .where(*where)
        .order_by(ProvisioningFetch.fetched_at.desc(), ProvisioningFetch.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total or 0


async def use_link(
    session: AsyncSession, *, token_hash: str, now: datetime
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """Marks an unused, unexpired link used, in one statement (two scans of one code cannot
    both win); returns its tenant and device."""
    row = (
        await session.execute(
            update(ProvisioningLink)
            .where(
                ProvisioningLink.token_hash == token_hash,
                ProvisioningLink.used_at.is_(None),
                ProvisioningLink.expires_at > now,
            )
            .values(used_at=now)
            .returning(ProvisioningLink.tenant_id, ProvisioningLink.device_id)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def find_link(session: AsyncSession, *, token_hash: str) -> ProvisioningLink | None:
    return await session.scalar(
        select(ProvisioningLink).where(ProvisioningLink.token_hash == token_hash)
    )


async def prune(
    session: AsyncSession,
    *,
    fetched_before: datetime,
    links_expired_before: datetime,
    now: datetime,
) -> int:
    """Forgets fetches older than the retention, links expired a while ago (until then a
    scan of a used or expired code still answers 410, not 404), and expired nonces."""
    deleted = [
        await session.execute(
            delete(ProvisioningFetch).where(ProvisioningFetch.fetched_at < fetched_before)
        ),
        await session.execute(
            delete(ProvisioningLink).where(ProvisioningLink.expires_at < links_expired_before)
        ),
        await session.execute(delete(ProvisioningNonce).where(ProvisioningNonce.expires_at < now)),
    ]
    return sum(int(getattr(result, "rowcount", 0) or 0) for result in deleted)
