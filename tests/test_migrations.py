"""The migrations make the schema the models describe, and undo it, on both backends."""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import alembic_config
from app.db.base import UTCDateTime
from app.models import Base
from app.names import name_columns, search_words


async def _admin(url: str, *statements: str) -> None:
    engine = create_async_engine(
        make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def scratch_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same backend, apart from the one the other tests share."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    url = make_url(database_url)
    name = f"{url.database}_migrations"
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    asyncio.run(_admin(database_url, drop, f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(database_url, drop))


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _config(url: str) -> Config:
    config = alembic_config(url)
    config.attributes["configure_logging"] = False
    return config


def test_upgrade_check_downgrade_upgrade(scratch_url: str) -> None:
    config = _config(scratch_url)

    command.upgrade(config, "head")
    command.check(config)
    assert _tables(scratch_url) - {"alembic_version"} == set(Base.metadata.tables)

    command.downgrade(config, "base")
    assert _tables(scratch_url) - {"alembic_version"} == set()

    command.upgrade(config, "head")
    command.check(config)
    assert _tables(scratch_url) - {"alembic_version"} == set(Base.metadata.tables)


def _columns(*names: str) -> list[Any]:
    typed = {"id": sa.Uuid(), "tenant_id": sa.Uuid(), "user_id": sa.Uuid()}
    typed |= {
        "created_at": UTCDateTime(),
        "updated_at": UTCDateTime(),
        "emergency_numbers": sa.JSON(),
    }
    return [sa.column(name, typed.get(name)) for name in names]


def test_names_stored_before_are_searched_and_sorted_once_migrated(scratch_url: str) -> None:
    """The migration that brings search words and sort keys fills them for the users and
    devices already stored, as the service makes them for new ones."""
    config = _config(scratch_url)
    command.upgrade(config, "0fe5df5003f8")
    tenant_id, user_id, device_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    tenant = sa.table(
        "tenant",
        *_columns("id", "name", "sip_domain", "timezone", "emergency_numbers"),
        *_columns("billing_increment_seconds", "created_at", "updated_at"),
    )
    user = sa.table(
        "user_account",
        *_columns("id", "tenant_id", "display_name", "email", "enabled", "outbound_allowed"),
        *_columns("auto_answer", "created_at", "updated_at"),
    )
    device = sa.table(
        "device",
        *_columns("id", "tenant_id", "user_id", "name", "name_key", "kind", "enabled"),
        *_columns("password_encrypted", "ha1", "ha1_sha256", "created_at", "updated_at"),
    )

    async def run(statements: list[Any]) -> list[Any]:
        engine = create_async_engine(scratch_url)
        try:
            async with engine.begin() as conn:
                return [await conn.execute(statement) for statement in statements]
        finally:
            await engine.dispose()

    asyncio.run(
        run(
            [
                tenant.insert().values(
                    id=tenant_id,
                    name="Acme",
                    sip_domain="acme.sip.test",
                    timezone="Asia/Ho_Chi_Minh",
                    emergency_numbers=["113"],
                    billing_increment_seconds=60,
                    created_at=now,
                    updated_at=now,
                ),
                user.insert().values(
                    id=user_id,
                    tenant_id=tenant_id,
                    display_name="Đặng Thị Huỳnh",
                    email="huynh@acme.vn",
                    enabled=True,
                    outbound_allowed=True,
                    auto_answer=False,
                    created_at=now,
                    updated_at=now,
                ),
                device.insert().values(
                    id=device_id,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    name="Desk-2.phone",
                    name_key="desk-2.phone",
                    kind="web",
                    enabled=True,
                    password_encrypted="x",
                    ha1="x",
                    ha1_sha256="x",
                    created_at=now,
                    updated_at=now,
                ),
            ]
        )
    )

    command.upgrade(config, "head")

    async def read() -> tuple[Any, Any]:
        engine = create_async_engine(scratch_url)
        try:
            async with engine.connect() as conn:
                users = await conn.execute(
                    text(
                        "SELECT search_key, name_sort, given_name_sort, quota_version "
                        "FROM user_account"
                    )
                )
                stored_user = users.one()
                devices = await conn.execute(text("SELECT search_key FROM device"))
                return stored_user, devices.one()
        finally:
            await engine.dispose()

    stored_user, stored_device = asyncio.run(read())
    expected = name_columns("Đặng Thị Huỳnh", "huynh@acme.vn")
    assert (
        stored_user.search_key
        == expected["search_key"]
        == " dang thi huynh huynh@acme.vn acme.vn vn"
    )
    assert bytes(stored_user.name_sort) == expected["name_sort"]
    assert bytes(stored_user.given_name_sort) == expected["given_name_sort"]
    assert stored_user.quota_version == 1
    assert stored_device.search_key == search_words(["Desk-2.phone"])


def test_calls_stored_before_the_counter_are_counted_once_migrated(scratch_url: str) -> None:
    """The migration that brings each agent's call counts sets them from the authorizations
    already stored: the live holds open (and the earliest of their expiries), the calls of the
    last minute recent, the rest nowhere."""
    from app.quotas.models import CallAuthorization, CallCounter
    from app.tenants.models import Tenant
    from app.user_record.models import User

    config = _config(scratch_url)
    command.upgrade(config, "head")
    command.downgrade(config, "4f7a2c9e1b35")  # the counts are not stored yet
    now = datetime.now(UTC)
    tenant_id, user_id, idle_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    live_expiry = now + timedelta(minutes=10)

    def call(call_id: str, **fields: Any) -> dict[str, Any]:
        granted = {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "user_id": user_id,
            "call_id": call_id,
            "destination": "0901234567",
            "period": now.strftime("%Y-%m"),
            "allowed": True,
            "reason": "ok",
            "emergency": False,
            "held_seconds": 0,
            "expires_at": live_expiry,
            "released_at": None,
            "created_at": now - timedelta(seconds=10),
        }
        return granted | fields

    hour_ago = now - timedelta(hours=1)
    users = [
        {
            "id": an_id,
            "tenant_id": tenant_id,
            "display_name": name,
            **name_columns(name, None),
        }
        for an_id, name in ((user_id, "Nguyễn Văn An"), (idle_id, "Trần Thị Bình"))
    ]
    calls = [
        call("live"),
        call("live-older", created_at=hour_ago, expires_at=now + timedelta(minutes=5)),
        call("ended", created_at=hour_ago, released_at=hour_ago),
        call("ran-out", created_at=hour_ago, expires_at=now - timedelta(minutes=1)),
        call("refused", allowed=False, reason="too_many_calls", expires_at=None),
        call("sos", emergency=True, destination="113", expires_at=None),
    ]

    async def run() -> list[Any]:
        engine = create_async_engine(scratch_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.insert(Tenant.__table__).values(
                        id=tenant_id, name="Acme", sip_domain="acme.sip.test"
                    )
                )
                await conn.execute(sa.insert(User.__table__), users)
                await conn.execute(sa.insert(CallAuthorization.__table__), calls)
            await asyncio.to_thread(command.upgrade, config, "head")
            async with engine.connect() as conn:
                return list(await conn.execute(sa.select(CallCounter.__table__)))
        finally:
            await engine.dispose()

    rows = asyncio.run(run())
    assert len(rows) == 1  # the agent who never called has no counts
    counts = rows[0]
    assert counts.user_id == user_id
    # Open: "live" and "live-older"; recent: "live" and "refused" (not the emergency call).
    assert (counts.open_calls, counts.calls_in_window, counts.calls_in_last_window) == (2, 2, 0)
    assert counts.open_calls_expiry == now + timedelta(minutes=5)
