"""Who may call what: keys (401), roles (403), tenant isolation (404) on every /v1 route. The
same with people's tokens: tests/auth/test_tokens.py."""

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.auth.models import ApiKey, Role
from app.clock import utcnow
from app.db.session import Database
from app.imports.models import ImportJob, ImportStatus
from app.models import Base
from app.tenants.models import Tenant
from app.user_record.models import User
from tests.helpers.api import (
    TenantKeys,
    add_device,
    add_extension,
    assert_problem,
    create_user,
    db_rows,
    new_platform_key,
)

# Who may call a tenant route: every role of people (read), the guide's operators (edit), or
# the tenant's admins only (admin).
READ, EDIT, ADMIN = "read", "edit", "admin"
ALLOWED = {
    READ: {Role.admin, Role.operator, Role.viewer},
    EDIT: {Role.admin, Role.operator},
    ADMIN: {Role.admin},
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: dict[str, Any] | None = None
    access: str = ""
    # An answer that never ends (Server-Sent Events): over ASGITransport only its refusals
    # can be read; tests/events/ opens it with each role over real HTTP.
    streams: bool = False

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def needs(self) -> str:
        return self.access or (EDIT if self.writes else READ)

    @property
    def admin_only(self) -> bool:
        return self.needs == ADMIN

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


TENANT_ROUTES = [
    Route("GET", "/v1/users"),
    Route("POST", "/v1/users", {"display_name": "Mallory"}),
    Route("GET", "/v1/users/{user_id}"),
    Route("PATCH", "/v1/users/{user_id}", {"display_name": "Mallory"}),
    Route("DELETE", "/v1/users/{user_id}"),
    Route("GET", "/v1/users/{user_id}/toggles"),
    Route("PATCH", "/v1/users/{user_id}/toggles", {"outbound_allowed": False}),
    Route("GET", "/v1/users/{user_id}/quota"),
    Route("PUT", "/v1/users/{user_id}/quota", {"limit_minutes": 1}),
    Route("GET", "/v1/users/{user_id}/quota/history"),
    Route("GET", "/v1/users/{user_id}/calls"),
    Route("GET", "/v1/users/{user_id}/devices"),
    Route("POST", "/v1/users/{user_id}/devices", {"name": "mallory.phone", "kind": "softphone"}),
    Route("GET", "/v1/devices/{device_id}"),
    Route("PATCH", "/v1/devices/{device_id}", {"enabled": False}),
    Route("DELETE", "/v1/devices/{device_id}"),
    # The config view shows the password only when revealed (tests/auth/test_reveal.py).
    Route("GET", "/v1/devices/{device_id}/config"),
    Route("POST", "/v1/devices/{device_id}/password", {}),
    Route("GET", "/v1/devices/{device_id}/registrations"),
    Route("DELETE", "/v1/devices/{device_id}/registrations"),
    Route("GET", "/v1/users/{user_id}/extensions"),
    Route("POST", "/v1/users/{user_id}/extensions", {"number": "666"}),
    Route("DELETE", "/v1/users/{user_id}/extensions/{number}"),
    Route("GET", "/v1/extensions/available"),
    Route("GET", "/v1/extensions/{number}"),
    Route("POST", "/v1/users/import"),
    Route("GET", "/v1/users/imports/{job_id}"),
    Route("GET", "/v1/users/export"),
    # Webhooks carry the tenant's events to a URL of its choosing, and the audit trail shows
    # every change: admins only.
    Route("GET", "/v1/webhooks/event-types", access=ADMIN),
    Route("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/mallory"}, access=ADMIN),
    Route("GET", "/v1/webhooks", access=ADMIN),
    Route("GET", "/v1/webhooks/{webhook_id}", access=ADMIN),
    Route("PATCH", "/v1/webhooks/{webhook_id}", {"enabled": False}, access=ADMIN),
    Route("DELETE", "/v1/webhooks/{webhook_id}", access=ADMIN),
    Route("POST", "/v1/webhooks/{webhook_id}/secret", access=ADMIN),
    Route("GET", "/v1/webhooks/{webhook_id}/deliveries", access=ADMIN),
    Route("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", access=ADMIN),
    Route("GET", "/v1/audit-events", access=ADMIN),
    # The tenant's outbound policy: everyone reads it, its admins change it.
    Route("GET", "/v1/outbound-policy"),
    Route("PATCH", "/v1/outbound-policy", {"max_calls_per_minute": 99}, access=ADMIN),
    # The tenant's provisioning settings and credentials: admins only; a device's codes: those
    # who set its phone up.
    Route("GET", "/v1/provisioning", access=ADMIN),
    Route("PATCH", "/v1/provisioning", {"allowed_networks": []}, access=ADMIN),
    Route("DELETE", "/v1/provisioning", access=ADMIN),
    Route("POST", "/v1/provisioning/credentials", access=ADMIN),
    Route("GET", "/v1/provisioning/fetches", access=ADMIN),
    Route("GET", "/v1/devices/{device_id}/provisioning", access=EDIT),
    Route("POST", "/v1/devices/{device_id}/provisioning-links", {"app": "web"}),
    # Every role of the tenant's people sees its events as they happen.
    Route("GET", "/v1/events/stream", streams=True),
]
PLATFORM_ROUTES = [
    Route("POST", "/v1/tenants", {"name": "Mallory", "sip_domain": "mallory.sip.test"}),
    Route("GET", "/v1/tenants"),
    Route("GET", "/v1/tenants/{tenant_id}"),
    Route("PATCH", "/v1/tenants/{tenant_id}", {"name": "Mallory"}),
    Route("DELETE", "/v1/tenants/{tenant_id}"),
    Route("POST", "/v1/tenants/{tenant_id}/api-keys", {"name": "mallory", "role": "admin"}),
    Route("GET", "/v1/tenants/{tenant_id}/api-keys"),
    Route("DELETE", "/v1/tenants/{tenant_id}/api-keys/{key_id}"),
    Route("GET", "/v1/jobs"),
    Route("POST", "/v1/jobs/{name}/run"),
]
ID_ROUTES = [r for r in TENANT_ROUTES if "{" in r.path]
# Served to the SIP proxy with call_control keys; tested in tests/callcontrol/.
CALL_CONTROL_PREFIX = "/v1/call-control/"


