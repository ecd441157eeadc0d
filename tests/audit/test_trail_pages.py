"""The audit trail reads page after page by cursor, as fast deep in the trail as at its start:
every entry once, in order, the same as by offset; and its count stops at 10,000, saying so."""

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import insert

from app.clock import utcnow
from app.db.session import Database
from app.outbox.models import AuditEntry
from app.pagination import COUNT_CAP
from tests.helpers.api import TenantKeys, assert_problem, create_user


async def read_all_by_cursor(
    client: httpx.AsyncClient, headers: dict[str, str], **params: object
) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/audit-events", params=query, headers=headers)
        assert page.status_code == 200, page.text
        entries.extend(page.json()["items"])
        cursor = page.json()["next"]
        if cursor is None:
            return entries


async def test_the_cursor_reads_every_entry_once_in_order(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    for i in range(23):
        await create_user(client, tenant.admin, display_name=f"Agent {i}")
        await create_user(client, other_tenant.admin, display_name=f"Other {i}")
    by_offset = []
    for offset in range(0, 200, 10):
        page = await client.get(
            "/v1/audit-events", params={"limit": 10, "offset": offset}, headers=tenant.admin
        )
        by_offset.extend(page.json()["items"])

    by_cursor = await read_all_by_cursor(client, tenant.admin, limit=10)

    assert [e["id"] for e in by_cursor] == [e["id"] for e in by_offset]
    assert len({e["id"] for e in by_cursor}) == len(by_cursor) >= 46
    times = [e["occurred_at"] for e in by_cursor]
    assert times == sorted(times, reverse=True)
    # Filters hold across pages too.
    users_only = await read_all_by_cursor(client, tenant.admin, limit=7, resource_type="user")
    assert {e["resource_type"] for e in users_only} == {"user"}
    assert len(users_only) == 23


async def test_a_cursor_that_is_not_one_of_ours_answers_422(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    for i in range(3):
        await create_user(client, tenant.admin, display_name=f"Agent {i}")
    first = await client.get("/v1/audit-events", params={"limit": 2}, headers=tenant.admin)
    cursor = first.json()["next"]
    assert cursor

    for bad in ("nonsense", "WzEsMiwzXQ", "WyJub3QgYSB0aW1lIiwgMV0"):
        response = await client.get(
            "/v1/audit-events", params={"cursor": bad}, headers=tenant.admin
        )
        assert_problem(response, 422, field="query.cursor")
    with_offset = await client.get(
        "/v1/audit-events", params={"cursor": cursor, "offset": 5}, headers=tenant.admin
    )
    assert_problem(with_offset, 422, field="query.offset")


async def test_the_count_stops_at_ten_thousand_and_says_so(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant.id,
            "occurred_at": now - timedelta(seconds=i),
            "action": "user.updated",
            "resource_type": "user",
            "resource_id": str(uuid.uuid4()),
        }
        for i in range(COUNT_CAP + 5)
    ]
    async with db.session_scope() as session:
        await session.execute(insert(AuditEntry), rows)

    page = await client.get("/v1/audit-events", headers=tenant.admin)
    small = await client.get(
        "/v1/audit-events", params={"resource_id": rows[0]["resource_id"]}, headers=tenant.admin
    )

    assert page.json()["total"] == COUNT_CAP
    assert page.json()["total_is_estimate"] is True
    assert small.json()["total"] == 1
    assert small.json()["total_is_estimate"] is False
    assert small.json()["next"] is None
