"""Fixtures: every database test runs on SQLite and on PostgreSQL, through real HTTP over ASGI.

PostgreSQL runs when TEST_DATABASE_URL names a database (postgresql+asyncpg://...), whose public
schema is dropped and made again by the migrations at the start of the run.
"""

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.models import Role
from app.auth.service import create_api_key
from app.cli import alembic_config
from app.database import Database
from app.main import create_app
from app.models import Base
from app.settings import Settings

TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"

T = TypeVar("T")


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


def make_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "secret_key": TEST_SECRET_KEY,
        "bootstrap": False,
        "scheduler_enabled": False,
        "api_key_cache_seconds": 0,
        "sip_proxy_host": "sip.test.example",
        "sip_websocket_url": "wss://sip.test.example:7443/ws",
    }
    values.update(overrides)
    return Settings(**values)


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


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class TenantKeys:
    id: uuid.UUID
    sip_domain: str
    admin: dict[str, str]
    viewer: dict[str, str]
    call_control: dict[str, str]


async def new_platform_key(db: Database, role: Role = Role.admin) -> dict[str, str]:
    async with db.session_scope() as session:
        _, secret = await create_api_key(session, tenant_id=None, role=role, name="test platform")
    return bearer(secret)


@pytest.fixture
async def platform(db: Database) -> dict[str, str]:
    return await new_platform_key(db)


async def new_tenant(
    client: httpx.AsyncClient, platform: dict[str, str], name: str, **fields: Any
) -> TenantKeys:
    body = {"name": name, "sip_domain": f"{name.lower()}.sip.test", **fields}
    response = await client.post("/v1/tenants", json=body, headers=platform)
    assert response.status_code == 201, response.text
    tenant = response.json()
    keys = {}
    for role in Role:
        r = await client.post(
            f"/v1/tenants/{tenant['id']}/api-keys",
            json={"name": role.value, "role": role.value},
            headers=platform,
        )
        assert r.status_code == 201, r.text
        keys[role.value] = bearer(r.json()["key"])
    return TenantKeys(
        id=uuid.UUID(tenant["id"]),
        sip_domain=tenant["sip_domain"],
        admin=keys["admin"],
        viewer=keys["viewer"],
        call_control=keys["call_control"],
    )


@pytest.fixture
async def tenant(client: httpx.AsyncClient, platform: dict[str, str]) -> TenantKeys:
    return await new_tenant(client, platform, "Acme")


@pytest.fixture
async def other_tenant(client: httpx.AsyncClient, platform: dict[str, str]) -> TenantKeys:
    return await new_tenant(client, platform, "Globex")


async def create_user(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"display_name": "Lan Nguyen", **fields}
    response = await client.post("/v1/users", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def add_device(
    client: httpx.AsyncClient, headers: dict[str, str], user_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"kind": "softphone", **fields}
    response = await client.post(f"/v1/users/{user_id}/devices", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def add_extension(
    client: httpx.AsyncClient, headers: dict[str, str], user_id: str, number: str
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/users/{user_id}/extensions", json={"number": number}, headers=headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_problem(
    response: httpx.Response, status: int, *, field: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (naming `field` when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    if code is not None:
        assert body["type"] == f"urn:antring:problem:{code}", body
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
        assert all(e["message"] and e["type"] for e in body["errors"]), body
    return body


async def db_get(db: Database, model: type[T], id: str | uuid.UUID) -> T | None:
    """A row as it is now committed in the database, not as any response describes it."""
    async with db.sessionmaker() as session:
        return await session.get(model, uuid.UUID(str(id)))


async def db_rows(db: Database, statement: Any) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(statement)).all())