def served_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every /v1 operation the app publishes."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }


def test_every_route_outside_call_control_is_in_these_tests(app: FastAPI) -> None:
    served = {
        (method, path)
        for method, path in served_operations(app)
        if not path.startswith(CALL_CONTROL_PREFIX)
    }
    tested = {(r.method, r.path) for r in TENANT_ROUTES + PLATFORM_ROUTES}

    assert served - tested == set(), "routes without access tests"
    assert tested - served == set(), "tests of routes that are not served"


@dataclass
class World:
    """One tenant's user with a device and an extension, and one of its API keys."""

    keys: TenantKeys
    user: dict[str, Any]
    device: dict[str, Any]
    ids: dict[str, str]


async def make_world(
    client: httpx.AsyncClient, platform: dict[str, str], keys: TenantKeys, number: str, db: Database
) -> World:
    user = await create_user(client, keys.admin, display_name=f"Secret Agent {number}")
    job_id = uuid.uuid4()
    async with db.session_scope() as session:
        session.add(
            ImportJob(
                id=job_id,
                tenant_id=keys.id,
                dry_run=True,
                status=ImportStatus.succeeded,
                rows_total=0,
                finished_at=utcnow(),
            )
        )
    device = await add_device(client, keys.admin, user["id"], name=f"hidden.phone{number}")
    await add_extension(client, keys.admin, user["id"], number)
    api_keys = await client.get(f"/v1/tenants/{keys.id}/api-keys", headers=platform)
    webhook = await client.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:9/{number}"}, headers=keys.admin
    )
    assert webhook.status_code == 201, webhook.text
    ids = {
        "webhook_id": webhook.json()["id"],
        "delivery_id": str(uuid.uuid4()),
        "tenant_id": str(keys.id),
        "user_id": user["id"],
        "device_id": device["id"],
        "number": number,
        "key_id": api_keys.json()["items"][0]["id"],
        "name": "close-finished-months",
        "job_id": str(job_id),
    }
    return World(keys=keys, user=user, device=device, ids=ids)


