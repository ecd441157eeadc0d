"""The benchmark's own PostgreSQL database: created fresh, seeded in bulk with the rows the API
would create (users, their devices with digest HA1 and encrypted password, extensions), and read
back for the usage check."""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.crypto import PasswordCipher, generate_password, ha1_md5, ha1_sha256
from app.db.engine import create_engine
from app.devices.models import Device, DeviceKind
from app.devices.service import name_columns as device_name_columns
from app.dialing import shadows_emergency
from app.extensions.models import Extension
from app.names import name_columns
from app.quotas.models import CallRecord, MonthlyUsage
from app.settings import Settings
from app.tenants.models import Tenant
from app.user_record.models import User

USERNAME_PREFIX = "bench-"
# One user in LIMITED_EVERY has a monthly limit (so authorizations take holds); the others are
# unlimited, the product default.
LIMITED_EVERY = 10
LIMIT_MINUTES = 600
AUTO_ANSWER_EVERY = 4
_BATCH = 2_000


def username(index: int) -> str:
    """The SIP username of seeded user `index` (1-based); bench/lua/common.lua builds the same."""
    return f"{USERNAME_PREFIX}{index:05d}"


def _checked_database_name(database_url: str) -> str:
    name = make_url(database_url).database or ""
    # The database is dropped at start and end: refuse anything that is not obviously ours.
    if "bench" not in name or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    return name


async def _admin_execute(database_url: str, *statements: str) -> None:
    url = make_url(database_url).set(database="postgres")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def recreate_database(database_url: str) -> None:
    name = _checked_database_name(database_url)
    await _admin_execute(
        database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )


async def drop_database(database_url: str) -> None:
    name = _checked_database_name(database_url)
    await _admin_execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def settle_database(database_url: str) -> None:
    """VACUUM ANALYZE after the write runs, so that autovacuum does not start during a later
    measurement and take CPU from it."""
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("VACUUM (ANALYZE)"))
    finally:
        await engine.dispose()


def extension_numbers(emergency_numbers: list[str]) -> Iterator[str]:
    """Every number the API accepts as an extension, 4 digits first."""
    for digits in (4, 3, 2):
        for value in range(10**digits):
            number = f"{value:0{digits}d}"
            if not shadows_emergency(number, emergency_numbers):
                yield number


@dataclass(frozen=True, slots=True)
class Seeded:
    realm: str
    billing_increment_seconds: int
    users: int
    limited_users: int
    seconds: float
    # The first user's device and password, to check what the server makes of the seeded rows.
    sample_username: str
    sample_password: str
    sample_device_id: uuid.UUID


async def _insert(conn: AsyncConnection, model: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(model), rows)


async def seed_users(
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    count: int,
    credentials: list[tuple[str, str]] | None = None,
) -> Seeded:
    """Inserts `count` users, each with one web device and one extension, in one transaction.
    Each device's user name and password are appended to `credentials` when it is given."""
    started = time.monotonic()
    cipher = PasswordCipher(settings.secret_key.get_secret_value())
    engine = create_engine(settings, bounded=False)
    try:
        async with engine.begin() as conn:
            tenant = (
                await conn.execute(
                    select(
                        Tenant.sip_domain,
                        Tenant.emergency_numbers,
                        Tenant.billing_increment_seconds,
                    ).where(Tenant.id == tenant_id)
                )
            ).one()
            realm: str = tenant.sip_domain
            numbers = extension_numbers(tenant.emergency_numbers)
            sample: tuple[str, str, uuid.UUID] | None = None
            limited = 0
            users: list[dict[str, Any]] = []
            devices: list[dict[str, Any]] = []
            extensions: list[dict[str, Any]] = []
            for index in range(1, count + 1):
                user_id, device_id = uuid.uuid4(), uuid.uuid4()
                name, password = username(index), generate_password()
                limit = LIMIT_MINUTES if index % LIMITED_EVERY == 0 else None
                limited += limit is not None
                display_name = f"Bench Agent {index:05d}"
                names, device_names = name_columns(display_name, None), device_name_columns(name)
                number = next(numbers)
                users.append(
                    {
                        "id": user_id,
                        "tenant_id": tenant_id,
                        "display_name": display_name,
                        **names,
                        # What refresh_search_text makes of the user's words, device and
                        # extension.
                        "search_text": "".join(
                            (str(names["search_key"]), device_names["search_key"], f" {number}")
                        ),
                        "auto_answer": index % AUTO_ANSWER_EVERY == 0,
                        "limit_minutes": limit,
                    }
                )
                devices.append(
                    {
                        "id": device_id,
                        "tenant_id": tenant_id,
                        "user_id": user_id,
                        **device_names,
                        "kind": DeviceKind.web,
                        "password_encrypted": cipher.encrypt(password),
                        "ha1": ha1_md5(name, realm, password),
                        "ha1_sha256": ha1_sha256(name, realm, password),
                    }
                )
                extensions.append({"tenant_id": tenant_id, "user_id": user_id, "number": number})
                if credentials is not None:
                    credentials.append((name, password))
                if sample is None:
                    sample = (name, password, device_id)
                if len(users) == _BATCH or index == count:
                    await _insert(conn, User, users)
                    await _insert(conn, Device, devices)
                    await _insert(conn, Extension, extensions)
                    users, devices, extensions = [], [], []
        # Fresh tables have no planner statistics yet; a live database would have them.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
    assert sample is not None, "seed at least one user"
    return Seeded(
        realm=realm,
        billing_increment_seconds=tenant.billing_increment_seconds,
        users=count,
        limited_users=limited,
        seconds=time.monotonic() - started,
        sample_username=sample[0],
        sample_password=sample[1],
        sample_device_id=sample[2],
    )


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    calls: int
    duration_seconds: int
    charged_seconds: int
    used_seconds: int


async def ledger_totals(settings: Settings) -> LedgerTotals:
    """What the database recorded: the call ledger and the monthly counters."""
    engine = create_engine(settings, bounded=False)
    try:
        async with engine.connect() as conn:
            calls = (
                await conn.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(CallRecord.duration_seconds), 0),
                        func.coalesce(func.sum(CallRecord.charged_seconds), 0),
                    )
                )
            ).one()
            used = await conn.scalar(select(func.coalesce(func.sum(MonthlyUsage.used_seconds), 0)))
    finally:
        await engine.dispose()
    return LedgerTotals(
        calls=int(calls[0]),
        duration_seconds=int(calls[1]),
        charged_seconds=int(calls[2]),
        used_seconds=int(used or 0),
    )
