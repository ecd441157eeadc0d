import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.auth.models import ApiKey, Role
from app.db.session import Database
from app.devices.models import Device
from app.extensions.models import Extension
from app.tenants.models import Tenant
from app.user_record.models import User
from tests.helpers.api import (
    TenantKeys,
    add_extension,
    assert_problem,
    create_user,
    db_get,
    db_rows,
    new_platform_key,
)


async def test_create_a_tenant_with_defaults(
    client: httpx.AsyncClient, platform: dict[str, str], db: Database
) -> None:
    response = await client.post(
        "/v1/tenants",
        json={"name": "  Acme Call Center ", "sip_domain": "acme.sip.example.com"},
        headers=platform,
    )

    assert response.status_code == 201, response.text
    tenant = response.json()
    assert tenant["name"] == "Acme Call Center"
    assert tenant["sip_domain"] == "acme.sip.example.com"
    assert tenant["timezone"] == "Asia/Ho_Chi_Minh"
    assert tenant["emergency_numbers"] == ["113", "114", "115"]
    row = await db_get(db, Tenant, tenant["id"])
    assert row is not None
    assert (row.name, row.sip_domain, row.timezone) == (
        "Acme Call Center",
        "acme.sip.example.com",
        "Asia/Ho_Chi_Minh",
    )
    fetched = await client.get(f"/v1/tenants/{tenant['id']}", headers=platform)
    assert fetched.json() == tenant


async def test_create_a_tenant_with_its_own_settings(
    client: httpx.AsyncClient, platform: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/tenants",
        json={
            "name": "Globex",
            "sip_domain": "globex.sip.test",
            "timezone": "Europe/Paris",
            "emergency_numbers": ["112", "15", "112"],
        },
        headers=platform,
    )

    assert response.status_code == 201, response.text
    assert response.json()["timezone"] == "Europe/Paris"
    assert response.json()["emergency_numbers"] == ["112", "15"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "body.timezone"),
        ({"timezone": "asia/ho_chi_minh"}, "body.timezone"),
        ({"timezone": ""}, "body.timezone"),
        ({"sip_domain": "not a domain"}, "body.sip_domain"),
        ({"sip_domain": "acme..sip.test"}, "body.sip_domain"),
        ({"sip_domain": "-acme.sip.test"}, "body.sip_domain"),
        ({"sip_domain": "acme_sip.test"}, "body.sip_domain"),
        ({"sip_domain": "a" * 64 + ".test"}, "body.sip_domain"),
        ({"sip_domain": ""}, "body.sip_domain"),
        ({"name": ""}, "body.name"),
        ({"name": "Acme\x00"}, "body.name"),
        ({"emergency_numbers": ["1"]}, "body.emergency_numbers.0"),
        ({"emergency_numbers": ["11a"]}, "body.emergency_numbers.0"),
        ({"billing_increment_seconds": 0}, "body.billing_increment_seconds"),
        ({"owner": "me"}, "body.owner"),
    ],
)
async def test_create_a_tenant_refuses_bad_input(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    db: Database,
    fields: dict[str, Any],
    field: str,
) -> None:
    body = {"name": "Acme", "sip_domain": "acme.sip.test", **fields}

    response = await client.post("/v1/tenants", json=body, headers=platform)

    assert_problem(response, 422, field=field)
    assert await db_rows(db, select(Tenant.id)) == []


