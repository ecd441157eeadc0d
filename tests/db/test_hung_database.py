"""A database that stops answering (frozen, not stopped) gives every kind of route a 503 with
Retry-After within the configured bounds, and the service recovers by itself when it answers
again."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.clock import utcnow
from app.db.session import Database
from app.main import create_app
from tests.helpers.api import TenantKeys, assert_problem, create_user, new_platform_key, new_tenant
from tests.helpers.callcontrol import Agent, new_agent
from tests.helpers.proxy import HangingProxy
from tests.helpers.settings import make_settings

BOUND = 1.0  # every database timeout of the app under test, in seconds


@pytest.fixture
async def proxy(backend: str, migrated_url: str) -> AsyncIterator[HangingProxy]:
    if backend != "postgresql":
        pytest.skip("a server that hangs is PostgreSQL's; SQLite's locks are tested below")
    url = make_url(migrated_url)
    hanging = HangingProxy(url.host or "127.0.0.1", url.port or 5432)
    await hanging.start()
    yield hanging
    hanging.resume()
    await hanging.close()


@pytest.fixture
async def hung_app(proxy: HangingProxy, migrated_url: str, db: Database) -> AsyncIterator[FastAPI]:
    url = make_url(migrated_url).set(host="127.0.0.1", port=proxy.port)
    settings = make_settings(
        url.render_as_string(hide_password=False),
        database_pool_size=4,
        database_connect_timeout_seconds=BOUND,
        database_pool_timeout_seconds=BOUND,
        database_statement_timeout_seconds=BOUND,
        database_lock_timeout_seconds=BOUND,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def hung_client(hung_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=hung_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        yield c


def _requests(
    client: httpx.AsyncClient, tenant: TenantKeys, agent: Agent
) -> dict[str, Callable[[], Awaitable[httpx.Response]]]:
    """One request of every kind: ORM reads and writes, the hot path, readiness."""
    started = utcnow().isoformat()
    return {
        "list users": lambda: client.get("/v1/users", headers=tenant.admin),
        "create user": lambda: client.post(
            "/v1/users", json={"display_name": "Hung"}, headers=tenant.admin
        ),
        "registrar lookup": lambda: client.get(
            f"/v1/call-control/sip-accounts/{agent.username}",
            params={"domain": agent.domain},
            headers=tenant.call_control,
        ),
        "authorization": lambda: client.post(
            "/v1/call-control/authorizations",
            json=agent.caller(call_id="hung-1", destination="0901234567"),
            headers=tenant.call_control,
        ),
        "usage report": lambda: client.post(
            "/v1/call-control/usage",
            json=agent.caller(
                call_id="hung-2", destination="0901", started_at=started, duration_seconds=5
            ),
            headers=tenant.call_control,
        ),
        "readiness": lambda: client.get("/health/ready"),
    }


async def _timed(request: Callable[[], Awaitable[httpx.Response]]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = await request()
    return response, time.monotonic() - began


async def test_a_hung_database_is_503_within_its_bounds_and_recovers(
    proxy: HangingProxy, hung_client: httpx.AsyncClient, db: Database
) -> None:
    tenant = await new_tenant(hung_client, await new_platform_key(db), "Hung")
    agent = await new_agent(hung_client, tenant, limit_minutes=30)
    requests = _requests(hung_client, tenant, agent)
    # Every pool has connections open when the database stops answering.
    for request in requests.values():
        assert (await request()).status_code < 500

    proxy.hang()
    answers: list[Any] = await asyncio.gather(*(_timed(r) for r in requests.values()))

    for name, (response, elapsed) in zip(requests, answers, strict=True):
        assert response.status_code == 503, (name, response.text)
        assert response.headers.get("retry-after"), name
        # connect, checkout and statement bounds, and giving a stuck connection up
        assert elapsed < 6 * BOUND, (name, elapsed)
    assert_problem(answers[0][0], 503, code="database-unavailable")

    proxy.resume()
    recovered: dict[str, int] = {}
    for name, request in requests.items():
        for _ in range(20):
            status = (await request()).status_code
            if status < 500:
                break
            await asyncio.sleep(0.25)
        recovered[name] = status
    assert all(status < 500 for status in recovered.values()), recovered


async def test_a_locked_sqlite_database_is_503_for_writes_within_the_bound(
    backend: str, migrated_url: str, db: Database
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's write lock")
    application = create_app(make_settings(migrated_url, database_lock_timeout_seconds=BOUND))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            tenant = await new_tenant(c, await new_platform_key(db), "Locked")
            async with db.engine.connect() as other:
                await other.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: the write lock
                response, elapsed = await _timed(
                    lambda: c.post("/v1/users", json={"display_name": "X"}, headers=tenant.admin)
                )
                await other.rollback()
            assert_problem(response, 503, code="database-unavailable")
            assert elapsed < 4 * BOUND
            await create_user(c, tenant.admin)
