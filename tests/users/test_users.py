import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import event, func, select

from app.db.session import Database
from app.devices.models import Device
from app.extensions.models import Extension
from app.user_record.models import User
from tests.helpers.api import (
    TenantKeys,
    add_device,
    add_extension,
    assert_problem,
    create_user,
    db_get,
    db_rows,
)


def current_period(timezone: str = "Asia/Ho_Chi_Minh") -> str:
    return datetime.now(ZoneInfo(timezone)).strftime("%Y-%m")


async def test_new_user_has_product_defaults(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin, display_name="Nguyễn Thị Lan")

    assert user["outbound_allowed"] is True
    assert user["auto_answer"] is False
    assert user["limit_minutes"] is None
    assert user["enabled"] is True
    assert user["extensions"] == []
    assert len(user["devices"]) == 1
    assert user["devices"][0]["kind"] == "web"
    assert user["devices"][0]["enabled"] is True
    assert user["devices"][0]["name"].startswith("nguyen-thi-lan-")
    assert user["minutes"] == {
        "period": current_period(),
        "used_minutes": 0,
        "limit_minutes": None,
        "version": 1,
    }
    assert user["version"] == 1

    fetched = await client.get(f"/v1/users/{user['id']}", headers=tenant.admin)
    assert fetched.status_code == 200
    assert fetched.json()["devices"] == user["devices"]

    toggles = await client.get(f"/v1/users/{user['id']}/toggles", headers=tenant.admin)
    assert toggles.json() == {"outbound_allowed": True, "auto_answer": False}
    quota = await client.get(f"/v1/users/{user['id']}/quota", headers=tenant.admin)
    assert quota.status_code == 200
    assert quota.json()["limit_minutes"] is None
    assert quota.json()["remaining_seconds"] is None

    row = await db_get(db, User, user["id"])
    assert row is not None
    assert (row.outbound_allowed, row.auto_answer, row.limit_minutes) == (True, False, None)
    devices = await db_rows(db, select(Device.name, Device.kind).where(Device.user_id == row.id))
    assert [(d.name, d.kind.value) for d in devices] == [(user["devices"][0]["name"], "web")]