async def test_sip_domains_are_unique(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> None:
    other = await client.post(
        "/v1/tenants", json={"name": "Other", "sip_domain": "other.sip.test"}, headers=platform
    )

    duplicate = await client.post(
        "/v1/tenants",
        json={"name": "Copycat", "sip_domain": tenant.sip_domain},
        headers=platform,
    )
    moved = await client.patch(
        f"/v1/tenants/{other.json()['id']}",
        json={"sip_domain": tenant.sip_domain},
        headers=platform,
    )

    body = assert_problem(duplicate, 409, code="sip-domain-taken")
    assert tenant.sip_domain in body["detail"]
    assert_problem(moved, 409, code="sip-domain-taken")
    domains = await db_rows(db, select(Tenant.name, Tenant.sip_domain).order_by(Tenant.name))
    assert [tuple(d) for d in domains] == [
        ("Acme", tenant.sip_domain),
        ("Other", "other.sip.test"),
    ]


async def test_list_tenants_paginates(client: httpx.AsyncClient, platform: dict[str, str]) -> None:
    for name in ("Alpha", "Beta", "Gamma"):
        response = await client.post(
            "/v1/tenants",
            json={"name": name, "sip_domain": f"{name.lower()}.test"},
            headers=platform,
        )
        assert response.status_code == 201

    first = (await client.get("/v1/tenants", params={"limit": 2}, headers=platform)).json()
    rest = (
        await client.get("/v1/tenants", params={"limit": 2, "offset": 2}, headers=platform)
    ).json()

    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert [t["name"] for t in first["items"] + rest["items"]] == ["Alpha", "Beta", "Gamma"]


async def test_update_a_tenant(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> None:
    response = await client.patch(
        f"/v1/tenants/{tenant.id}",
        json={"name": "Acme VN", "timezone": "Asia/Bangkok", "billing_increment_seconds": 6},
        headers=platform,
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Acme VN"
    assert response.json()["timezone"] == "Asia/Bangkok"
    assert response.json()["sip_domain"] == tenant.sip_domain
    row = await db_get(db, Tenant, tenant.id)
    assert row is not None
    assert (row.name, row.timezone, row.billing_increment_seconds) == ("Acme VN", "Asia/Bangkok", 6)
    for body, field in (
        ({"timezone": "Nowhere/Land"}, "body.timezone"),
        ({"name": None}, "body.name"),
        ({"sip_domain": None}, "body.sip_domain"),
        ({"sip_domain": "bad domain"}, "body.sip_domain"),
    ):
        refused = await client.patch(f"/v1/tenants/{tenant.id}", json=body, headers=platform)
        assert_problem(refused, 422, field=field)
    row = await db_get(db, Tenant, tenant.id)
    assert row is not None
    assert (row.name, row.timezone, row.sip_domain) == (
        "Acme VN",
        "Asia/Bangkok",
        tenant.sip_domain,
    )


async def test_delete_a_tenant_deletes_everything_it_owns(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    db: Database,
) -> None:
    user = await create_user(client, tenant.admin)
    await add_extension(client, tenant.admin, user["id"], "102")
    survivor = await create_user(client, other_tenant.admin)

    response = await client.delete(f"/v1/tenants/{tenant.id}", headers=platform)

    assert response.status_code == 204
    assert_problem(
        await client.get(f"/v1/tenants/{tenant.id}", headers=platform), 404, code="tenant-not-found"
    )
    assert await db_get(db, Tenant, tenant.id) is None
    for model in (User, Device, Extension, ApiKey):
        rows = await db_rows(db, select(model.tenant_id).where(model.tenant_id == tenant.id))
        assert rows == [], model
    assert_problem(await client.get("/v1/users", headers=tenant.admin), 401)
    acting = await client.get("/v1/users", headers={**platform, "X-Tenant-ID": str(tenant.id)})
    assert_problem(acting, 404, code="tenant-not-found")
    kept = await client.get(f"/v1/users/{survivor['id']}", headers=other_tenant.admin)
    assert kept.status_code == 200


async def test_unknown_tenant_is_404(client: httpx.AsyncClient, platform: dict[str, str]) -> None:
    missing = uuid.uuid4()

    for method, path, body in (
        ("GET", f"/v1/tenants/{missing}", None),
        ("PATCH", f"/v1/tenants/{missing}", {"name": "x"}),
        ("DELETE", f"/v1/tenants/{missing}", None),
        ("GET", f"/v1/tenants/{missing}/api-keys", None),
        ("POST", f"/v1/tenants/{missing}/api-keys", {"name": "x", "role": "admin"}),
        ("DELETE", f"/v1/tenants/{missing}/api-keys/{uuid.uuid4()}", None),
    ):
        response = await client.request(method, path, json=body, headers=platform)
        assert_problem(response, 404, code="tenant-not-found")


async def test_a_platform_viewer_key_reads_tenants_but_changes_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    viewer = await new_platform_key(db, Role.viewer)

    listed = await client.get("/v1/tenants", headers=viewer)
    renamed = await client.patch(f"/v1/tenants/{tenant.id}", json={"name": "X"}, headers=viewer)
    created = await client.post(
        "/v1/tenants", json={"name": "New", "sip_domain": "new.sip.test"}, headers=viewer
    )

    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [str(tenant.id)]
    assert_problem(renamed, 403)
    assert_problem(created, 403)
    row = await db_get(db, Tenant, tenant.id)
    assert row is not None and row.name == "Acme"


async def test_a_new_emergency_number_held_as_an_extension_is_refused(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    added = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "112"}, headers=tenant.admin
    )
    assert added.status_code == 201

    response = await client.patch(
        f"/v1/tenants/{tenant.id}",
        json={"emergency_numbers": ["112", "113"]},
        headers=await new_platform_key(db),
    )

    assert response.status_code == 409
    assert "112" in response.json()["detail"]
    shown = await client.get(f"/v1/tenants/{tenant.id}", headers=await new_platform_key(db))
    assert shown.json()["emergency_numbers"] == ["113", "114", "115"]
