import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from app.db.session import Database
from app.quotas.models import CallRecord, MonthlyUsage
from tests.helpers.api import TenantKeys, new_tenant
from tests.helpers.callcontrol import Agent, new_agent, quota, report


async def test_a_call_is_charged_in_whole_billing_increments(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    response = await report(client, agent, "c-61", 61, started_at="2026-11-10T03:00:00Z")

    assert response.status_code == 201
    assert response.json()["charged_seconds"] == 120
    assert response.json()["period"] == "2026-11"
    zero = await report(client, agent, "c-0", 0, started_at="2026-11-10T04:00:00Z")
    assert zero.json()["charged_seconds"] == 0


async def test_200_concurrent_reports_sum_exactly(
    client: httpx.AsyncClient, db: Database, platform: dict[str, str]
) -> None:
    tenant = await new_tenant(client, platform, "Busy", billing_increment_seconds=1)
    agent = await new_agent(client, tenant)
    durations = [7 + (i * 13) % 300 for i in range(200)]

    responses = await asyncio.gather(
        *(
            report(client, agent, f"call-{i}", d, started_at="2026-11-12T02:00:00Z")
            for i, d in enumerate(durations)
        )
    )

    assert [r.status_code for r in responses] == [201] * 200
    async with db.engine.connect() as conn:
        used = await conn.scalar(
            select(MonthlyUsage.used_seconds).where(MonthlyUsage.period == "2026-11")
        )
        ledger = await conn.scalar(select(func.count()).select_from(CallRecord))
    assert used == sum(durations)
    assert ledger == 200


async def test_the_same_report_five_times_counts_once(
    client: httpx.AsyncClient, db: Database, agent: Agent
) -> None:
    responses = await asyncio.gather(*(report(client, agent, "dup", 95) for _ in range(5)))

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
    assert all(r.json() == responses[0].json() for r in responses)
    async with db.engine.connect() as conn:
        used = await conn.scalar(select(MonthlyUsage.used_seconds))
        ledger = await conn.scalar(select(func.count()).select_from(CallRecord))
    assert (used, ledger) == (120, 1)


async def test_emergency_calls_are_recorded_but_never_charged(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    response = await report(client, agent, "sos", 600, destination="115")

    assert response.status_code == 201
    assert (response.json()["emergency"], response.json()["charged_seconds"]) == (True, 0)


@pytest.mark.parametrize(
    ("timezone", "started_at", "period"),
    [
        ("Asia/Ho_Chi_Minh", "2026-11-30T18:00:00Z", "2026-12"),
        ("UTC", "2026-11-30T18:00:00Z", "2026-11"),
        ("Asia/Ho_Chi_Minh", "2027-03-31T16:59:59Z", "2027-03"),
        ("Asia/Ho_Chi_Minh", "2027-03-31T17:00:00Z", "2027-04"),
        ("Asia/Ho_Chi_Minh", "2028-02-29T16:30:00Z", "2028-02"),
        ("Asia/Ho_Chi_Minh", "2028-02-29T17:30:00Z", "2028-03"),
        ("Europe/Berlin", "2027-03-31T21:59:00Z", "2027-03"),
        ("Europe/Berlin", "2027-03-31T22:00:00Z", "2027-04"),
    ],
)
async def test_a_call_counts_in_the_month_it_started_in_the_tenant_time_zone(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    timezone: str,
    started_at: str,
    period: str,
) -> None:
    tenant = await new_tenant(client, platform, "Zoned", timezone=timezone)
    agent = await new_agent(client, tenant)

    response = await report(client, agent, "edge", 30, started_at=started_at)

    assert response.status_code == 201
    assert response.json()["period"] == period


async def test_usage_this_month_shows_in_the_quota_and_the_ledger_newest_first(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    from app.clock import utcnow

    now = utcnow()
    await client.put(
        f"/v1/users/{agent.id}/quota", json={"limit_minutes": 10}, headers=agent.tenant.admin
    )
    await report(client, agent, "old", 60, started_at="2020-01-15T03:00:00Z")
    await report(client, agent, "new", 150, started_at=now.isoformat())

    shown = await quota(client, agent)
    assert (shown["used_seconds"], shown["used_minutes"], shown["remaining_seconds"]) == (
        180,
        3,
        420,
    )

    calls = await client.get(f"/v1/users/{agent.id}/calls", headers=agent.tenant.viewer)
    assert calls.status_code == 200
    assert [c["call_id"] for c in calls.json()["items"]] == ["new", "old"]
    assert calls.json()["total"] == 2
    page = await client.get(
        f"/v1/users/{agent.id}/calls?limit=1&offset=1", headers=agent.tenant.viewer
    )
    assert [c["call_id"] for c in page.json()["items"]] == ["old"]


async def test_usage_for_an_unknown_caller_is_404_and_counts_nothing(
    client: httpx.AsyncClient, agent: Agent, other_tenant: TenantKeys
) -> None:
    response = await client.post(
        "/v1/call-control/usage",
        json=agent.caller(
            call_id="x", destination="0901", started_at="2026-11-10T03:00:00Z", duration_seconds=9
        ),
        headers=other_tenant.call_control,
    )
    assert response.status_code == 404
    assert (await quota(client, agent))["used_seconds"] == 0


async def test_usage_report_validation(client: httpx.AsyncClient, agent: Agent) -> None:
    response = await client.post(
        "/v1/call-control/usage",
        json=agent.caller(
            call_id="x", destination="0901", started_at="2026-11-10T03:00:00", duration_seconds=-1
        ),
        headers=agent.tenant.call_control,
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.started_at", "body.duration_seconds"}
