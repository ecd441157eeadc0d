import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.db.session import Database
from app.extensions.models import Extension
from tests.helpers.api import TenantKeys, add_extension, assert_problem, create_user, db_rows


async def numbers_in_db(db: Database, **where: Any) -> list[tuple[str, str]]:
    query = select(Extension.number, Extension.user_id).order_by(Extension.number)
    for column, value in where.items():
        query = query.where(getattr(Extension, column) == value)
    return [(row.number, str(row.user_id)) for row in await db_rows(db, query)]


async def test_add_an_extension(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "102"}, headers=tenant.admin
    )

    assert response.status_code == 201, response.text
    assert response.json()["number"] == "102"
    assert response.json()["user_id"] == user["id"]
    assert await numbers_in_db(db, tenant_id=tenant.id) == [("102", user["id"])]
    shown = await client.get(f"/v1/users/{user['id']}", headers=tenant.admin)
    assert shown.json()["extensions"] == ["102"]


@pytest.mark.parametrize(
    "number", ["1", "12345", "10a", "abc", "", " 102", "102 ", "+102", "1.0", "١٠٢", "-10"]
)
async def test_an_extension_has_two_to_four_digits(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, number: str
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": number}, headers=tenant.admin
    )

    assert_problem(response, 422, field="body.number")
    assert await numbers_in_db(db) == []


@pytest.mark.parametrize("body", [{"number": 102}, {"number": None}, {}, {"numbers": ["102"]}])
async def test_an_extension_is_a_string_of_digits(
    client: httpx.AsyncClient, tenant: TenantKeys, body: dict[str, Any]
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/extensions", json=body, headers=tenant.admin
    )

    assert_problem(response, 422)
    assert any(e["field"].startswith("body.number") for e in response.json()["errors"])


@pytest.mark.parametrize("number", ["10", "99", "0000", "9999"])
async def test_two_and_four_digit_extensions_are_accepted(
    client: httpx.AsyncClient, tenant: TenantKeys, number: str
) -> None:
    user = await create_user(client, tenant.admin)

    assert (await add_extension(client, tenant.admin, user["id"], number))["number"] == number


async def test_leading_zeros_make_a_different_extension(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    lan = await create_user(client, tenant.admin, display_name="Lan")
    minh = await create_user(client, tenant.admin, display_name="Minh")

    await add_extension(client, tenant.admin, lan["id"], "007")
    await add_extension(client, tenant.admin, minh["id"], "07")

    assert await numbers_in_db(db) == [("007", lan["id"]), ("07", minh["id"])]
    first = await client.get("/v1/extensions/007", headers=tenant.admin)
    second = await client.get("/v1/extensions/07", headers=tenant.admin)
    assert first.json() == {"number": "007", "user_id": lan["id"], "display_name": "Lan"}
    assert second.json() == {"number": "07", "user_id": minh["id"], "display_name": "Minh"}
    assert_problem(await client.get("/v1/extensions/7", headers=tenant.admin), 422)
    assert_problem(await client.get("/v1/extensions/0007", headers=tenant.admin), 404)


async def test_an_extension_is_unique_in_a_tenant_but_not_across_tenants(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    lan = await create_user(client, tenant.admin, display_name="Lan")
    minh = await create_user(client, tenant.admin, display_name="Minh")
    stranger = await create_user(client, other_tenant.admin, display_name="Stranger")
    await add_extension(client, tenant.admin, lan["id"], "102")

    other_user = await client.post(
        f"/v1/users/{minh['id']}/extensions", json={"number": "102"}, headers=tenant.admin
    )
    same_user = await client.post(
        f"/v1/users/{lan['id']}/extensions", json={"number": "102"}, headers=tenant.admin
    )
    elsewhere = await client.post(
        f"/v1/users/{stranger['id']}/extensions", json={"number": "102"}, headers=other_tenant.admin
    )

    body = assert_problem(other_user, 409, code="extension-taken")
    assert "102" in body["detail"]
    assert_problem(same_user, 409, code="extension-taken")
    assert elsewhere.status_code == 201
    assert await numbers_in_db(db, tenant_id=tenant.id) == [("102", lan["id"])]
    assert await numbers_in_db(db, tenant_id=other_tenant.id) == [("102", stranger["id"])]
    holder = await client.get("/v1/extensions/102", headers=other_tenant.admin)
    assert holder.json()["user_id"] == stranger["id"]


async def test_concurrent_adds_of_one_number_give_one_extension_and_one_conflict(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    lan = await create_user(client, tenant.admin, display_name="Lan")
    minh = await create_user(client, tenant.admin, display_name="Minh")

    for number in ("201", "202", "203"):
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/v1/users/{user['id']}/extensions",
                    json={"number": number},
                    headers=tenant.admin,
                )
                for user in (lan, minh)
            )
        )

        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        assert_problem(
            next(r for r in responses if r.status_code == 409), 409, code="extension-taken"
        )
        winner = next(r for r in responses if r.status_code == 201).json()
        assert await numbers_in_db(db, number=number) == [(number, winner["user_id"])]


