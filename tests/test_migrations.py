"""The migrations make the schema the models describe, and undo it, on both backends."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import alembic_config
from app.models import Base


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
