"""What a browser SPA and other services build on: CORS, ETags with If-Match, idempotent
creates, Location, honest media types and methods, and a document that tells the truth."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from importlib.metadata import version

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.clock import utcnow
from app.db.session import Database
from app.idempotency.models import IdempotencyKey
from app.jobs.registry import run_job
from app.main import create_app
from app.tenants.models import Tenant
from app.user_record.models import User
from tests.helpers.api import TenantKeys, assert_problem, create_user, db_get, db_rows
from tests.helpers.settings import make_settings

SPA = "http://localhost:5173"


@pytest.fixture
async def cors_client(migrated_url: str, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(make_settings(migrated_url, cors_origins=[SPA]))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            yield c


async def test_a_listed_origin_may_call_every_route_from_a_browser(
    cors_client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    preflight = await cors_client.options(
        "/v1/users",
        headers={
            "Origin": SPA,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, if-match, idempotency-key, "
            "x-tenant-id, content-type, prefer",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == SPA
    allowed = preflight.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "if-match", "idempotency-key", "x-tenant-id", "prefer"):
        assert header in allowed
    assert "PATCH" in preflight.headers["access-control-allow-methods"]

    created = await cors_client.post(
        "/v1/users", json={"display_name": "Lan"}, headers={**tenant.admin, "Origin": SPA}
    )
    assert created.headers["access-control-allow-origin"] == SPA
    exposed = created.headers["access-control-expose-headers"].lower()
    # What a browser's script may read: the new ETag, where it lives, whether a retried
    # create was answered from the first one, whether a preference was applied.
    assert {"etag", "location", "idempotent-replayed", "preference-applied"} <= {
        h.strip() for h in exposed.split(",")
    }


async def test_an_oversized_head_is_refused_readably_for_a_browser(
    cors_client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    """A 431 is answered before any route runs, yet the SPA can read it: CORS headers, the
    request id and the problem body, as on every other answer."""
    huge = {**tenant.admin, "Origin": SPA, "X-Request-ID": "big-head-1", "X-Pad": "x" * 20_000}
    refused = await cors_client.get("/v1/users", headers=huge)
    assert_problem(refused, 431)
    assert refused.headers["access-control-allow-origin"] == SPA
    assert "x-request-id" in refused.headers["access-control-expose-headers"].lower()
    assert refused.headers["x-request-id"] == "big-head-1"
    assert refused.json()["request_id"] == "big-head-1"


async def test_an_unlisted_origin_gets_no_cors_headers(
    cors_client: httpx.AsyncClient, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    preflight = await cors_client.options(
        "/v1/users",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = await client.get("/v1/users", headers={**tenant.admin, "Origin": SPA})
    assert "access-control-allow-origin" not in plain.headers  # none configured


async def test_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    url = f"/v1/users/{user['id']}"
    shown = await client.get(url, headers=tenant.admin)
    etag = shown.headers["etag"]

    first = await client.patch(
        url, json={"display_name": "Lan B"}, headers={**tenant.admin, "If-Match": etag}
    )
    assert first.status_code == 200
    assert first.headers["etag"] != etag
    stale = await client.patch(
        url, json={"display_name": "Lan C"}, headers={**tenant.admin, "If-Match": etag}
    )
    nonsense = await client.delete(url, headers={**tenant.admin, "If-Match": '"nope"'})

    assert_problem(stale, 412, code="precondition-failed")
    assert_problem(nonsense, 412, code="precondition-failed")
    row = await db_get(db, User, user["id"])
    assert row is not None and row.display_name == "Lan B"
    toggles = await client.patch(
        f"{url}/toggles", json={"auto_answer": True}, headers={**tenant.admin, "If-Match": etag}
    )
    assert_problem(toggles, 412)
    # The quota has a version of its own, which the rename left as it was.
    quota_etag = (await client.get(f"{url}/quota", headers=tenant.admin)).headers["etag"]
    ok = await client.put(
        f"{url}/quota", json={"limit_minutes": 5}, headers={**tenant.admin, "If-Match": quota_etag}
    )
    assert ok.status_code == 200 and ok.headers["etag"] != quota_etag
    quota = await client.put(
        f"{url}/quota", json={"limit_minutes": 6}, headers={**tenant.admin, "If-Match": quota_etag}
    )
    assert_problem(quota, 412)
    assert quota.headers["etag"] == ok.headers["etag"]
    assert quota.json()["current"]["limit_minutes"] == 5


async def test_an_if_match_that_lists_no_etag_is_refused_naming_the_header(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    url = f"/v1/users/{user['id']}"

    garbage = await client.patch(
        url, json={"display_name": "Lan B"}, headers={**tenant.admin, "If-Match": "null"}
    )
    empty = await client.patch(
        url, json={"display_name": "Lan C"}, headers={**tenant.admin, "If-Match": ""}
    )

    assert_problem(garbage, 422, field="header.If-Match")
    assert_problem(empty, 412, code="precondition-failed")  # a list of none: none matches
    row = await db_get(db, User, user["id"])
    assert row is not None and row.display_name == "Lan Nguyen"


async def test_two_racing_changes_with_one_etag_one_wins(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    url = f"/v1/users/{user['id']}"
    etag = (await client.get(url, headers=tenant.admin)).headers["etag"]

    answers = await asyncio.gather(
        *(
            client.patch(
                url, json={"display_name": name}, headers={**tenant.admin, "If-Match": etag}
            )
            for name in ("Winner A", "Winner B")
        )
    )

    assert sorted(a.status_code for a in answers) == [200, 412]
    winner = next(a for a in answers if a.status_code == 200).json()["display_name"]
    row = await db_get(db, User, user["id"])
    assert row is not None and row.display_name == winner


async def test_tenant_and_device_changes_honour_if_match(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys
) -> None:
    url = f"/v1/tenants/{tenant.id}"
    etag = (await client.get(url, headers=platform)).headers["etag"]
    changed = await client.patch(
        url, json={"name": "Acme 2"}, headers={**platform, "If-Match": etag}
    )
    assert changed.status_code == 200
    assert_problem(
        await client.patch(url, json={"name": "Acme 3"}, headers={**platform, "If-Match": etag}),
        412,
    )
    user = await create_user(client, tenant.admin)
    device_url = f"/v1/devices/{user['devices'][0]['id']}"
    device_etag = (await client.get(device_url, headers=tenant.admin)).headers["etag"]
    await client.patch(device_url, json={"enabled": False}, headers=tenant.admin)
    assert_problem(
        await client.post(
            f"{device_url}/password", json={}, headers={**tenant.admin, "If-Match": device_etag}
        ),
        412,
    )


async def test_a_retried_create_with_its_key_gets_the_first_answer(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    headers = {**tenant.admin, "Idempotency-Key": "create-lan-1"}
    first = await client.post("/v1/users", json={"display_name": "Lan"}, headers=headers)
    again = await client.post("/v1/users", json={"display_name": "Lan"}, headers=headers)
    other_body = await client.post("/v1/users", json={"display_name": "Mai"}, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert (
        again.headers["location"] == first.headers["location"] == f"/v1/users/{first.json()['id']}"
    )
    assert first.json()["default_device_password"]
    assert_problem(other_body, 422, field="header.Idempotency-Key")
    assert (await db_rows(db, select(func.count()).select_from(User)))[0][0] == 1


async def test_concurrent_creates_with_one_key_make_one_resource(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    headers = {**tenant.admin, "Idempotency-Key": "burst-1"}
    answers = await asyncio.gather(
        *(
            client.post("/v1/users", json={"display_name": "Burst"}, headers=headers)
            for _ in range(5)
        )
    )

    assert [a.status_code for a in answers] == [201] * 5
    assert len({a.json()["id"] for a in answers}) == 1
    assert (await db_rows(db, select(func.count()).select_from(User)))[0][0] == 1


async def test_idempotent_creates_of_every_kind(
    client: httpx.AsyncClient, platform: dict[str, str], db: Database, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    cases = [
        ("/v1/tenants", {"name": "Once", "sip_domain": "once.sip.test"}, platform),
        (f"/v1/tenants/{tenant.id}/api-keys", {"name": "once", "role": "viewer"}, platform),
        (
            f"/v1/users/{user['id']}/devices",
            {"name": "once.phone", "kind": "ip_phone"},
            tenant.admin,
        ),
        (f"/v1/users/{user['id']}/extensions", {"number": "345"}, tenant.admin),
    ]
    for path, body, headers in cases:
        keyed = {**headers, "Idempotency-Key": f"k-{path}"}
        first = await client.post(path, json=body, headers=keyed)
        again = await client.post(path, json=body, headers=keyed)
        assert first.status_code == again.status_code == 201, (path, again.text)
        assert again.json() == first.json()
        assert first.headers["location"]
    domains = await db_rows(
        db, select(Tenant.sip_domain).where(Tenant.sip_domain == "once.sip.test")
    )
    assert len(domains) == 1


async def test_media_types_methods_and_slashes_answer_honestly(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    untyped = await client.post("/v1/users", content=b'{"display_name": "A"}', headers=tenant.admin)
    assert_problem(untyped, 415, code="unsupported-media-type")
    wrong_method = await client.put("/v1/users", json={}, headers=tenant.admin)
    assert_problem(wrong_method, 405)
    assert wrong_method.headers["allow"] == "GET, POST"
    trailing = await client.get("/v1/users/", headers=tenant.admin, follow_redirects=False)
    assert trailing.status_code == 404
    user = await create_user(client, tenant.admin)
    deleted = await client.delete(f"/v1/users/{user['id']}", headers=tenant.admin)
    assert deleted.status_code == 204
    assert "content-type" not in deleted.headers
    assert deleted.content == b""


async def test_validation_messages_are_sentences_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    response = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "12345"}, headers=tenant.admin
    )
    body = assert_problem(response, 422, field="body.number")
    assert body["errors"][0]["message"] == "Enter 2 to 4 digits."
    missing = await client.post("/v1/users", json={}, headers=tenant.admin)
    assert assert_problem(missing, 422, field="body.display_name")["errors"][0]["message"] == (
        "This field is required."
    )


def test_the_document_tells_the_truth(app: FastAPI) -> None:
    document = app.openapi()
    schemas = document["components"]["schemas"]
    for name in ("UserUpdate", "TogglesUpdate", "DeviceUpdate", "TenantUpdate"):
        for field, prop in schemas[name]["properties"].items():
            if field in {
                "email",
                "external_ref",
                "limit_minutes",
                "max_concurrent_calls",
                "mac",
                "model",
            }:
                continue
            assert "null" not in str(prop.get("anyOf", "")), (name, field)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/"):
                assert "503" in operation["responses"], (method, path)
            summary = operation["summary"]
            assert summary[0].isupper() and " " in summary, (method, path, summary)
    patch_user = document["paths"]["/v1/users/{user_id}"]["patch"]["responses"]
    assert "412" in patch_user and "ETag" in patch_user["200"]["headers"]
    assert "Location" in document["paths"]["/v1/users"]["post"]["responses"]["201"]["headers"]
    tags = [tag["name"] for tag in document["tags"]]
    assert tags[:5] == ["users", "devices", "extensions", "quota", "toggles"]
    assert tags.index("tenants") < tags.index("call control")
    assert document["info"]["version"] == version("antring")


async def test_docs_work_offline(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower()
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    bundle = await client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    redoc = await client.get("/redoc")
    assert redoc.status_code == 200 and "/static-offline-docs/redoc.standalone.js" in redoc.text


async def test_keys_are_forgotten_after_a_day(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    headers = {**tenant.admin, "Idempotency-Key": "yesterday"}
    first = await client.post("/v1/users", json={"display_name": "Old"}, headers=headers)
    async with db.engine.begin() as conn:
        await conn.execute(
            update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    assert await run_job(db, "prune-idempotency-keys") == 1
    again = await client.post("/v1/users", json={"display_name": "Old"}, headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    assert await db_rows(db, select(IdempotencyKey.response)) != []
    stored = (await db_rows(db, select(IdempotencyKey.response)))[0].response
    assert again.json()["default_device_password"] not in stored  # kept encrypted


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/v1/users/export", "GET"),
        ("DELETE", "/v1/users/import", "POST"),
        ("PATCH", "/v1/webhooks/event-types", "GET"),
        ("DELETE", "/v1/extensions/available", "GET"),
        ("OPTIONS", "/v1/call-control/sip-accounts/lookups", "POST"),
        ("GET", "/v1/call-control/sip-accounts/lookups", "POST"),
    ],
)
async def test_a_concrete_path_refuses_other_methods_with_its_own_allow(
    client: httpx.AsyncClient, tenant: TenantKeys, method: str, path: str, allow: str
) -> None:
    """As in OpenAPI, a concrete path comes before a templated one whatever the method: these
    are not a user, webhook, extension or SIP account named like the path."""
    response = await client.request(method, path, headers=tenant.admin)

    assert_problem(response, 405)
    assert response.headers["allow"] == allow


async def test_a_templated_path_still_serves_its_ids_and_names_its_own_methods(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)

    shown = await client.get(f"/v1/users/{user['id']}", headers=tenant.admin)
    exported = await client.get("/v1/users/export", headers=tenant.admin)
    refused = await client.put(f"/v1/users/{user['id']}", json={}, headers=tenant.admin)

    assert shown.status_code == 200 and exported.status_code == 200
    assert_problem(refused, 405)
    assert refused.headers["allow"] == "DELETE, GET, PATCH"


def test_optional_parameters_are_left_out_not_sent_as_null(app: FastAPI) -> None:
    """A query or header parameter is text or absent: the document does not invite clients to
    send the text `null`, and declares what the service checks (an ETag list, a UUID)."""
    document = app.openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                assert {"type": "null"} not in parameter["schema"].get("anyOf", []), (
                    method,
                    path,
                    parameter["name"],
                )
    patch_user = document["paths"]["/v1/users/{user_id}"]["patch"]["parameters"]
    headers = {p["name"]: p["schema"] for p in patch_user if p["in"] == "header"}
    assert headers["if-match"]["type"] == "string" and headers["if-match"]["pattern"]
    assert headers["x-tenant-id"]["format"] == "uuid"
    audit = document["paths"]["/v1/audit-events"]["get"]["parameters"]
    assert {p["name"]: p["schema"]["format"] for p in audit if p["name"] in ("since", "until")} == {
        "since": "date-time",
        "until": "date-time",
    }


def test_the_document_links_each_create_to_the_routes_on_its_id(app: FastAPI) -> None:
    document = app.openapi()
    created_user = document["paths"]["/v1/users"]["post"]["responses"]["201"]["links"]
    assert created_user["get_user"] == {
        "operationId": "get_user",
        "parameters": {"user_id": "$response.body#/id"},
    }
    assert {"delete_user", "create_device", "set_quota", "list_user_calls"} <= created_user.keys()
    extension = document["paths"]["/v1/users/{user_id}/extensions"]["post"]["responses"]["201"]
    assert extension["links"]["remove_user_extension"]["parameters"] == {
        "number": "$response.body#/number",
        "user_id": "$request.path.user_id",
    }
    operation_ids = {
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    }
    for item in document["paths"].values():
        for operation in item.values():
            for response in operation["responses"].values():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in operation_ids
