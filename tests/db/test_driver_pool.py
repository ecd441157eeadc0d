"""The call-control routes' own asyncpg connections (app.db.driver.DriverPool)."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from app.db.driver import APPLICATION_NAME
from app.db.session import Database
from app.main import create_app
from app.quotas.models import CallAuthorization
from tests.helpers.api import TenantKeys, assert_problem, db_rows, new_platform_key, new_tenant
from tests.helpers.callcontrol import Agent, new_agent
from tests.helpers.settings import make_settings


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no server connections: the hot paths use the engine's own")


@pytest.fixture
async def small_pool_app(migrated_url: str, db: Database) -> AsyncIterator[FastAPI]:
    """A second app on the same database whose pools hold two connections each."""
    application = create_app(make_settings(migrated_url, database_pool_size=2))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def small_client(small_pool_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=small_pool_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        yield c


@pytest.fixture
async def small_agent(small_client: httpx.AsyncClient, db: Database) -> Agent:
    platform = await new_platform_key(db)
    tenant: TenantKeys = await new_tenant(small_client, platform, "Pool")
    return await new_agent(small_client, tenant)


async def _lookup(client: httpx.AsyncClient, agent: Agent) -> int:
    response = await client.get(
        f"/v1/call-control/sip-accounts/{agent.username}",
        params={"domain": agent.domain},
        headers=agent.tenant.call_control,
    )
    return response.status_code


async def _hot_backends(db: Database) -> list[int]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APPLICATION_NAME},
        )
        return [row.pid for row in rows]


async def _end_hot_connections(db: Database) -> None:
    """The server ends every call-control connection, as a restart or an administrator would."""
    async with db.engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": APPLICATION_NAME},
        )


async def test_concurrent_requests_beyond_the_pool_wait_their_turn(
    backend: str, small_client: httpx.AsyncClient, small_agent: Agent, db: Database
) -> None:
    before = set(await _hot_backends(db)) if backend == "postgresql" else set()
    statuses = await asyncio.gather(*(_lookup(small_client, small_agent) for _ in range(40)))
    assert statuses == [200] * 40
    if backend == "postgresql":
        opened = set(await _hot_backends(db)) - before
        assert 1 <= len(opened) <= 2


async def test_connections_closed_by_the_server_are_replaced(
    postgres_only: None, small_client: httpx.AsyncClient, small_agent: Agent, db: Database
) -> None:
    await asyncio.gather(*(_lookup(small_client, small_agent) for _ in range(4)))
    await _end_hot_connections(db)
    await asyncio.sleep(0.2)  # the termination reaches the idle connections' sockets
    statuses = await asyncio.gather(*(_lookup(small_client, small_agent) for _ in range(4)))
    assert statuses == [200] * 4


async def test_connections_ended_under_load_never_answer_500(
    postgres_only: None, small_client: httpx.AsyncClient, small_agent: Agent, db: Database
) -> None:
    """The server ends the call-control connections while lookups and authorizations use them
    (a database restarted or failed over, an administrator's pg_terminate_backend): a lookup is
    asked again on a new connection and answered; an authorization, which may have written, is
    503 (the edge retries it), never a 500."""
    await asyncio.gather(*(_lookup(small_client, small_agent) for _ in range(4)))
    lookups: list[int] = []
    authorizations: list[int] = []

    async def authorize(n: int) -> int:
        response = await small_client.post(
            "/v1/call-control/authorizations",
            json=small_agent.caller(call_id=f"ended-{n}", destination="0901234567"),
            headers=small_agent.tenant.call_control,
        )
        return response.status_code

    for round in range(10):

        async def end_them(delay: float = 0.002 * round) -> None:
            await asyncio.sleep(delay)
            await _end_hot_connections(db)

        _, *statuses = await asyncio.gather(
            end_them(),
            *(_lookup(small_client, small_agent) for _ in range(6)),
            *(authorize(round * 10 + n) for n in range(2)),
        )
        lookups += statuses[:6]
        authorizations += statuses[6:]
    assert set(lookups) == {200}
    assert set(authorizations) <= {200, 503}


async def test_a_cancelled_statement_gives_its_slot_back(
    postgres_only: None,
    small_pool_app: FastAPI,
    small_client: httpx.AsyncClient,
    small_agent: Agent,
) -> None:
    hot: Database = small_pool_app.state.db

    async def stuck() -> None:
        assert hot.driver_pool is not None
        async with hot.driver_pool.connection() as conn:
            await conn.fetch("SELECT pg_sleep(30)")

    tasks = [asyncio.create_task(stuck()) for _ in range(2)]
    await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Both slots are free again, and the interrupted connections are not handed out.
    statuses = await asyncio.wait_for(
        asyncio.gather(*(_lookup(small_client, small_agent) for _ in range(4))), timeout=10
    )
    assert statuses == [200] * 4


async def test_a_statement_stuck_on_a_lock_is_503_and_leaves_nothing_behind(
    postgres_only: None, migrated_url: str, db: Database
) -> None:
    application = create_app(make_settings(migrated_url, database_statement_timeout_seconds=0.3))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            tenant = await new_tenant(c, await new_platform_key(db), "Locked")
            agent = await new_agent(c, tenant, limit_minutes=10)
            body = agent.caller(call_id="stuck-1", destination="0901234567")
            url = "/v1/call-control/authorizations"

            # Another transaction holds the user's row, as a very slow authorization would.
            async with db.engine.connect() as other:
                await other.execute(
                    text("SELECT 1 FROM user_account WHERE id = :id FOR UPDATE"),
                    {"id": agent.id},
                )
                stuck = await asyncio.wait_for(
                    c.post(url, json=body, headers=tenant.call_control), timeout=10
                )
                await other.rollback()

            assert_problem(stuck, 503, code="database-unavailable")
            stored = await db_rows(
                db, select(CallAuthorization.id).where(CallAuthorization.call_id == "stuck-1")
            )
            assert stored == []
            retried = await c.post(url, json=body, headers=tenant.call_control)
            assert retried.status_code == 200
            assert (retried.json()["allowed"], retried.json()["max_duration_seconds"]) == (
                True,
                600,
            )
