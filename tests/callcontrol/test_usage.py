import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from app.clock import utcnow
from app.db.session import Database
from app.quotas.models import CallRecord, MonthlyUsage
from app.quotas.periods import period_of, period_start, shift_period
from tests.helpers.api import TenantKeys, assert_problem, db_rows, new_tenant
from tests.helpers.callcontrol import (
    Agent,
    authorize,
    new_agent,
    quota,
    report,
    without_call_limits,
)


async def test_a_call_is_charged_in_whole_billing_increments(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    response = await report(client, agent, "c-61", 61)

    assert response.status_code == 201
    assert response.json()["charged_seconds"] == 120
    assert response.json()["period"] == period_of(utcnow(), "Asia/Ho_Chi_Minh")
    zero = await report(client, agent, "c-0", 0)
    assert zero.json()["charged_seconds"] == 0


async def test_200_concurrent_reports_sum_exactly(
    client: httpx.AsyncClient, db: Database, platform: dict[str, str]
) -> None:
    tenant = await new_tenant(client, platform, "Busy", billing_increment_seconds=1)
    agent = await new_agent(client, tenant)
    durations = [7 + (i * 13) % 300 for i in range(200)]
    started_at = utcnow().isoformat()

    responses = await asyncio.gather(
        *(
            report(client, agent, f"call-{i}", d, started_at=started_at)
            for i, d in enumerate(durations)
        )
    )

    assert [r.status_code for r in responses] == [201] * 200
    async with db.engine.connect() as conn:
        used = await conn.scalar(
            select(MonthlyUsage.used_seconds).where(
                MonthlyUsage.period == period_of(utcnow(), "Asia/Ho_Chi_Minh")
            )
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


async def test_a_call_counts_in_the_month_it_started_in_the_tenant_time_zone(
    client: httpx.AsyncClient, platform: dict[str, str]
) -> None:
    # Just after this month began in Ho Chi Minh City (UTC+7), it is still last month in UTC.
    now = utcnow()
    month_start = period_start(period_of(now, "Asia/Ho_Chi_Minh"), "Asia/Ho_Chi_Minh")
    started_at = month_start + min(timedelta(hours=1), (now - month_start) / 2)
    expected = {
        "Asia/Ho_Chi_Minh": period_of(now, "Asia/Ho_Chi_Minh"),
        "UTC": shift_period(period_of(now, "Asia/Ho_Chi_Minh"), -1),
    }
    for timezone, period in expected.items():
        name = "Saigon" if timezone == "Asia/Ho_Chi_Minh" else "Greenwich"
        tenant = await new_tenant(client, platform, name, timezone=timezone)
        agent = await new_agent(client, tenant)

        response = await report(client, agent, "edge", 30, started_at=started_at.isoformat())

        assert response.status_code == 201, response.text
        assert response.json()["period"] == period


async def test_usage_this_month_shows_in_the_quota_and_the_ledger_newest_first(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    now = utcnow()
    await client.put(
        f"/v1/users/{agent.id}/quota", json={"limit_minutes": 10}, headers=agent.tenant.admin
    )
    # Earlier, but in this month too (the tenant's calendar).
    month_start = period_start(period_of(now, "Asia/Ho_Chi_Minh"), "Asia/Ho_Chi_Minh")
    earlier = now - min(timedelta(hours=1), (now - month_start) / 2)
    await report(client, agent, "old", 60, started_at=earlier.isoformat())
    await report(client, agent, "new", 150, started_at=now.isoformat())

    shown = await quota(client, agent)
    assert (shown["used_seconds"], shown["used_minutes"], shown["remaining_seconds"]) == (
        240,
        4,
        360,
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
            call_id="x", destination="0901", started_at=utcnow().isoformat(), duration_seconds=9
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


@pytest.mark.parametrize(
    ("started_at", "reason"),
    [
        ("9999-12-31T23:59:59Z", "started-at-in-future"),
        ("0001-01-01T00:00:00+07:00", "started-at-too-old"),
        ("0001-01-01T00:00:00Z", "started-at-too-old"),
        ("2090-01-01T00:00:00Z", "started-at-in-future"),
        (0, "started-at-too-old"),
        (-62135596800, "started-at-too-old"),
        (20000000001, "started-at-in-future"),
        (19999999999, "started-at-in-future"),
        (10**20, "call-start-out-of-range"),
        ("1700000000", "not-a-date-time"),
        (True, "call-start-form"),
        (1.5e9 + 0.5, "call-start-form"),
        # JSON Schema's integer: 1500000000.0 is 1500000000 seconds.
        (1.5e9, "started-at-too-old"),
    ],
)
async def test_a_start_outside_the_window_of_a_call_is_refused_and_charges_nothing(
    client: httpx.AsyncClient, db: Database, agent: Agent, started_at: object, reason: str
) -> None:
    response = await client.post(
        "/v1/call-control/usage",
        json=agent.caller(
            call_id="edge", destination="0901", started_at=started_at, duration_seconds=60
        ),
        headers=agent.tenant.call_control,
    )

    body = assert_problem(response, 422, field="body.started_at")
    assert body["errors"][0]["code"] == reason
    assert await db_rows(db, select(CallRecord.id)) == []


async def test_unix_seconds_are_read_as_seconds(client: httpx.AsyncClient, agent: Agent) -> None:
    now = int(utcnow().timestamp())
    response = await client.post(
        "/v1/call-control/usage",
        json=agent.caller(call_id="unix", destination="0901", started_at=now, duration_seconds=9),
        headers=agent.tenant.call_control,
    )
    assert response.status_code == 201, response.text
    assert response.json()["started_at"].startswith(
        datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    )


async def test_last_month_s_call_is_still_charged_to_last_month(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    now = utcnow()
    this_month = period_start(period_of(now, "Asia/Ho_Chi_Minh"), "Asia/Ho_Chi_Minh")
    late = this_month - timedelta(hours=2)
    response = await report(client, agent, "late", 61, started_at=late.isoformat())
    assert response.status_code == 201, response.text
    assert response.json()["period"] == shift_period(period_of(now, "Asia/Ho_Chi_Minh"), -1)
    two_months = shift_period(period_of(now, "Asia/Ho_Chi_Minh"), -2)
    too_late = period_start(two_months, "Asia/Ho_Chi_Minh") + timedelta(days=3)
    refused = await report(client, agent, "too-late", 61, started_at=too_late.isoformat())
    assert_problem(refused, 422, field="body.started_at")


@pytest.mark.parametrize("call_id", ["a\x00b", "a\r\nb", "tab\there", "\x7f"])
async def test_call_ids_with_control_characters_are_refused(
    client: httpx.AsyncClient, db: Database, agent: Agent, call_id: str
) -> None:
    authorization = await client.post(
        "/v1/call-control/authorizations",
        json=agent.caller(call_id=call_id, destination="0901"),
        headers=agent.tenant.call_control,
    )
    usage = await report(client, agent, call_id, 30)

    assert_problem(authorization, 422, field="body.call_id")
    assert_problem(usage, 422, field="body.call_id")
    assert await db_rows(db, select(CallRecord.id)) == []


async def test_a_call_authorized_before_its_device_was_deleted_is_still_charged(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    await client.put(
        f"/v1/users/{agent.id}/quota", json={"limit_minutes": 10}, headers=agent.tenant.admin
    )
    assert (await authorize(client, agent, "in-flight"))["allowed"] is True
    devices = await client.get(f"/v1/users/{agent.id}/devices", headers=agent.tenant.admin)
    await client.delete(
        f"/v1/devices/{devices.json()['items'][0]['id']}", headers=agent.tenant.admin
    )

    response = await report(client, agent, "in-flight", 61)

    assert response.status_code == 201, response.text
    assert response.json()["charged_seconds"] == 120
    assert (await quota(client, agent))["used_seconds"] == 120
    never_authorized = await report(client, agent, "unknown-call", 61)
    assert_problem(never_authorized, 404, code="caller-not-found")


async def test_a_call_of_a_deleted_user_stays_in_the_ledger(
    client: httpx.AsyncClient, db: Database, agent: Agent
) -> None:
    assert (await authorize(client, agent, "last-call"))["allowed"] is True
    await client.delete(f"/v1/users/{agent.id}", headers=agent.tenant.admin)

    response = await report(client, agent, "last-call", 30)

    assert response.status_code == 201, response.text
    ledger = await db_rows(db, select(CallRecord.call_id, CallRecord.charged_seconds))
    assert [(row.call_id, row.charged_seconds) for row in ledger] == [("last-call", 60)]
    assert await db_rows(db, select(MonthlyUsage.user_id)) == []


async def test_reports_racing_a_deletion_are_never_500_and_every_acknowledged_one_counts(
    client: httpx.AsyncClient, db: Database, platform: dict[str, str]
) -> None:
    tenant = await new_tenant(client, platform, "Racing")
    await without_call_limits(client, tenant)
    agent = await new_agent(client, tenant)
    device = (await client.get(f"/v1/users/{agent.id}/devices", headers=tenant.admin)).json()[
        "items"
    ][0]
    for i in range(30):
        assert (await authorize(client, agent, f"race-{i}"))["allowed"] is True

    reports = [report(client, agent, f"race-{i}", 60) for i in range(30)]
    deletion = client.delete(f"/v1/devices/{device['id']}", headers=tenant.admin)
    responses = await asyncio.gather(*reports[:15], deletion, *reports[15:])

    statuses = [r.status_code for r in responses]
    assert statuses[15] == 204
    report_statuses = statuses[:15] + statuses[16:]
    assert all(status in (200, 201) for status in report_statuses), statuses
    assert (await quota(client, agent))["used_seconds"] == 60 * 30


async def test_reports_racing_the_tenant_s_deletion_are_2xx_or_404(
    client: httpx.AsyncClient, platform: dict[str, str]
) -> None:
    tenant = await new_tenant(client, platform, "Closing")
    agent = await new_agent(client, tenant)
    reports = [report(client, agent, f"bye-{i}", 60) for i in range(30)]
    deletion = client.delete(f"/v1/tenants/{tenant.id}", headers=platform)

    responses = await asyncio.gather(*reports[:10], deletion, *reports[10:])

    assert responses[10].status_code == 204
    assert {r.status_code for r in responses[:10] + responses[11:]} <= {201, 401, 404}