@pytest.fixture
async def mine(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> World:
    return await make_world(client, platform, tenant, "101", db)


@pytest.fixture
async def theirs(
    client: httpx.AsyncClient, platform: dict[str, str], other_tenant: TenantKeys, db: Database
) -> World:
    return await make_world(client, platform, other_tenant, "102", db)


async def call(
    client: httpx.AsyncClient, route: Route, ids: dict[str, str], headers: dict[str, str]
) -> httpx.Response:
    return await client.request(
        route.method, route.path.format(**ids), json=route.body, headers=headers
    )


async def snapshot(db: Database, tenant_id: uuid.UUID | None = None) -> dict[str, list[Any]]:
    """Every row (of one tenant, when given), to show that a refused request changed nothing."""
    tables: dict[str, list[Any]] = {}
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if c.name != "last_used_at"]
        query = select(*columns)
        if tenant_id is not None and "tenant_id" in table.columns:
            query = query.where(table.columns["tenant_id"] == tenant_id)
        elif tenant_id is not None and table.name == Tenant.__tablename__:
            query = query.where(table.columns["id"] == tenant_id)
        elif tenant_id is not None:
            continue
        tables[table.name] = sorted(map(tuple, await db_rows(db, query)), key=repr)
    return tables


UNAUTHENTICATED = {
    "no key": {},
    "unknown key": {"Authorization": "Bearer ark_not-a-real-key"},
    "empty bearer": {"Authorization": "Bearer "},
    "basic scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
}


