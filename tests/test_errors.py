"""One error format everywhere (RFC 9457), and bad input never becomes a 500."""

import itertools
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.helpers.api import TenantKeys, add_extension, assert_problem, create_user
from tests.helpers.settings import make_settings


async def test_a_malformed_uuid_is_422_naming_the_path_parameter(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    for path, field in (
        ("/v1/users/not-a-uuid", "path.user_id"),
        ("/v1/devices/1234", "path.device_id"),
        ("/v1/users/123e4567-e89b-12d3-a456-42661417400Z/devices", "path.user_id"),
    ):
        body = assert_problem(
            await client.get(path, headers=tenant.admin), 422, field=field, code="validation-error"
        )
        assert body["title"] == "Invalid input"
        assert field in body["detail"]
        assert body["errors"][0]["code"] == "not-a-uuid"


async def test_a_body_that_is_not_json_is_422(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    response = await client.post(
        "/v1/users",
        content=b'{"display_name": "Lan",',
        headers={**tenant.admin, "Content-Type": "application/json"},
    )

    body = assert_problem(response, 422, field="body", code="validation-error")
    assert body["errors"][0]["code"] == "invalid-json"
    assert "JSON" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "content",
    [b"[]", b'"Lan"', b"null", b"42", b""],
    ids=["array", "string", "null", "number", "empty"],
)
async def test_a_body_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, tenant: TenantKeys, content: bytes
) -> None:
    response = await client.post(
        "/v1/users", content=content, headers={**tenant.admin, "Content-Type": "application/json"}
    )

    body = assert_problem(response, 422, code="validation-error")
    assert body["errors"]


async def test_an_unknown_kind_is_422_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "lan.fax", "kind": "fax"},
        headers=tenant.admin,
    )

    body = assert_problem(response, 422, field="body.kind", code="validation-error")
    assert "web" in body["errors"][0]["message"]


async def test_a_negative_limit_is_422_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)

    listed = await client.get("/v1/users", params={"limit": -5}, headers=tenant.admin)
    created = await client.post(
        "/v1/users", json={"display_name": "x", "limit_minutes": -5}, headers=tenant.admin
    )
    patched = await client.patch(
        f"/v1/users/{user['id']}", json={"limit_minutes": -1}, headers=tenant.admin
    )

    assert_problem(listed, 422, field="query.limit")
    assert_problem(created, 422, field="body.limit_minutes")
    assert_problem(patched, 422, field="body.limit_minutes")


async def test_a_five_digit_extension_is_422_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "12345"}, headers=tenant.admin
    )

    body = assert_problem(response, 422, field="body.number", code="validation-error")
    assert "body.number" in body["detail"]


