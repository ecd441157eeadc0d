import asyncio
import hashlib
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select

from app.auth.models import ApiKey, Role
from app.auth.service import Authenticator, create_api_key
from app.clock import utcnow
from app.db.session import Database
from app.main import create_app
from tests.helpers.api import TenantKeys, assert_problem, bearer, db_get, db_rows
from tests.helpers.settings import make_settings


async def test_create_a_key_shows_the_secret_once_and_stores_only_its_hash(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> None:
    response = await client.post(
        f"/v1/tenants/{tenant.id}/api-keys",
        json={"name": "kamailio-edge-1", "role": "call_control"},
        headers=platform,
    )

    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["key"]
    assert secret.startswith("ark_") and len(secret) >= 40
    assert created["prefix"] == secret[:10]
    assert (created["name"], created["role"], created["tenant_id"]) == (
        "kamailio-edge-1",
        "call_control",
        str(tenant.id),
    )
    assert created["last_used_at"] is None
    row = await db_get(db, ApiKey, created["id"])
    assert row is not None
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    [raw] = await db_rows(db, select(ApiKey.__table__).where(ApiKey.id == row.id))
    assert not any(secret in str(value) for value in raw)
    listed = await client.get(f"/v1/tenants/{tenant.id}/api-keys", headers=platform)
    assert secret not in listed.text
    [shown] = [k for k in listed.json()["items"] if k["id"] == created["id"]]
    assert "key" not in shown
    assert shown["prefix"] == created["prefix"]


async def test_list_a_tenants_keys(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    other_tenant: TenantKeys,
) -> None:
    response = await client.get(f"/v1/tenants/{tenant.id}/api-keys", headers=platform)

    assert response.status_code == 200
    keys = response.json()["items"]
    assert sorted(k["role"] for k in keys) == [
        "admin",
        "call_control",
        "operator",
        "scim",
        "viewer",
    ]
    assert {k["tenant_id"] for k in keys} == {str(tenant.id)}
    for headers in (tenant.admin, tenant.viewer, tenant.call_control):
        assert headers["Authorization"].removeprefix("Bearer ") not in response.text


async def test_revoke_a_key(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> None:
    created = (
        await client.post(
            f"/v1/tenants/{tenant.id}/api-keys",
            json={"name": "temp", "role": "viewer"},
            headers=platform,
        )
    ).json()

    response = await client.delete(
        f"/v1/tenants/{tenant.id}/api-keys/{created['id']}", headers=platform
    )

    assert response.status_code == 204
    assert await db_get(db, ApiKey, created["id"]) is None
    listed = await client.get(f"/v1/tenants/{tenant.id}/api-keys", headers=platform)
    assert created["id"] not in [k["id"] for k in listed.json()["items"]]
    assert_problem(await client.get("/v1/users", headers=bearer(created["key"])), 401)
    again = await client.delete(
        f"/v1/tenants/{tenant.id}/api-keys/{created['id']}", headers=platform
    )
    assert_problem(again, 404, code="api-key-not-found")


async def test_a_key_cannot_be_revoked_through_another_tenant(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    db: Database,
) -> None:
    keys = (await client.get(f"/v1/tenants/{tenant.id}/api-keys", headers=platform)).json()["items"]
    admin_key = next(k for k in keys if k["role"] == "admin")

    response = await client.delete(
        f"/v1/tenants/{other_tenant.id}/api-keys/{admin_key['id']}", headers=platform
    )

    assert_problem(response, 404, code="api-key-not-found")
    assert await db_get(db, ApiKey, admin_key["id"]) is not None
    assert (await client.get("/v1/users", headers=tenant.admin)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "role": "superuser"}, "body.role"),
        ({"name": "x"}, "body.role"),
        ({"name": "", "role": "admin"}, "body.name"),
        ({"name": "x" * 101, "role": "admin"}, "body.name"),
        ({"name": "x", "role": "admin", "tenant_id": None}, "body.tenant_id"),
        ({"name": "x", "role": "admin", "expires_at": "2020-01-01T00:00:00Z"}, "body.expires_at"),
        ({"name": "x", "role": "admin", "expires_at": "2030-01-01"}, "body.expires_at"),
    ],
)
async def test_create_a_key_refuses_bad_input(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    db: Database,
    body: dict[str, str],
    field: str,
) -> None:
    response = await client.post(f"/v1/tenants/{tenant.id}/api-keys", json=body, headers=platform)

    assert_problem(response, 422, field=field)
    assert len(await db_rows(db, select(ApiKey.id).where(ApiKey.tenant_id == tenant.id))) == 5


async def test_a_key_revoked_through_this_process_stops_at_once_despite_the_cache(
    migrated_url: str, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> None:
    cached: FastAPI = create_app(make_settings(migrated_url, api_key_cache_seconds=300))
    async with cached.router.lifespan_context(cached):
        transport = httpx.ASGITransport(app=cached)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            created = await c.post(
                f"/v1/tenants/{tenant.id}/api-keys",
                json={"name": "temp", "role": "admin"},
                headers=platform,
            )
            key = bearer(created.json()["key"])
            assert (await c.get("/v1/users", headers=key)).status_code == 200

            revoked = await c.delete(
                f"/v1/tenants/{tenant.id}/api-keys/{created.json()['id']}", headers=platform
            )

            assert revoked.status_code == 204
            assert_problem(await c.get("/v1/users", headers=key), 401)


async def test_an_expired_key_is_looked_up_once_for_concurrent_requests(db: Database) -> None:
    async with db.session_scope() as session:
        _, secret = await create_api_key(session, tenant_id=None, role=Role.admin, name="busy")
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "api_key" in statement:
            statements.append(statement)

    authenticator = Authenticator(db.engine, ttl=60)
    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        identities = await asyncio.gather(*(authenticator.authenticate(secret) for _ in range(20)))
        again = await authenticator.authenticate(secret)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)

    assert all(i is not None and i.role == Role.admin for i in identities)
    assert again == identities[0]
    assert len(statements) == 1


async def test_a_key_with_an_expiry_answers_401_once_it_has_passed(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    expires = utcnow() + timedelta(seconds=1.5)
    made = await client.post(
        f"/v1/tenants/{tenant.id}/api-keys",
        json={"name": "contractor", "role": "operator", "expires_at": expires.isoformat()},
        headers=tenant.admin,
    )
    assert made.status_code == 201, made.text
    assert datetime.fromisoformat(made.json()["expires_at"]) == expires
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await client.get("/v1/users", headers=key)).status_code == 200

    await asyncio.sleep(max(0.0, (expires - utcnow()).total_seconds()) + 0.1)

    expired = await client.get("/v1/users", headers=key)
    body = assert_problem(expired, 401, code="unauthorized")
    assert body["code"] == "api-key-expired"
    assert body["params"] == {"expired_at": made.json()["expires_at"].replace("Z", "+00:00")}
    assert made.json()["key"] not in expired.text
    # It is still listed, with its expiry, until someone revokes it.
    listed = await client.get(f"/v1/tenants/{tenant.id}/api-keys", headers=tenant.admin)
    [shown] = [k for k in listed.json()["items"] if k["id"] == made.json()["id"]]
    assert shown["expires_at"] == made.json()["expires_at"]