@pytest.mark.parametrize("headers", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
async def test_every_v1_route_needs_a_valid_key(
    app: FastAPI,
    client: httpx.AsyncClient,
    mine: World,
    db: Database,
    headers: dict[str, str],
) -> None:
    before = await snapshot(db)

    operations = served_operations(app)
    assert len(operations) > len(TENANT_ROUTES + PLATFORM_ROUTES)
    for method, template in operations:
        path = re.sub(r"\{(\w+)\}", lambda m: mine.ids.get(m.group(1), str(uuid.uuid4())), template)
        response = await client.request(method, path, json={}, headers=headers)
        assert_problem(response, 401, code="unauthorized")
        assert response.headers["www-authenticate"] == "Bearer", f"{method} {path}"

    assert await snapshot(db) == before


async def test_a_revoked_key_is_refused(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys
) -> None:
    created = await client.post(
        f"/v1/tenants/{tenant.id}/api-keys",
        json={"name": "temp", "role": "admin"},
        headers=platform,
    )
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    assert (await client.get("/v1/users", headers=key)).status_code == 200

    revoked = await client.delete(
        f"/v1/tenants/{tenant.id}/api-keys/{created.json()['id']}", headers=platform
    )

    assert revoked.status_code == 204
    assert_problem(await client.get("/v1/users", headers=key), 401)
    assert (await client.get("/v1/users", headers=tenant.admin)).status_code == 200


async def viewers(db: Database, keys: TenantKeys) -> dict[str, dict[str, str]]:
    platform_viewer = await new_platform_key(db, Role.viewer)
    return {
        "tenant viewer": keys.viewer,
        "platform viewer": {**platform_viewer, "X-Tenant-ID": str(keys.id)},
    }


async def check_roles(
    client: httpx.AsyncClient, world: World, db: Database, callers: dict[Role, dict[str, str]]
) -> None:
    """Each caller may call exactly the tenant routes its role allows: the others answer 403
    and change nothing; the allowed ones are neither 401 nor 403."""
    for role, headers in callers.items():
        before = await snapshot(db)
        refused = [r for r in TENANT_ROUTES if role not in ALLOWED[r.needs]]
        for route in refused:
            response = await call(client, route, world.ids, headers)
            assert_problem(response, 403, code="forbidden")
        assert await snapshot(db) == before, role
        for route in TENANT_ROUTES:
            if route in refused or route.streams:
                continue
            response = await call(client, route, world.ids, headers)
            assert response.status_code not in (401, 403), f"{role}: {route}: {response.text}"


async def test_each_role_of_key_calls_what_its_role_allows(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> None:
    for number, role in (("201", Role.viewer), ("202", Role.operator), ("203", Role.admin)):
        # A world of its own: what one role may delete, the next must still find.
        world = await make_world(client, platform, tenant, number, db)
        await check_roles(client, world, db, {role: getattr(tenant, role.value)})


async def test_a_directorys_scim_key_calls_no_v1_route(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> None:
    """A `scim` key is refused by every tenant route (it reaches /scim/v2 only: tests/scim)."""
    world = await make_world(client, platform, tenant, "204", db)
    await check_roles(client, world, db, {Role.scim: tenant.scim})


async def test_a_viewer_reads_but_cannot_write(
    client: httpx.AsyncClient, mine: World, db: Database
) -> None:
    keys = await viewers(db, mine.keys)
    before = await snapshot(db)

    for who, headers in keys.items():
        for route in TENANT_ROUTES:
            if route.streams:
                continue
            response = await call(client, route, mine.ids, headers)
            if route.needs != READ:
                assert_problem(response, 403, code="forbidden")
            else:
                assert response.status_code == 200, f"{who}: {route}: {response.text}"

    assert await snapshot(db) == before


async def test_a_call_control_key_may_use_no_other_route(
    client: httpx.AsyncClient, mine: World, platform: dict[str, str], db: Database
) -> None:
    platform_call_control = await new_platform_key(db, Role.call_control)
    before = await snapshot(db)

    for headers in (
        mine.keys.call_control,
        {**platform_call_control, "X-Tenant-ID": str(mine.keys.id)},
    ):
        for route in TENANT_ROUTES + PLATFORM_ROUTES:
            response = await call(client, route, mine.ids, headers)
            assert_problem(response, 403, code="forbidden")

    assert await snapshot(db) == before


KEY_ROUTES = [r for r in PLATFORM_ROUTES if "/api-keys" in r.path]


async def test_tenant_keys_cannot_manage_tenants(
    client: httpx.AsyncClient, mine: World, db: Database
) -> None:
    before = await snapshot(db)

    for headers in (mine.keys.admin, mine.keys.operator, mine.keys.viewer):
        for route in PLATFORM_ROUTES:
            if route in KEY_ROUTES:
                continue
            response = await call(client, route, mine.ids, headers)
            assert_problem(response, 403, code="forbidden")

    assert await snapshot(db) == before


async def test_a_tenant_admin_manages_its_own_tenant_s_keys_only(
    client: httpx.AsyncClient, mine: World, theirs: World, db: Database
) -> None:
    their_keys = await snapshot(db, theirs.keys.id)
    for headers in (mine.keys.admin, mine.keys.operator, mine.keys.viewer):
        for route in KEY_ROUTES:
            response = await call(client, route, theirs.ids, headers)
            assert_problem(response, 403, code="forbidden")
    assert await snapshot(db, theirs.keys.id) == their_keys
    for headers in (mine.keys.operator, mine.keys.call_control):
        for route in KEY_ROUTES:
            assert_problem(await call(client, route, mine.ids, headers), 403, code="forbidden")

    path = f"/v1/tenants/{mine.keys.id}/api-keys"
    made = await client.post(
        path, json={"name": "ops-2", "role": "operator"}, headers=mine.keys.admin
    )
    assert made.status_code == 201, made.text
    operator = {"Authorization": f"Bearer {made.json()['key']}"}
    assert (await client.get("/v1/users", headers=operator)).status_code == 200
    listed = await client.get(path, headers=mine.keys.viewer)
    assert made.json()["id"] in [k["id"] for k in listed.json()["items"]]
    assert "key" not in listed.json()["items"][0]
    revoked = await client.delete(f"{path}/{made.json()['id']}", headers=mine.keys.admin)
    assert revoked.status_code == 204
    assert_problem(await client.get("/v1/users", headers=operator), 401)


def acting_on(keys: TenantKeys, platform: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "tenant admin key": keys.admin,
        "platform key": {**platform, "X-Tenant-ID": str(keys.id)},
    }


async def test_another_tenants_ids_answer_404_and_leak_nothing(
    client: httpx.AsyncClient, platform: dict[str, str], mine: World, theirs: World, db: Database
) -> None:
    before = await snapshot(db, theirs.keys.id)
    nobody = {
        **theirs.ids,
        "user_id": str(uuid.uuid4()),
        "device_id": str(uuid.uuid4()),
        "webhook_id": str(uuid.uuid4()),
        "job_id": str(uuid.uuid4()),
    }
    nobody["number"] = "9876"

    for who, headers in acting_on(mine.keys, platform).items():
        for route in ID_ROUTES:
            response = await call(client, route, theirs.ids, headers)
            missing = await call(client, route, nobody, headers)
            body = assert_problem(response, 404)
            assert body["type"] == missing.json()["type"], f"{who}: {route}"
            for name in ("user_id", "device_id", "number", "webhook_id", "job_id"):
                body["detail"] = re.sub(rf"\b{theirs.ids[name]}\b", nobody[name], body["detail"])
                body["params"] = {
                    key: nobody[name] if value == theirs.ids[name] else value
                    for key, value in body["params"].items()
                }
            # Each answer has its own request id; all else is the same as for no such id.
            body.pop("request_id")
            assert body == {k: v for k, v in missing.json().items() if k != "request_id"}, (
                f"{who}: {route}"
            )
            for secret in (theirs.user["display_name"], theirs.device["name"]):
                assert secret not in response.text, f"{who}: {route}"

    assert await snapshot(db, theirs.keys.id) == before


async def test_lists_show_only_the_callers_tenant(
    client: httpx.AsyncClient, platform: dict[str, str], mine: World, theirs: World
) -> None:
    for headers in acting_on(mine.keys, platform).values():
        users = await client.get("/v1/users", headers=headers)
        assert [u["id"] for u in users.json()["items"]] == [mine.user["id"]]
        assert users.json()["total"] == 1
        searched = await client.get(
            "/v1/users", params={"search": theirs.device["name"]}, headers=headers
        )
        assert (searched.json()["items"], searched.json()["total"]) == ([], 0)
        available = await client.get(
            "/v1/extensions/available", params={"limit": 100}, headers=headers
        )
        assert theirs.ids["number"] in available.json()["numbers"]
        assert mine.ids["number"] not in available.json()["numbers"]


async def test_a_tenant_key_ignores_x_tenant_id(
    client: httpx.AsyncClient, mine: World, theirs: World, db: Database
) -> None:
    headers = {**mine.keys.admin, "X-Tenant-ID": str(theirs.keys.id)}

    listed = await client.get("/v1/users", headers=headers)
    created = await client.post("/v1/users", json={"display_name": "Planted"}, headers=headers)

    assert [u["id"] for u in listed.json()["items"]] == [mine.user["id"]]
    assert created.status_code == 201
    [owner] = await db_rows(db, select(User.tenant_id).where(User.display_name == "Planted"))
    assert owner.tenant_id == mine.keys.id


async def test_a_platform_key_acts_on_the_tenant_it_names(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys, db: Database
) -> None:
    headers = {**platform, "X-Tenant-ID": str(tenant.id)}

    created = await client.post("/v1/users", json={"display_name": "Lan"}, headers=headers)

    assert created.status_code == 201, created.text
    [owner] = await db_rows(db, select(User.tenant_id))
    assert owner.tenant_id == tenant.id
    listed = await client.get("/v1/users", headers=tenant.admin)
    assert [u["id"] for u in listed.json()["items"]] == [created.json()["id"]]


@pytest.mark.parametrize(
    ("x_tenant_id", "status"),
    [(None, 422), ("not-a-uuid", 422), ("", 422), (str(uuid.uuid4()), 404)],
)
async def test_a_platform_key_must_name_an_existing_tenant(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    db: Database,
    x_tenant_id: str | None,
    status: int,
) -> None:
    headers = dict(platform)
    if x_tenant_id is not None:
        headers["X-Tenant-ID"] = x_tenant_id

    listed = await client.get("/v1/users", headers=headers)
    created = await client.post("/v1/users", json={"display_name": "Lost"}, headers=headers)

    for response in (listed, created):
        if status == 422:
            assert_problem(response, 422, field="header.X-Tenant-ID")
        else:
            assert_problem(response, 404, code="tenant-not-found")
    assert await db_rows(db, select(User.id)) == []


async def test_using_a_key_records_when_it_was_last_used(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    never = await db_rows(
        db, select(ApiKey.role, ApiKey.last_used_at).where(ApiKey.tenant_id == tenant.id)
    )
    assert {(r.role, r.last_used_at) for r in never} == {(role, None) for role in Role}

    await client.get("/v1/users", headers=tenant.viewer)

    used = await db_rows(
        db, select(ApiKey.role, ApiKey.last_used_at).where(ApiKey.tenant_id == tenant.id)
    )
    assert {r.role for r in used if r.last_used_at is not None} == {Role.viewer}