async def test_several_bad_fields_are_all_named(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    response = await client.post(
        "/v1/users",
        json={"display_name": "", "email": "nope", "limit_minutes": -1},
        headers=tenant.admin,
    )

    body = assert_problem(response, 422)
    assert sorted(e["field"] for e in body["errors"]) == [
        "body.display_name",
        "body.email",
        "body.limit_minutes",
    ]


async def test_not_found_is_a_problem(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    missing = await client.get(f"/v1/users/{uuid.uuid4()}", headers=tenant.admin)
    no_route = await client.get("/v1/nothing-here", headers=tenant.admin)

    body = assert_problem(missing, 404, code="user-not-found")
    assert body["title"] == "User not found"
    assert body["detail"]
    assert "errors" not in body
    assert_problem(no_route, 404)


async def test_method_not_allowed_is_a_problem(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    response = await client.put("/v1/users", json={}, headers=tenant.admin)

    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_a_wrong_method_names_the_allowed_ones_without_building_the_document() -> None:
    """The OpenAPI document, once built, stays in the process (several MB): a 405 reads the
    routes instead."""
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as plain:
        response = await plain.delete("/v1/users")

    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, POST"
    assert app.openapi_schema is None


async def test_conflict_is_a_problem_naming_what_is_taken(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    await add_extension(client, tenant.admin, user["id"], "102")

    response = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "102"}, headers=tenant.admin
    )

    body = assert_problem(response, 409, code="extension-taken")
    assert body["title"] == "Extension taken"
    assert "102" in body["detail"]


BAD_VALUES: list[Any] = [
    None,
    -1,
    10**30,
    1.5,
    True,
    "",
    "x" * 5000,
    "\x00",
    "١٢٣",
    "'; DROP TABLE user_account; --",
    [],
    {"nested": {"deeper": []}},
]

BODIES: dict[str, dict[str, Any]] = {
    "POST /v1/users": {
        "display_name": "Lan",
        "email": "lan@acme.vn",
        "external_ref": "e1",
        "limit_minutes": 5,
        "outbound_allowed": True,
    },
    "PATCH /v1/users/{user_id}": {
        "display_name": "Lan",
        "email": "lan@acme.vn",
        "enabled": True,
        "auto_answer": True,
    },
    "PATCH /v1/users/{user_id}/toggles": {"outbound_allowed": True, "auto_answer": False},
    "POST /v1/users/{user_id}/devices": {
        "name": "lan.new",
        "kind": "web",
        "password": "Blue7Harbor42x",
    },
    "PATCH /v1/devices/{device_id}": {"name": "lan.renamed", "kind": "web", "enabled": True},
    "POST /v1/devices/{device_id}/password": {"password": "Blue7Harbor42x"},
    "POST /v1/users/{user_id}/extensions": {"number": "777"},
}


async def test_bad_input_never_causes_a_server_error(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    ids = {"user_id": user["id"], "device_id": user["devices"][0]["id"]}

    for route, fields in BODIES.items():
        method, template = route.split(" ")
        for field, value in itertools.product(fields, BAD_VALUES):
            body = {**fields, field: value}
            response = await client.request(
                method, template.format(**ids), json=body, headers=tenant.admin
            )
            assert response.status_code < 500, (route, field, value)
            if response.status_code >= 400:
                assert_problem(response, response.status_code)

    for path in (
        "/v1/users/%00",
        "/v1/users/" + "a" * 5000,
        "/v1/extensions/%00%00",
        "/v1/extensions/" + "1" * 5000,
        "/v1/users?search=%00",
        "/v1/users?search=%25%25%5C",
        "/v1/users?limit=1e3",
        "/v1/users?offset=99999999999999999999",
        "/v1/users?sort=display_name;DROP",
        "/v1/extensions/available?digits=99999999999999999999",
    ):
        response = await client.get(path, headers=tenant.admin)
        assert response.status_code < 500, path
        if response.status_code >= 400:
            assert_problem(response, response.status_code)


@pytest.mark.parametrize(
    "unreachable",
    ["postgresql+asyncpg://postgres@127.0.0.1:1/antring", "sqlite+aiosqlite:///{tmp}/missing/x.db"],
    ids=["postgresql", "sqlite"],
)
async def test_an_unreachable_database_is_503_to_retry_not_500(
    unreachable: str, tmp_path: Any
) -> None:
    app = create_app(make_settings(unreachable.format(tmp=tmp_path)))
    key = {"Authorization": "Bearer ark_" + "x" * 40}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            for response in (
                await c.get("/v1/call-control/sip-accounts/lan?domain=a.sip.test", headers=key),
                await c.post(
                    "/v1/call-control/authorizations",
                    json={
                        "domain": "a.sip.test",
                        "username": "lan",
                        "call_id": "c1",
                        "destination": "0901234567",
                    },
                    headers=key,
                ),
                await c.get("/v1/users", headers=key),
            ):
                body = assert_problem(response, 503, code="database-unavailable")
                assert response.headers["retry-after"] == "1"
                assert "127.0.0.1" not in response.text and "missing" not in response.text
                assert body["detail"]


# The routes schemathesis found answering `400 There was an error parsing the body`.
NOT_UTF8_ROUTES = [
    ("POST", "/v1/users"),
    ("PATCH", "/v1/webhooks/{webhook_id}"),
    ("POST", "/v1/devices/{device_id}/password"),
    ("POST", "/v1/devices/{device_id}/provisioning-links"),
    ("POST", "/v1/tenants/{tenant_id}/api-keys"),
    ("POST", "/v1/call-control/authorizations"),
    ("POST", "/v1/call-control/registrations"),
]


@pytest.mark.parametrize(("method", "template"), NOT_UTF8_ROUTES)
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"name": "\xff\xfe"}', "it is not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "it nests too deeply"),
    ],
    ids=["not-utf8", "nested"],
)
async def test_a_body_json_cannot_read_is_the_documented_422_problem(
    app: FastAPI,
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    method: str,
    template: str,
    content: bytes,
    reason: str,
) -> None:
    user = await create_user(client, tenant.admin)
    webhook = await client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=tenant.admin
    )
    ids = {
        "webhook_id": webhook.json()["id"],
        "device_id": user["devices"][0]["id"],
        "tenant_id": str(tenant.id),
    }
    headers = {**platform, "X-Tenant-ID": str(tenant.id), "Content-Type": "application/json"}

    response = await client.request(
        method, template.format(**ids), content=content, headers=headers
    )

    body = assert_problem(response, 422, field="body", code="validation-error")
    assert body["errors"][0]["code"] == "invalid-json"
    assert body["errors"][0]["params"] == {"reason": reason}
    declared = app.openapi()["paths"][template][method.lower()]["responses"]
    assert "422" in declared
