"""Input the service refuses rather than guesses at: loose types, repeated keys, look-alike
domains, control characters, oversized requests, and keys guessed at speed."""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.db.session import Database
from app.main import create_app
from app.tenants.models import Tenant
from app.user_record.models import User
from tests.helpers.api import TenantKeys, assert_problem, create_user, db_rows
from tests.helpers.settings import make_settings


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/users", {"display_name": "A", "outbound_allowed": "yes"}, "body.outbound_allowed"),
        ("/v1/users", {"display_name": "A", "outbound_allowed": 1}, "body.outbound_allowed"),
        ("/v1/users", {"display_name": "A", "auto_answer": "on"}, "body.auto_answer"),
        ("/v1/users", {"display_name": "A", "limit_minutes": "60"}, "body.limit_minutes"),
        ("/v1/users", {"display_name": "A", "limit_minutes": 60.5}, "body.limit_minutes"),
        ("/v1/users", {"display_name": "A", "limit_minutes": True}, "body.limit_minutes"),
    ],
)
async def test_booleans_and_integers_must_be_json_booleans_and_integers(
    client: httpx.AsyncClient,
    db: Database,
    tenant: TenantKeys,
    path: str,
    body: dict[str, object],
    field: str,
) -> None:
    response = await client.post(path, json=body, headers=tenant.admin)

    assert_problem(response, 422, field=field)
    assert await db_rows(db, select(User.id)) == []


async def test_a_tenant_setting_must_be_an_integer_not_true(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys
) -> None:
    response = await client.patch(
        f"/v1/tenants/{tenant.id}", json={"billing_increment_seconds": True}, headers=platform
    )
    assert_problem(response, 422, field="body.billing_increment_seconds")


async def test_toggles_refuse_strings_for_booleans(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    response = await client.patch(
        f"/v1/users/{user['id']}/toggles", json={"auto_answer": "true"}, headers=tenant.admin
    )
    assert_problem(response, 422, field="body.auto_answer")
    toggles = await client.get(f"/v1/users/{user['id']}/toggles", headers=tenant.admin)
    assert toggles.json()["auto_answer"] is False


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (
            "/v1/tenants",
            '{"name": "A", "sip_domain": "a.test", "sip_domain": "b.test"}',
            "sip_domain",
        ),
        ("/v1/users", '{"display_name": "A", "display_name": "B"}', "display_name"),
    ],
)
async def test_a_key_given_twice_is_refused_naming_it(
    client: httpx.AsyncClient,
    db: Database,
    platform: dict[str, str],
    tenant: TenantKeys,
    path: str,
    raw: str,
    field: str,
) -> None:
    headers = {**(platform if path == "/v1/tenants" else tenant.admin)}
    headers["Content-Type"] = "application/json"

    response = await client.post(path, content=raw, headers=headers)

    body = assert_problem(response, 422, field=f"body.{field}")
    assert body["errors"][0]["type"] == "duplicate_key"
    assert await db_rows(db, select(User.id)) == []
    assert [t.sip_domain for t in await db_rows(db, select(Tenant.sip_domain))] == ["acme.sip.test"]


async def test_an_extension_number_given_twice_is_refused(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    response = await client.post(
        f"/v1/users/{user['id']}/extensions",
        content='{"number": "101", "number": "102"}',
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, field="body.number")


@pytest.mark.parametrize(
    "domain", ["\u212aelvin.test", "Acme.sip.test", " acme2.sip.test", "acme2.sip.test\n"]
)
async def test_domains_are_refused_unless_in_their_stored_form(
    client: httpx.AsyncClient, db: Database, platform: dict[str, str], domain: str
) -> None:
    response = await client.post(
        "/v1/tenants", json={"name": "Look-alike", "sip_domain": domain}, headers=platform
    )
    assert_problem(response, 422, field="body.sip_domain")
    assert await db_rows(db, select(Tenant.id)) == []


async def test_a_tenant_keeps_at_least_one_emergency_number(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys
) -> None:
    response = await client.patch(
        f"/v1/tenants/{tenant.id}", json={"emergency_numbers": []}, headers=platform
    )
    assert_problem(response, 422, field="body.emergency_numbers")
    shown = await client.get(f"/v1/tenants/{tenant.id}", headers=platform)
    assert shown.json()["emergency_numbers"] == ["113", "114", "115"]


async def test_oversized_headers_are_431_and_bodies_413(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    huge = {**tenant.admin, "X-Padding": "x" * 20_000}
    assert_problem(await client.get("/v1/users", headers=huge), 431)

    response = await client.post(
        "/v1/users",
        json={"display_name": "A", "email": "a" * 2_000_000 + "@b.test"},
        headers=tenant.admin,
    )
    assert response.status_code == 413
    assert await db_rows(db, select(User.id)) == []


@pytest.fixture
async def strict_app(migrated_url: str, db: Database) -> FastAPI:
    return create_app(make_settings(migrated_url, auth_failure_limit="5/minute"))


async def test_wrong_keys_from_one_address_are_limited_with_429(
    strict_app: FastAPI, tenant: TenantKeys
) -> None:
    async with strict_app.router.lifespan_context(strict_app):
        transport = httpx.ASGITransport(app=strict_app, client=("198.51.100.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            wrong = {"Authorization": "Bearer ark_wrong"}
            statuses = [(await c.get("/v1/users", headers=wrong)).status_code for _ in range(5)]
            limited = await c.get("/v1/users", headers=wrong)
            # Past the limit, even the right key waits: guessing cannot go on.
            right = await c.get("/v1/users", headers=tenant.admin)
        other = httpx.ASGITransport(app=strict_app, client=("198.51.100.8", 4000))
        async with httpx.AsyncClient(transport=other, base_url="http://antring.test") as c:
            elsewhere = await c.get("/v1/users", headers=tenant.admin)

    assert statuses == [401] * 5
    assert_problem(limited, 429, code="too-many-failed-authentications")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert right.status_code == 429
    assert elsewhere.status_code == 200
