"""The Users table reads on by cursor in every order it offers: every agent once, in the same
order as by offset, however the table changes between pages; a cursor belongs to its order,
and the count stops at 10,000, saying so."""

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from app.clock import utcnow
from app.db.session import Database
from app.names import name_columns
from app.pagination import COUNT_CAP, SEARCH_COUNT_CAP
from app.user_record.models import User
from app.users.repository import WALKED_ROWS, UserSort
from tests.helpers.api import TenantKeys, assert_problem, create_user

# Repeated names, so that ties are broken by id and a page may end in the middle of one.
NAMES = ["Nguyễn Văn An", "Trần Thị Bích", "Lê Văn Cường", "Nguyễn Văn An", "Phạm Minh Đức"]


async def read_all_by_cursor(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/users", params=query, headers=headers)
        assert page.status_code == 200, page.text
        users.extend(page.json()["items"])
        cursor = page.json()["next"]
        if cursor is None:
            return users
    raise AssertionError("the cursor never reached the last page")


async def _ids(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    page = await client.get("/v1/users", params={"limit": 200, **params}, headers=headers)
    assert page.status_code == 200, page.text
    return [user["id"] for user in page.json()["items"]]


@pytest.mark.parametrize("sort", [s.value for s in UserSort])
async def test_the_cursor_reads_every_agent_once_in_each_order(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, sort: str
) -> None:
    for i in range(17):
        await create_user(client, tenant.admin, display_name=NAMES[i % len(NAMES)])
    await create_user(client, other_tenant.admin, display_name="Nguyễn Văn An")

    by_cursor = await read_all_by_cursor(client, tenant.operator, sort=sort, limit=4)

    assert [u["id"] for u in by_cursor] == await _ids(client, tenant.operator, sort=sort)
    assert len({u["id"] for u in by_cursor}) == len(by_cursor) == 17
    # A search holds across pages too.
    found = await read_all_by_cursor(client, tenant.operator, sort=sort, limit=2, search="van an")
    assert [u["id"] for u in found] == await _ids(
        client, tenant.operator, sort=sort, search="van an"
    )
    assert len(found) == 7


async def test_agents_added_and_removed_between_pages_move_no_one_else(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    """By offset, a deletion on an earlier page skips an agent and an addition repeats one; by
    cursor, the next page starts after the last agent shown, whatever changed before it."""
    for name in ["Anh", "Bình", "Chi", "Dũng", "Giang", "Hà"]:
        await create_user(client, tenant.admin, display_name=name)
    first = await client.get("/v1/users", params={"limit": 3}, headers=tenant.admin)
    shown = [u["display_name"] for u in first.json()["items"]]
    assert shown == ["Anh", "Bình", "Chi"]

    for user in first.json()["items"][:2]:
        deleted = await client.delete(f"/v1/users/{user['id']}", headers=tenant.admin)
        assert deleted.status_code == 204
    await create_user(client, tenant.admin, display_name="Ân")
    second = await client.get(
        "/v1/users", params={"limit": 3, "cursor": first.json()["next"]}, headers=tenant.admin
    )

    assert [u["display_name"] for u in second.json()["items"]] == ["Dũng", "Giang", "Hà"]


async def test_a_cursor_belongs_to_its_order_and_to_no_offset(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    for i in range(3):
        await create_user(client, tenant.admin, display_name=f"Agent {i}")
    first = await client.get(
        "/v1/users", params={"limit": 2, "sort": "-created_at"}, headers=tenant.admin
    )
    cursor = first.json()["next"]
    assert cursor

    other_order = await client.get(
        "/v1/users",
        params={"cursor": cursor, "sort": "display_name"},
        headers={**tenant.admin, "Accept-Language": "vi"},
    )
    body = assert_problem(other_order, 422, field="query.cursor")
    assert body["errors"][0]["code"] == "cursor-other-order"
    assert "thứ tự" in body["errors"][0]["message"]
    with_offset = await client.get(
        "/v1/users",
        params={"cursor": cursor, "sort": "-created_at", "offset": 2},
        headers=tenant.admin,
    )
    assert_problem(with_offset, 422, field="query.offset")
    # The audit trail's cursor (two values), a cursor with a name that is not base64, nonsense.
    for bad in (
        "nonsense",
        "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwxXQ",
        "WyJkaXNwbGF5X25hbWUiLCIhISEiLCJ4Il0",
    ):
        response = await client.get("/v1/users", params={"cursor": bad}, headers=tenant.admin)
        body = assert_problem(response, 422, field="query.cursor")
        assert body["errors"][0]["code"] == "cursor-invalid"


async def test_a_cursor_shows_another_tenant_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    for i in range(3):
        await create_user(client, tenant.admin, display_name=f"Agent {i}")
        await create_user(client, other_tenant.admin, display_name=f"Other {i}")
    cursor = (await client.get("/v1/users", params={"limit": 1}, headers=tenant.admin)).json()[
        "next"
    ]

    theirs = await client.get("/v1/users", params={"cursor": cursor}, headers=other_tenant.admin)

    assert theirs.status_code == 200, theirs.text
    assert {u["display_name"] for u in theirs.json()["items"]} <= {f"Other {i}" for i in range(3)}


async def test_the_count_stops_at_ten_thousand_and_says_so(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant.id,
            "display_name": f"Agent {i:05}",
            "created_at": now,
            "updated_at": now,
            **name_columns(f"Agent {i:05}", None),
            "search_text": name_columns(f"Agent {i:05}", None)["search_key"],
        }
        for i in range(COUNT_CAP + 5)
    ]
    async with db.session_scope() as session:
        await session.execute(insert(User), rows)

    page = await client.get("/v1/users", headers=tenant.operator)
    small = await client.get("/v1/users", params={"search": "agent 00007"}, headers=tenant.operator)
    search = await client.get("/v1/users", params={"search": "agent"}, headers=tenant.operator)

    assert page.json()["total"] == COUNT_CAP
    assert page.json()["total_is_estimate"] is True
    assert page.json()["next"]
    assert small.json()["total"] == 1
    assert small.json()["total_is_estimate"] is False
    assert small.json()["next"] is None
    # A search as an operator types stops sooner: its first letters may find a third of a tenant.
    assert search.json()["total"] == SEARCH_COUNT_CAP
    assert search.json()["total_is_estimate"] is True


# A tenant where a search finds more agents than it counts: "van" half of them, spread through
# every order; "pham" those after the 970 Lê in the order of full names and of creation (a walk
# along the order from its start finds 30 of them, short of a page); "le thi" fewer than it
# counts.
CROWD = 2_400
FAMILY_LE = WALKED_ROWS - 30
CROWD_SEARCHES = {"van": 1_200, "pham": CROWD - FAMILY_LE, "le thi": FAMILY_LE // 2}


@pytest.mark.parametrize("sort", [s.value for s in UserSort])
async def test_a_search_of_many_agents_pages_as_the_list_does(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database, sort: str
) -> None:
    now = utcnow()
    rows = []
    for i in range(CROWD):
        family = "Lê" if i < FAMILY_LE else "Phạm"
        name = f"{family} {'Văn' if i % 2 else 'Thị'} Agent{i:04}"
        names = name_columns(name, None)
        rows.append(
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant.id,
                "display_name": name,
                "created_at": now - timedelta(seconds=CROWD - i),
                "updated_at": now,
                **names,
                "search_text": names["search_key"],
            }
        )
    async with db.session_scope() as session:
        await session.execute(insert(User), rows)
    await create_user(client, other_tenant.admin, display_name="Phạm Văn Agent0001")
    column = {"display_name": "name_sort", "given_name": "given_name_sort"}.get(
        sort.lstrip("-"), "created_at"
    )
    ordered = sorted(rows, key=lambda row: row[column], reverse=sort.startswith("-"))

    for search, matches in CROWD_SEARCHES.items():
        words = [f" {word}" for word in search.split()]
        expected = [
            str(row["id"]) for row in ordered if all(w in row["search_text"] for w in words)
        ]
        assert len(expected) == matches
        params = {"search": search, "sort": sort, "limit": 50}

        first = await client.get("/v1/users", params=params, headers=tenant.operator)
        deeper = await client.get(
            "/v1/users", params={**params, "offset": 100}, headers=tenant.operator
        )
        read = [first]
        for _ in range(2):
            cursor = read[-1].json()["next"]
            read.append(
                await client.get(
                    "/v1/users", params={**params, "cursor": cursor}, headers=tenant.operator
                )
            )

        assert [u["id"] for u in deeper.json()["items"]] == expected[100:150], search
        assert [u["id"] for page in read for u in page.json()["items"]] == expected[:150], search
        assert first.json()["total"] == min(matches, SEARCH_COUNT_CAP)
        assert first.json()["total_is_estimate"] is (matches > SEARCH_COUNT_CAP)
