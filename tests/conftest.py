"""Fixtures: every database test runs on SQLite and on PostgreSQL, through real HTTP over ASGI.

PostgreSQL runs when TEST_DATABASE_URL names a database (postgresql+asyncpg://...), whose public
schema is dropped and made again by the migrations at the start of the run.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import alembic_config
from app.db.session import Database
from app.main import create_app
from app.models import Base
from app.settings import Settings
from tests.helpers.api import TenantKeys, new_platform_key, new_tenant
from tests.helpers.receiver import RPC_OK, Receiver
from tests.helpers.settings import make_settings


def _postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail("CI must run the PostgreSQL tests: set TEST_DATABASE_URL", pytrace=False)
    return None


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        path = Path(tmp_path_factory.mktemp("db")) / "antring-test.db"
        return f"sqlite+aiosqlite:///{path}"
    url = _postgres_url()
    if url is None:
        pytest.skip("PostgreSQL tests skipped: set TEST_DATABASE_URL=postgresql+asyncpg://...")
    return url


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    import asyncio

    if database_url.startswith("postgresql"):
        asyncio.run(_reset_postgres(database_url))
    command.upgrade(alembic_config(database_url), "head")
    return database_url


@pytest.fixture(scope="session")
def settings(migrated_url: str) -> Settings:
    return make_settings(migrated_url)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def db(app: FastAPI) -> AsyncIterator[Database]:
    database: Database = app.state.db
    yield database
    async with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture
async def client(app: FastAPI, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        yield c


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


@pytest.fixture
async def platform(db: Database) -> dict[str, str]:
    return await new_platform_key(db)


@pytest.fixture
async def tenant(client: httpx.AsyncClient, platform: dict[str, str]) -> TenantKeys:
    return await new_tenant(client, platform, "Acme")


@pytest.fixture
async def other_tenant(client: httpx.AsyncClient, platform: dict[str, str]) -> TenantKeys:
    return await new_tenant(client, platform, "Globex")


@pytest.fixture
async def edge() -> AsyncIterator[Receiver]:
    """A SIP edge's JSON-RPC on 127.0.0.1, taking every call."""
    receiver = Receiver(answer=RPC_OK)
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture
async def pushing_app(migrated_url: str, edge: Receiver, db: Database) -> AsyncIterator[FastAPI]:
    """The app, telling `edge` what to drop. `db` empties the tables afterwards."""
    settings = make_settings(migrated_url, edge_rpc_urls=[edge.url], edge_rpc_token="edge-token")
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