async def test_create_user_with_every_field(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(
        client,
        tenant.admin,
        display_name="  Trần Minh  ",
        email="minh@acme.vn",
        external_ref="emp-0042",
        outbound_allowed=False,
        auto_answer=True,
        limit_minutes=600,
    )

    assert user["display_name"] == "Trần Minh"
    assert user["email"] == "minh@acme.vn"
    assert user["external_ref"] == "emp-0042"
    assert (user["outbound_allowed"], user["auto_answer"]) == (False, True)
    assert user["limit_minutes"] == 600
    assert user["minutes"]["limit_minutes"] == 600
    row = await db_get(db, User, user["id"])
    assert row is not None
    assert row.tenant_id == tenant.id
    assert (row.display_name, row.email, row.external_ref) == (
        "Trần Minh",
        "minh@acme.vn",
        "emp-0042",
    )
    assert (row.outbound_allowed, row.auto_answer, row.limit_minutes) == (False, True, 600)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.display_name"),
        ({"display_name": "   "}, "body.display_name"),
        ({"display_name": "x" * 201}, "body.display_name"),
        ({"display_name": "Lan\x00"}, "body.display_name"),
        ({"display_name": "Lan", "email": "not-an-email"}, "body.email"),
        ({"display_name": "Lan", "email": "lan@acme.vn\x00"}, "body.email"),
        ({"display_name": "Lan", "external_ref": "a\x00b"}, "body.external_ref"),
        ({"display_name": "Lan", "limit_minutes": -1}, "body.limit_minutes"),
        ({"display_name": "Lan", "outbound_allowed": "maybe"}, "body.outbound_allowed"),
        ({"display_name": "Lan", "role": "admin"}, "body.role"),
    ],
)
async def test_create_user_refuses_bad_input(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/users", json=body, headers=tenant.admin)

    assert_problem(response, 422, field=field)
    assert await db_rows(db, select(User.id)) == []


async def test_update_user_changes_only_what_is_given(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin, email="lan@acme.vn", limit_minutes=300)

    response = await client.patch(
        f"/v1/users/{user['id']}",
        json={"display_name": "Lan N.", "auto_answer": True},
        headers=tenant.admin,
    )

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["display_name"] == "Lan N."
    assert updated["auto_answer"] is True
    assert updated["email"] == "lan@acme.vn"
    assert updated["limit_minutes"] == 300
    assert updated["devices"] == user["devices"]
    row = await db_get(db, User, user["id"])
    assert row is not None
    assert (row.display_name, row.auto_answer, row.email) == ("Lan N.", True, "lan@acme.vn")


async def test_update_user_clears_nullable_fields_with_null(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(
        client, tenant.admin, email="lan@acme.vn", external_ref="emp-1", limit_minutes=300
    )

    response = await client.patch(
        f"/v1/users/{user['id']}",
        json={"email": None, "external_ref": None, "limit_minutes": None},
        headers=tenant.admin,
    )

    assert response.status_code == 200, response.text
    assert response.json()["email"] is None
    assert response.json()["limit_minutes"] is None
    row = await db_get(db, User, user["id"])
    assert row is not None
    assert (row.email, row.external_ref, row.limit_minutes) == (None, None, None)


@pytest.mark.parametrize("field", ["display_name", "enabled", "outbound_allowed", "auto_answer"])
async def test_update_user_refuses_null_for_a_field_that_cannot_be_empty(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, field: str
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.patch(
        f"/v1/users/{user['id']}", json={field: None}, headers=tenant.admin
    )

    assert_problem(response, 422, field=f"body.{field}")
    row = await db_get(db, User, user["id"])
    assert row is not None
    assert getattr(row, field) == user[field]


async def test_update_user_refuses_unknown_fields(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.patch(
        f"/v1/users/{user['id']}", json={"tenant_id": str(tenant.id)}, headers=tenant.admin
    )

    assert_problem(response, 422, field="body.tenant_id")


async def test_external_ref_is_unique_per_tenant_only(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    first = await create_user(client, tenant.admin, external_ref="emp-7")
    second = await create_user(client, tenant.admin, display_name="Binh")

    duplicate = await client.post(
        "/v1/users", json={"display_name": "Chi", "external_ref": "emp-7"}, headers=tenant.admin
    )
    renamed = await client.patch(
        f"/v1/users/{second['id']}", json={"external_ref": "emp-7"}, headers=tenant.admin
    )
    elsewhere = await client.post(
        "/v1/users",
        json={"display_name": "Chi", "external_ref": "emp-7"},
        headers=other_tenant.admin,
    )

    assert "emp-7" in assert_problem(duplicate, 409, code="external-ref-taken")["detail"]
    assert_problem(renamed, 409, code="external-ref-taken")
    assert elsewhere.status_code == 201
    holders = await db_rows(db, select(User.id).where(User.external_ref == "emp-7"))
    assert sorted(str(h.id) for h in holders) == sorted([first["id"], elsewhere.json()["id"]])


async def test_unknown_user_is_404(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    missing = "00000000-0000-4000-8000-000000000000"

    for method in ("GET", "PATCH", "DELETE"):
        body = {"display_name": "x"} if method == "PATCH" else None
        response = await client.request(
            method, f"/v1/users/{missing}", json=body, headers=tenant.admin
        )
        assert_problem(response, 404, code="user-not-found")


async def test_delete_user_deletes_their_devices_and_extensions(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    keeper = await create_user(client, tenant.admin, display_name="Keeper")
    await add_device(client, tenant.admin, user["id"], name="lan.desk", kind="ip_phone")
    await add_extension(client, tenant.admin, user["id"], "102")
    await add_extension(client, tenant.admin, user["id"], "103")
    await add_extension(client, tenant.admin, keeper["id"], "104")

    response = await client.delete(f"/v1/users/{user['id']}", headers=tenant.admin)

    assert response.status_code == 204
    assert (await client.get(f"/v1/users/{user['id']}", headers=tenant.admin)).status_code == 404
    assert await db_get(db, User, user["id"]) is None
    assert await db_rows(db, select(Device.id).where(Device.user_id == uuid.UUID(user["id"]))) == []
    assert await db_rows(db, select(Extension.number)) == [("104",)]
    assert (
        len(await db_rows(db, select(Device.id).where(Device.user_id == uuid.UUID(keeper["id"]))))
        == 1
    )
    # What the user held is free again.
    reused = await client.post(
        f"/v1/users/{keeper['id']}/extensions", json={"number": "102"}, headers=tenant.admin
    )
    assert reused.status_code == 201
    await add_device(client, tenant.admin, keeper["id"], name="lan.desk")
    again = await client.delete(f"/v1/users/{user['id']}", headers=tenant.admin)
    assert_problem(again, 404)


async def test_list_paginates_with_a_total(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    names = ["An", "Binh", "Chi", "Dung", "Giang"]
    for name in names:
        await create_user(client, tenant.admin, display_name=name)

    async def page(**params: int) -> dict[str, Any]:
        response = await client.get("/v1/users", params=params, headers=tenant.admin)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    first, second, last, beyond = (
        await page(limit=2, offset=0),
        await page(limit=2, offset=2),
        await page(limit=2, offset=4),
        await page(limit=2, offset=10),
    )

    assert [(p["total"], p["limit"], p["offset"]) for p in (first, second, last, beyond)] == [
        (5, 2, 0),
        (5, 2, 2),
        (5, 2, 4),
        (5, 2, 10),
    ]
    seen = [u["display_name"] for p in (first, second, last) for u in p["items"]]
    assert seen == names
    assert beyond["items"] == []
    default = await page()
    assert (default["limit"], default["offset"], len(default["items"])) == (50, 0, 5)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": -1}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"offset": -1}, "query.offset"),
        ({"offset": 10**20}, "query.offset"),
        ({"limit": "ten"}, "query.limit"),
        ({"sort": "email"}, "query.sort"),
        ({"search": ""}, "query.search"),
        ({"search": "x" * 101}, "query.search"),
        ({"search": "lan\x00"}, "query.search"),
        ({"search": "lan\x85"}, "query.search"),
    ],
)
async def test_list_refuses_bad_query_parameters(
    client: httpx.AsyncClient, tenant: TenantKeys, params: dict[str, Any], field: str
) -> None:
    await create_user(client, tenant.admin)

    response = await client.get("/v1/users", params=params, headers=tenant.admin)

    assert_problem(response, 422, field=field)


async def test_a_search_that_is_not_utf8_is_refused_not_guessed(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    """A query is read as UTF-8: bytes that are not (a lone surrogate, a cut-off character) are
    refused, naming the parameter, rather than searched for as U+FFFD."""
    await create_user(client, tenant.admin, display_name="Lê Lan")

    for search in ("%ED%A0%80", "L%C3", "%FF"):
        response = await client.get(f"/v1/users?search={search}", headers=tenant.admin)
        body = assert_problem(response, 422, field="query.search")
        assert body["errors"][0]["code"] == "not-utf8"
        assert body["errors"][0]["message"] == "The value is not UTF-8 text."
    found = await client.get("/v1/users?search=L%C3%AA", headers=tenant.admin)
    assert [u["display_name"] for u in found.json()["items"]] == ["Lê Lan"]


async def test_search_matches_name_email_extension_and_device_name(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    lan = await create_user(client, tenant.admin, display_name="Lan Nguyen", email="lan@acme.vn")
    minh = await create_user(client, tenant.admin, display_name="Minh Tran", email="mt@globex.vn")
    hoa = await create_user(client, tenant.admin, display_name="Hoa Le")
    await add_extension(client, tenant.admin, minh["id"], "2301")
    await add_device(client, tenant.admin, hoa["id"], name="Front-Desk.Phone")

    async def found(search: str) -> list[str]:
        response = await client.get("/v1/users", params={"search": search}, headers=tenant.admin)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(page["items"])
        return sorted(u["id"] for u in page["items"])

    assert await found("lan nguyen") == [lan["id"]]
    assert await found("NGUYEN") == [lan["id"]]
    assert await found("globex") == [minh["id"]]
    assert await found("230") == [minh["id"]]
    assert await found("front-desk") == [hoa["id"]]
    assert await found("FRONT-DESK.PHONE") == [hoa["id"]]
    assert await found(lan["devices"][0]["name"]) == [lan["id"]]
    assert await found("acme.vn") == [lan["id"]]
    assert await found("zzz") == []


async def test_search_counts_a_user_once_when_several_things_match(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="Agent 77")
    await add_extension(client, tenant.admin, user["id"], "770")
    await add_extension(client, tenant.admin, user["id"], "771")
    await add_device(client, tenant.admin, user["id"], name="desk-77")

    response = await client.get("/v1/users", params={"search": "77"}, headers=tenant.admin)

    assert response.json()["total"] == 1
    assert [u["id"] for u in response.json()["items"]] == [user["id"]]


async def test_search_treats_wildcards_literally(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    percent = await create_user(client, tenant.admin, display_name="100% Sales")
    await create_user(client, tenant.admin, display_name="1000 Sales")
    underscore = await create_user(client, tenant.admin, display_name="team_a")
    await create_user(client, tenant.admin, display_name="teamXa")

    async def found(search: str) -> list[str]:
        response = await client.get("/v1/users", params={"search": search}, headers=tenant.admin)
        return [u["id"] for u in response.json()["items"]]

    assert await found("100%") == [percent["id"]]
    assert await found("team_") == [underscore["id"]]


async def test_list_sorts_by_name_or_creation(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    for name in ["Chi", "An", "Binh"]:
        await create_user(client, tenant.admin, display_name=name)

    async def order(sort: str | None) -> list[str]:
        params = {"sort": sort} if sort else {}
        response = await client.get("/v1/users", params=params, headers=tenant.admin)
        assert response.status_code == 200, response.text
        return [u["display_name"] for u in response.json()["items"]]

    assert await order(None) == ["An", "Binh", "Chi"]
    assert await order("display_name") == ["An", "Binh", "Chi"]
    assert await order("-display_name") == ["Chi", "Binh", "An"]
    assert await order("created_at") == ["Chi", "An", "Binh"]
    assert await order("-created_at") == ["Binh", "An", "Chi"]


async def test_list_shows_what_the_users_table_shows(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, limit_minutes=600, auto_answer=True)
    phone = await add_device(client, tenant.admin, user["id"], name="lan.desk", kind="ip_phone")
    await add_extension(client, tenant.admin, user["id"], "205")
    await add_extension(client, tenant.admin, user["id"], "102")

    response = await client.get("/v1/users", headers=tenant.admin)

    [item] = response.json()["items"]
    assert [d["name"] for d in item["devices"]] == [user["devices"][0]["name"], "lan.desk"]
    assert item["devices"][1] == {
        "id": phone["id"],
        "version": 1,
        "name": "lan.desk",
        "kind": "ip_phone",
        "enabled": True,
        "registered": False,
        "contact_count": 0,
    }
    assert item["extensions"] == ["102", "205"]
    assert item["minutes"] == {
        "period": current_period(),
        "used_minutes": 0,
        "limit_minutes": 600,
        "version": 1,
    }
    assert (item["outbound_allowed"], item["auto_answer"]) == (True, True)


@contextmanager
def count_statements(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_list_runs_a_fixed_number_of_queries_whatever_the_page_size(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    reports = []
    for i in range(20):
        user = await create_user(client, tenant.admin, display_name=f"Agent {i:02d}")
        await add_device(client, tenant.admin, user["id"], name=f"agent{i:02d}.desk")
        await add_device(client, tenant.admin, user["id"], name=f"agent{i:02d}.mobile")
        await add_extension(client, tenant.admin, user["id"], f"2{i:02d}")
        await add_extension(client, tenant.admin, user["id"], f"3{i:02d}")
        contact = {"contact": f"sip:agent{i:02d}@10.0.0.{i}", "expires_at": int(time.time()) + 60}
        reports.append(
            {
                "domain": tenant.sip_domain,
                "username": f"agent{i:02d}.desk",
                "at": time.time(),
                "contacts": [contact],
            }
        )
    registered = await client.post(
        "/v1/call-control/registrations/batch",
        json={"edge": "edge-1", "reports": reports},
        headers=tenant.call_control,
    )
    assert registered.json() == {"applied": 20, "refused": []}
    await client.get("/v1/users", params={"limit": 1}, headers=tenant.admin)

    with count_statements(db) as small:
        small_page = await client.get("/v1/users", params={"limit": 2}, headers=tenant.admin)
    with count_statements(db) as large:
        large_page = await client.get("/v1/users", params={"limit": 20}, headers=tenant.admin)

    assert len(small_page.json()["items"]) == 2
    assert len(large_page.json()["items"]) == 20
    assert all(
        len(u["devices"]) == 3 and len(u["extensions"]) == 2 for u in large_page.json()["items"]
    )
    assert all(
        [d["registered"] for d in u["devices"]] == [False, True, False]
        for u in large_page.json()["items"]
    )
    assert len(large) == len(small), (small, large)
    assert len(large) <= 10, large


async def test_toggles_switch_outbound_and_auto_answer(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    url = f"/v1/users/{user['id']}/toggles"

    def switches(response: httpx.Response) -> dict[str, bool]:
        body = response.json()
        return {name: body[name] for name in ("outbound_allowed", "auto_answer")}

    off = await client.patch(url, json={"outbound_allowed": False}, headers=tenant.admin)
    assert off.status_code == 200, off.text
    assert switches(off) == {"outbound_allowed": False, "auto_answer": False}
    both = await client.patch(
        url, json={"outbound_allowed": True, "auto_answer": True}, headers=tenant.admin
    )
    assert switches(both) == {"outbound_allowed": True, "auto_answer": True}
    unchanged = await client.patch(url, json={}, headers=tenant.admin)
    assert switches(unchanged) == {"outbound_allowed": True, "auto_answer": True}

    assert_problem(
        await client.patch(url, json={"auto_answer": None}, headers=tenant.admin),
        422,
        field="body.auto_answer",
    )
    assert (await client.get(url, headers=tenant.admin)).json() == switches(both)
    shown = (await client.get(f"/v1/users/{user['id']}", headers=tenant.admin)).json()
    assert (shown["outbound_allowed"], shown["auto_answer"]) == (True, True)
    row = await db_get(db, User, user["id"])
    assert row is not None
    assert (row.outbound_allowed, row.auto_answer) == (True, True)


async def test_users_of_one_tenant_do_not_count_in_another(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    await create_user(client, tenant.admin, display_name="Lan")
    await create_user(client, other_tenant.admin, display_name="Lan")

    response = await client.get("/v1/users", headers=tenant.admin)

    assert response.json()["total"] == 1
    count = await db_rows(db, select(func.count()).select_from(User))
    assert count == [(2,)]
