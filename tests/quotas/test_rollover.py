import asyncio
from datetime import UTC, datetime

import httpx
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.db.session import Database
from app.jobs.registry import start_scheduler
from app.outbox.models import Event
from app.quotas.jobs import close_finished_months
from app.quotas.models import MonthRollover, QuotaHistory
from app.settings import Settings
from app.tenants.models import Tenant
from app.user_record.models import User
from tests.helpers.api import TenantKeys
from tests.helpers.callcontrol import new_agent, record_at
from tests.helpers.settings import make_settings


async def _backdate(db: Database, tenant: TenantKeys, created_at: datetime) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            update(Tenant).where(Tenant.id == tenant.id).values(created_at=created_at)
        )
        await conn.execute(
            update(User).where(User.tenant_id == tenant.id).values(created_at=created_at)
        )


async def _closed(db: Database) -> list[tuple[str, int]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(MonthRollover.period, func.count())
            .group_by(MonthRollover.period)
            .order_by(MonthRollover.period)
        )
        return [(r[0], r[1]) for r in rows]


async def test_catch_up_closes_each_missed_month_once(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    await new_agent(client, tenant, limit_minutes=30)
    await _backdate(db, tenant, datetime(2026, 8, 20, tzinfo=UTC))
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    assert await close_finished_months(db, now=now) == 3
    assert await close_finished_months(db, now=now) == 0
    assert await _closed(db) == [("2026-08", 1), ("2026-09", 1), ("2026-10", 1)]


async def test_a_month_closes_at_local_midnight_of_the_tenant(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    await _backdate(db, tenant, datetime(2026, 11, 2, tzinfo=UTC))

    before = datetime(2026, 11, 30, 16, 59, tzinfo=UTC)  # 23:59 in Ho Chi Minh City
    assert await close_finished_months(db, now=before) == 0
    after = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 00:00 on 1 December there
    assert await close_finished_months(db, now=after) == 1
    assert await _closed(db) == [("2026-11", 1)]


async def test_two_replicas_at_the_same_instant_close_a_month_once(
    client: httpx.AsyncClient, db: Database, settings: Settings, tenant: TenantKeys
) -> None:
    await new_agent(client, tenant)
    await _backdate(db, tenant, datetime(2026, 9, 5, tzinfo=UTC))
    now = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    replicas = [Database(settings), Database(settings)]
    try:
        results = await asyncio.gather(
            *(close_finished_months(r, now=now) for r in replicas for _ in range(2))
        )
    finally:
        for replica in replicas:
            await replica.dispose()

    assert sum(results) == 2
    assert await _closed(db) == [("2026-09", 1), ("2026-10", 1)]
    async with db.engine.connect() as conn:
        history = await conn.scalar(select(func.count()).select_from(QuotaHistory))
    assert history == 2


async def test_two_schedulers_started_together_reset_a_tenant_once(
    client: httpx.AsyncClient, db: Database, migrated_url: str, tenant: TenantKeys
) -> None:
    await new_agent(client, tenant)
    await _backdate(db, tenant, datetime(2025, 12, 10, tzinfo=UTC))
    settings = make_settings(migrated_url, scheduler_enabled=True)
    replicas = [Database(settings), Database(settings)]
    finished: list[object] = []
    schedulers = []

    def rollover_finished(event: object) -> None:
        if getattr(event, "job_id", None) == "close-finished-months":
            finished.append(event)

    for replica in replicas:
        scheduler = start_scheduler(replica, settings)
        scheduler.add_listener(rollover_finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        schedulers.append(scheduler)
    try:
        for _ in range(300):
            if len(finished) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=False)
        for replica in replicas:
            await replica.dispose()

    assert [getattr(event, "exception", None) for event in finished] == [None, None]
    months = await _closed(db)
    assert months[0] == ("2025-12", 1)
    assert len(months) >= 11
    assert all(count == 1 for _, count in months)


async def test_history_keeps_the_limit_of_each_closed_month_and_late_usage(
    client: httpx.AsyncClient, app: FastAPI, db: Database, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=100)
    await _backdate(db, tenant, datetime(2026, 9, 3, tzinfo=UTC))
    september = datetime(2026, 9, 10, 3, tzinfo=UTC)
    await record_at(app, agent, "sep", 125, started_at=september, now=september)
    await close_finished_months(db, now=datetime(2026, 10, 2, tzinfo=UTC))
    await client.put(
        f"/v1/users/{agent.id}/quota", json={"limit_minutes": 200}, headers=tenant.admin
    )
    await close_finished_months(db, now=datetime(2026, 11, 2, tzinfo=UTC))
    # Started before September ended, reported after it closed: still September's.
    await record_at(
        app,
        agent,
        "late",
        60,
        started_at=datetime(2026, 9, 30, 16, 59, tzinfo=UTC),
        now=datetime(2026, 11, 2, tzinfo=UTC),
        late_months=2,
    )

    response = await client.get(f"/v1/users/{agent.id}/quota/history", headers=tenant.viewer)

    assert response.status_code == 200
    assert [
        (e["period"], e["limit_minutes"], e["used_seconds"]) for e in response.json()["items"]
    ] == [
        ("2026-10", 200, 0),
        ("2026-09", 100, 240),
    ]


async def test_admin_route_runs_the_job_for_platform_keys_only(
    client: httpx.AsyncClient, db: Database, platform: dict[str, str], tenant: TenantKeys
) -> None:
    await _backdate(db, tenant, datetime(2026, 6, 1, tzinfo=UTC))

    forbidden = await client.post("/v1/jobs/close-finished-months/run", headers=tenant.admin)
    assert forbidden.status_code == 403
    ran = await client.post("/v1/jobs/close-finished-months/run", headers=platform)
    assert ran.status_code == 200
    assert ran.json()["result"] >= 5
    again = await client.post("/v1/jobs/close-finished-months/run", headers=platform)
    assert again.json()["result"] == 0
    missing = await client.post("/v1/jobs/nope/run", headers=platform)
    assert missing.status_code == 404


async def test_a_month_closing_moves_the_minutes_of_those_who_called(
    app: FastAPI, client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    caller = await new_agent(client, tenant, display_name="Called")
    await new_agent(client, tenant, display_name="Silent")
    await _backdate(db, tenant, datetime(2026, 10, 20, tzinfo=UTC))
    november = datetime(2026, 11, 10, 3, 0, tzinfo=UTC)
    await record_at(app, caller, "nov-1", 125, started_at=november, now=november)
    december = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    await record_at(app, caller, "dec-1", 60, started_at=december, now=december)

    assert await close_finished_months(db, now=december) == 2

    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(Event.resource_id, Event.data).where(Event.type == "quota.used_changed")
        )
        announced = [(row.resource_id, {**row.data, "actor": None}) for row in rows]
    # October had no calls, November's caller now counts December's minute.
    assert announced == [
        (
            caller.id,
            {"user_id": caller.id, "period": "2026-12", "used_seconds": 60, "used_minutes": 1}
            | {"actor": None},
        )
    ]
