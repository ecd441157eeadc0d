"""The call-control store's contract: the same cases against each implementation the backend
has (SQLAlchemy's on SQLite; asyncpg's and SQLAlchemy's on PostgreSQL)."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.callcontrol.store import (
    CallControlStore,
    NewAuthorization,
    NewCall,
    SipAccountKey,
)
from app.callcontrol.store_postgres import PostgresStore
from app.callcontrol.store_sqlalchemy import SqlAlchemyStore
from app.db.session import Database
from app.quotas.models import CallAuthorization, MonthlyUsage
from tests.helpers.api import TenantKeys, add_device, add_extension, db_rows
from tests.helpers.callcontrol import Agent, new_agent

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


@pytest.fixture(params=["asyncpg", "sqlalchemy"])
async def store(request: pytest.FixtureRequest, db: Database) -> AsyncIterator[CallControlStore]:
    if request.param == "asyncpg":
        if db.driver_pool is None:
            pytest.skip("the asyncpg store is PostgreSQL's")
        yield PostgresStore(db.driver_pool, batch_concurrency=2)
    else:
        yield SqlAlchemyStore(db.engine)


def _authorization(
    agent_ids: tuple[uuid.UUID, uuid.UUID], call_id: str, **fields: Any
) -> NewAuthorization:
    tenant_id, user_id = agent_ids
    granted = NewAuthorization(
        tenant_id=tenant_id,
        user_id=user_id,
        device_id=None,
        call_id=call_id,
        destination="0901234567",
        allowed=True,
        reason="ok",
        emergency=False,
        max_duration_seconds=120,
        destination_class="mobile",
        held_seconds=120,
        period="2026-11",
        expires_at=NOW + timedelta(seconds=420),
        created_at=NOW,
    )
    return granted._replace(**fields)


def _call(agent_ids: tuple[uuid.UUID, uuid.UUID], call_id: str, charged: int) -> NewCall:
    tenant_id, user_id = agent_ids
    return NewCall(
        tenant_id=tenant_id,
        user_id=user_id,
        device_id=None,
        call_id=call_id,
        destination="0901234567",
        started_at=NOW,
        duration_seconds=charged - 5,
        charged_seconds=charged,
        period="2026-11",
        emergency=False,
        created_at=NOW,
    )


def _ids(agent: Agent) -> tuple[uuid.UUID, uuid.UUID]:
    return agent.tenant.id, uuid.UUID(agent.id)


async def test_sip_account_by_name_in_any_case_within_the_key_s_tenant(
    store: CallControlStore,
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
) -> None:
    agent = await new_agent(client, tenant, auto_answer=True)
    name = agent.username.upper()

    account = await store.sip_account(SipAccountKey(tenant.sip_domain, name.lower(), tenant.id))
    assert account is not None
    assert (account.username, account.realm, account.user_id) == (
        agent.username,
        tenant.sip_domain,
        uuid.UUID(agent.id),
    )
    assert (account.device_enabled, account.user_enabled, account.auto_answer) == (
        True,
        True,
        True,
    )
    assert len(account.ha1) == 32 and len(account.ha1_sha256) == 64

    platform = await store.sip_account(SipAccountKey(tenant.sip_domain, name.lower(), None))
    assert platform == account
    foreign = SipAccountKey(tenant.sip_domain, name.lower(), other_tenant.id)
    assert await store.sip_account(foreign) is None
    unknown = SipAccountKey(tenant.sip_domain, "nobody", tenant.id)
    assert await store.sip_account(unknown) is None


async def test_sip_accounts_answer_each_key_in_order_within_its_scope(
    store: CallControlStore,
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
) -> None:
    mine, theirs = await new_agent(client, tenant), await new_agent(client, other_tenant)
    own = SipAccountKey(tenant.sip_domain, mine.username.lower(), tenant.id)
    keys = [
        own,
        SipAccountKey(other_tenant.sip_domain, theirs.username.lower(), None),
        SipAccountKey(other_tenant.sip_domain, theirs.username.lower(), tenant.id),
        SipAccountKey(tenant.sip_domain, "nobody", tenant.id),
        own,
    ]

    found = await store.sip_accounts(keys)

    assert [None if a is None else a.username for a in found] == [
        mine.username,
        theirs.username,
        None,
        None,
        mine.username,
    ]
    assert found[0] == await store.sip_account(own)


async def test_extension_holder_rings_enabled_devices_oldest_first(
    store: CallControlStore, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant)
    desk = await add_device(client, tenant.admin, agent.id, name="desk-102", kind="ip_phone")
    spare = await add_device(client, tenant.admin, agent.id, name="spare-102")
    await client.patch(f"/v1/devices/{spare['id']}", json={"enabled": False}, headers=tenant.admin)
    await add_extension(client, tenant.admin, agent.id, "102")
    lonely = await new_agent(client, tenant, display_name="No Phone")
    devices = (await client.get(f"/v1/users/{lonely.id}/devices", headers=tenant.admin)).json()
    await client.delete(f"/v1/devices/{devices['items'][0]['id']}", headers=tenant.admin)
    await add_extension(client, tenant.admin, lonely.id, "103")

    async with store.connection() as conn:
        holder = await conn.extension_holder(
            domain=tenant.sip_domain, number="102", tenant_id=tenant.id
        )
        without_devices = await conn.extension_holder(
            domain=tenant.sip_domain, number="103", tenant_id=None
        )
        free = await conn.extension_holder(
            domain=tenant.sip_domain, number="104", tenant_id=tenant.id
        )

    assert holder is not None
    assert holder.device_names == (agent.username, desk["name"])
    assert holder.user_id == uuid.UUID(agent.id)
    assert without_devices is not None and without_devices.device_names == ()
    assert free is None


async def test_caller_by_username_or_user_id_with_its_tenant_s_call_settings(
    store: CallControlStore,
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=7, outbound_allowed=False)

    async with store.connection() as conn:
        by_name = await conn.caller(
            domain=tenant.sip_domain, username=agent.username.upper(), user_id=None, tenant_id=None
        )
        by_id = await conn.caller(
            domain=tenant.sip_domain,
            username=None,
            user_id=uuid.UUID(agent.id),
            tenant_id=tenant.id,
        )
        foreign = await conn.caller(
            domain=tenant.sip_domain,
            username=agent.username,
            user_id=None,
            tenant_id=other_tenant.id,
        )

    assert by_name is not None and by_id is not None
    assert (by_name.limit_minutes, by_name.outbound_allowed, by_name.timezone) == (
        7,
        False,
        "Asia/Ho_Chi_Minh",
    )
    assert list(by_name.emergency_numbers) == ["113", "114", "115"]
    assert (by_name.dial_plan, by_name.max_concurrent_calls, by_name.max_calls_per_minute) == (
        None,
        4,
        10,
    )
    assert list(by_name.outbound_classes) == [
        "emergency",
        "internal",
        "domestic",
        "mobile",
        "toll_free",
    ]
    assert (list(by_name.extra_classes or ()), by_name.outbound_suspended) == ([], False)
    assert by_name.device_id is not None and by_name.device_enabled is True
    assert (by_id.user_id, by_id.device_id, by_id.device_enabled) == (
        uuid.UUID(agent.id),
        None,
        True,
    )
    assert foreign is None


async def test_an_authorization_is_stored_once_per_call_id(
    store: CallControlStore, client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=10)
    ids = _ids(agent)

    async with store.connection() as conn:
        first, created, _ = await conn.store_authorization(_authorization(ids, "c-1"))
    async with store.connection() as conn:
        again, created_again, counted_again = await conn.store_authorization(
            _authorization(ids, "c-1", allowed=False, reason="quota_exhausted")
        )
        held = await conn.used_and_held(user_id=ids[1], period="2026-11", now=NOW)

    assert (created, created_again) == (True, False)
    assert counted_again is None  # a retry counts nothing
    assert first == again
    assert (first.allowed, first.reason, first.max_duration_seconds) == (True, "ok", 120)
    assert first.destination_class == "mobile"
    assert (held.used_seconds, held.held_seconds) == (0, 120)
    stored = await db_rows(
        db, select(CallAuthorization.id).where(CallAuthorization.call_id == "c-1")
    )
    assert len(stored) == 1


async def test_holds_count_until_released_or_expired_and_only_in_their_month(
    store: CallControlStore, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=10)
    ids = _ids(agent)
    async with store.connection() as conn:
        await conn.store_authorization(_authorization(ids, "live", held_seconds=60))
        await conn.store_authorization(
            _authorization(ids, "expired", held_seconds=90, expires_at=NOW - timedelta(seconds=1))
        )
        await conn.store_authorization(
            _authorization(ids, "october", held_seconds=30, period="2026-10")
        )
        await conn.store_authorization(_authorization(ids, "refused", held_seconds=0))

    async with store.connection() as conn:
        spent = await conn.used_and_held(user_id=ids[1], period="2026-11", now=NOW)
    assert (spent.used_seconds, spent.held_seconds) == (0, 60)


async def test_a_call_is_recorded_charged_and_its_hold_released_once(
    store: CallControlStore, client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=10)
    ids = _ids(agent)
    async with store.connection() as conn:
        await conn.store_authorization(_authorization(ids, "c-2"))

    async with store.connection() as conn:
        call, created, month = await conn.record_call(_call(ids, "c-2", 120))
    async with store.connection() as conn:
        repeated, created_again, _ = await conn.record_call(_call(ids, "c-2", 600))
        spent = await conn.used_and_held(user_id=ids[1], period="2026-11", now=NOW)

    assert (created, created_again) == (True, False)
    assert month == 120  # the month's charged seconds after this call
    assert repeated == call
    assert (call.call_id, call.charged_seconds, call.period) == ("c-2", 120, "2026-11")
    assert (spent.used_seconds, spent.held_seconds) == (120, 0)
    month = await db_rows(
        db, select(MonthlyUsage.used_seconds).where(MonthlyUsage.user_id == ids[1])
    )
    assert [row.used_seconds for row in month] == [120]


async def test_an_uncharged_call_adds_nothing_to_the_month(
    store: CallControlStore, client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant)
    ids = _ids(agent)
    async with store.connection() as conn:
        _, created, month = await conn.record_call(_call(ids, "free", 0))
    assert created is True
    assert month is None
    month = await db_rows(db, select(MonthlyUsage.user_id).where(MonthlyUsage.user_id == ids[1]))
    assert month == []


async def test_begun_work_commits_at_the_end_of_the_block_or_not_at_all(
    store: CallControlStore, client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=4)
    ids = _ids(agent)

    with pytest.raises(RuntimeError):
        async with store.connection() as conn:
            await conn.begin()
            assert await conn.lock_limit(user_id=ids[1]) == 4
            await conn.store_authorization(_authorization(ids, "rolled-back"))
            raise RuntimeError("the request failed after its writes")
    async with store.connection() as conn:
        await conn.begin()
        await conn.store_authorization(_authorization(ids, "kept"))

    stored = await db_rows(db, select(CallAuthorization.call_id))
    assert [row.call_id for row in stored] == ["kept"]
    async with store.connection() as conn:
        assert await conn.lock_limit(user_id=uuid.uuid4()) is None


async def test_open_calls_and_recent_calls_are_counted_apart(
    store: CallControlStore, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant)
    ids = _ids(agent)
    earlier = NOW - timedelta(minutes=5)
    async with store.connection() as conn:
        await conn.store_authorization(_authorization(ids, "old-open", created_at=earlier))
        _, _, first = await conn.store_authorization(_authorization(ids, "open"))
        _, _, expired = await conn.store_authorization(
            _authorization(ids, "expired", expires_at=NOW - timedelta(seconds=1))
        )
        _, _, refused = await conn.store_authorization(
            _authorization(ids, "refused", allowed=False, reason="too_many_calls", expires_at=None)
        )
        _, _, sos = await conn.store_authorization(
            _authorization(ids, "sos", emergency=True, destination="113")
        )
        await conn.record_call(_call(ids, "old-open", 60)._replace(started_at=earlier))

    # As each call is counted: "old-open" of five minutes ago is open but not recent.
    assert first is not None and (first.open_calls, first.recent_calls) == (2, 1)
    assert first.open_calls_exact(NOW)
    # A hold already past its expiry still counts until a recount: the count is no longer exact.
    assert expired is not None and (expired.open_calls, expired.recent_calls) == (3, 2)
    assert not expired.open_calls_exact(NOW)
    assert refused is not None and (refused.open_calls, refused.recent_calls) == (3, 3)
    assert sos is None  # an emergency call is counted nowhere

    async with store.connection() as conn:
        await conn.begin()
        counts = await conn.recount_calls(user_id=ids[1], now=NOW, since=NOW - timedelta(minutes=1))
    # Open: "open" only ("old-open" was reported, "expired" ran out, "refused" never was).
    # Recent: every call asked for in the last minute but the emergency one.
    assert (counts.open_calls, counts.recent_calls) == (1, 3)
    async with store.connection() as conn:
        _, _, after = await conn.store_authorization(_authorization(ids, "next"))
    assert after is not None and (after.open_calls, after.recent_calls) == (2, 4)
    assert after.open_calls_exact(NOW)


async def test_a_report_frees_an_open_call_only_before_its_hold_expires(
    store: CallControlStore, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant)
    ids = _ids(agent)
    async with store.connection() as conn:
        await conn.store_authorization(_authorization(ids, "ends"))
        await conn.store_authorization(
            _authorization(ids, "ran-out", expires_at=NOW - timedelta(seconds=1))
        )
        await conn.record_call(_call(ids, "ends", 60))
        # Reported after its expiry: a recount may already have left it out, so it frees
        # nothing (the count stays above the truth, and inexact, until the next recount).
        await conn.record_call(_call(ids, "ran-out", 60))
        _, _, counts = await conn.store_authorization(_authorization(ids, "third"))
    assert counts is not None and counts.open_calls == 2
    assert not counts.open_calls_exact(NOW)


async def test_a_refusal_replaces_a_granted_answer_and_frees_its_hold(
    store: CallControlStore, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=10)
    ids = _ids(agent)
    async with store.connection() as conn:
        await conn.store_authorization(_authorization(ids, "one-too-many"))
        refused = await conn.refuse_authorization(
            tenant_id=ids[0], call_id="one-too-many", reason="too_many_calls", now=NOW
        )
    async with store.connection() as conn:
        spent = await conn.used_and_held(user_id=ids[1], period="2026-11", now=NOW)
        retry, created, _ = await conn.store_authorization(_authorization(ids, "one-too-many"))
        _, _, counts = await conn.store_authorization(_authorization(ids, "next"))
        await conn.begin()
        exact = await conn.recount_calls(user_id=ids[1], now=NOW, since=NOW)

    assert (refused.allowed, refused.reason, refused.max_duration_seconds) == (
        False,
        "too_many_calls",
        None,
    )
    assert (spent.held_seconds, exact.open_calls) == (0, 1)
    assert counts is not None and counts.open_calls == 1  # "next" alone
    assert (retry, created) == (refused, False)


async def test_a_user_is_suspended_once(
    store: CallControlStore, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant)
    ids = _ids(agent)
    version = (await client.get(f"/v1/users/{agent.id}", headers=tenant.admin)).json()["version"]
    async with store.connection() as conn:
        first = await conn.suspend_outbound(user_id=ids[1], now=NOW)
    async with store.connection() as conn:
        again = await conn.suspend_outbound(user_id=ids[1], now=NOW)
        caller = await conn.caller(
            domain=tenant.sip_domain, username=agent.username, user_id=None, tenant_id=None
        )
    assert (first, again) == (True, False)
    assert caller is not None and caller.outbound_suspended is True
    shown = (await client.get(f"/v1/users/{agent.id}", headers=tenant.admin)).json()
    assert shown["outbound"]["suspended"] is True
    assert shown["version"] == version + 1