async def test_a_user_may_hold_several_extensions(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    for number in ("305", "12", "3001"):
        await add_extension(client, tenant.admin, user["id"], number)

    response = await client.get(f"/v1/users/{user['id']}/extensions", headers=tenant.admin)

    assert [e["number"] for e in response.json()["items"]] == ["12", "3001", "305"]
    assert all(e["user_id"] == user["id"] for e in response.json()["items"])
    assert len(await numbers_in_db(db, user_id=uuid.UUID(user["id"]))) == 3


async def test_remove_an_extension(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    lan = await create_user(client, tenant.admin, display_name="Lan")
    minh = await create_user(client, tenant.admin, display_name="Minh")
    await add_extension(client, tenant.admin, lan["id"], "102")
    await add_extension(client, tenant.admin, lan["id"], "103")
    await add_extension(client, tenant.admin, minh["id"], "104")

    response = await client.delete(f"/v1/users/{lan['id']}/extensions/102", headers=tenant.admin)

    assert response.status_code == 204
    assert await numbers_in_db(db) == [("103", lan["id"]), ("104", minh["id"])]
    assert_problem(
        await client.get("/v1/extensions/102", headers=tenant.admin),
        404,
        code="extension-not-found",
    )
    again = await client.delete(f"/v1/users/{lan['id']}/extensions/102", headers=tenant.admin)
    assert_problem(again, 404, code="extension-not-found")
    not_theirs = await client.delete(f"/v1/users/{lan['id']}/extensions/104", headers=tenant.admin)
    assert_problem(not_theirs, 404, code="extension-not-found")
    malformed = await client.delete(f"/v1/users/{lan['id']}/extensions/1", headers=tenant.admin)
    assert_problem(malformed, 422, field="path.number")
    assert await numbers_in_db(db) == [("103", lan["id"]), ("104", minh["id"])]


async def test_look_up_who_holds_an_extension(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="Nguyễn Thị Lan")
    await add_extension(client, tenant.admin, user["id"], "102")

    held = await client.get("/v1/extensions/102", headers=tenant.viewer)
    free = await client.get("/v1/extensions/103", headers=tenant.viewer)

    assert held.status_code == 200
    assert held.json() == {"number": "102", "user_id": user["id"], "display_name": "Nguyễn Thị Lan"}
    body = assert_problem(free, 404, code="extension-not-found")
    assert "103" in body["detail"]


async def test_available_numbers_skip_taken_and_emergency_ones(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    for number in ("100", "101", "103"):
        await add_extension(client, tenant.admin, user["id"], number)

    async def available(**params: int) -> list[str]:
        response = await client.get("/v1/extensions/available", params=params, headers=tenant.admin)
        assert response.status_code == 200, response.text
        assert response.json()["digits"] == params.get("digits", 3)
        numbers: list[str] = response.json()["numbers"]
        return numbers

    assert await available(digits=3, limit=4) == ["102", "104", "105", "106"]
    assert await available() == [
        "102",
        "104",
        "105",
        "106",
        "107",
        "108",
        "109",
        "110",
        "111",
        "112",
    ]
    three = await available(digits=3, limit=30)
    assert "116" in three
    assert not {"100", "101", "103", "113", "114", "115"} & set(three)
    two = await available(digits=2, limit=3)
    assert two == ["10", "12", "13"]
    four = await available(digits=4, limit=100)
    assert len(four) == 100
    assert not any(n.startswith(("113", "114", "115")) for n in four)
    for params in ({"digits": 1}, {"digits": 5}, {"limit": 0}, {"limit": 101}):
        response = await client.get("/v1/extensions/available", params=params, headers=tenant.admin)
        assert_problem(response, 422, field=f"query.{next(iter(params))}")


@pytest.mark.parametrize("number", ["113", "114", "115", "11", "1130", "1149", "1150"])
async def test_numbers_that_shadow_emergency_services_are_refused(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, number: str
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": number}, headers=tenant.admin
    )

    body = assert_problem(response, 422, field="body.number")
    assert body["errors"][0]["code"] == "extension-shadows-emergency"
    assert await numbers_in_db(db) == []


@pytest.mark.parametrize("number", ["112", "116", "0113", "1311", "12"])
async def test_numbers_near_emergency_ones_are_allowed(
    client: httpx.AsyncClient, tenant: TenantKeys, number: str
) -> None:
    user = await create_user(client, tenant.admin)

    assert (await add_extension(client, tenant.admin, user["id"], number))["number"] == number


async def test_the_emergency_list_is_the_tenants_setting(
    client: httpx.AsyncClient, tenant: TenantKeys, platform: dict[str, str]
) -> None:
    user = await create_user(client, tenant.admin)
    response = await client.patch(
        f"/v1/tenants/{tenant.id}", json={"emergency_numbers": ["112", "911"]}, headers=platform
    )
    assert response.status_code == 200, response.text
    assert response.json()["emergency_numbers"] == ["112", "911"]

    async def add(number: str) -> int:
        r = await client.post(
            f"/v1/users/{user['id']}/extensions", json={"number": number}, headers=tenant.admin
        )
        return r.status_code

    assert [await add(n) for n in ("113", "114", "112", "1125", "11", "91", "9110")] == [
        201,
        201,
        422,
        422,
        422,
        422,
        422,
    ]
    available = await client.get(
        "/v1/extensions/available", params={"digits": 2, "limit": 2}, headers=tenant.admin
    )
    assert available.json()["numbers"] == ["10", "12"]


async def test_extensions_of_an_unknown_user_are_404(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    missing = uuid.uuid4()

    for response in (
        await client.get(f"/v1/users/{missing}/extensions", headers=tenant.admin),
        await client.post(
            f"/v1/users/{missing}/extensions", json={"number": "102"}, headers=tenant.admin
        ),
        await client.delete(f"/v1/users/{missing}/extensions/102", headers=tenant.admin),
    ):
        assert_problem(response, 404, code="user-not-found")
    assert await numbers_in_db(db) == []
