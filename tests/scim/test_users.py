"""/scim/v2 as a directory (Okta, Entra ID, Keycloak) uses it: agents made, found, changed,
disabled and deleted through the Users aggregate's own write paths, with SCIM's errors."""

from typing import Any

import httpx
from sqlalchemy import select

from app.outbox.models import Event
from app.user_record.models import User
from tests.helpers.api import TenantKeys, db_rows

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
AGENT = "urn:antring:params:scim:schemas:extension:AntRing:2.0:Agent"


def scim_headers(keys: dict[str, str], **more: str) -> dict[str, str]:
    return {**keys, "Content-Type": SCIM, **more}


def joiner(n: int, **more: Any) -> dict[str, Any]:
    return {
        "schemas": [USER, AGENT],
        "userName": f"agent{n}@acme.vn",
        "externalId": f"okta-{n}",
        "name": {"givenName": "Lan", "familyName": f"Nguyen {n}"},
        "emails": [{"value": f"agent{n}@acme.vn", "primary": True, "type": "work"}],
        "active": True,
        AGENT: {"limitMinutes": 600, "autoAnswer": True},
        **more,
    }


async def create(
    client: httpx.AsyncClient, tenant: TenantKeys, body: dict[str, Any]
) -> dict[str, Any]:
    r = await client.post("/scim/v2/Users", json=body, headers=scim_headers(tenant.scim))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith(SCIM)
    result: dict[str, Any] = r.json()
    return result


async def test_a_joiner_is_an_agent_with_the_default_web_device(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    made = await create(client, tenant, joiner(1))
    assert made["userName"] == "agent1@acme.vn"
    assert made["externalId"] == "okta-1"
    assert made["displayName"] == "Lan Nguyen 1"
    assert made["active"] is True
    assert made[AGENT] == {"limitMinutes": 600, "outboundAllowed": True, "autoAnswer": True}
    assert made["meta"]["version"].startswith('W/"')
    # The same agent on /v1, as POST /v1/users makes one: its web device and external reference.
    agent = (await client.get(f"/v1/users/{made['id']}", headers=tenant.admin)).json()
    assert agent["external_ref"] == "okta-1"
    assert agent["email"] == "agent1@acme.vn"
    assert [device["kind"] for device in agent["devices"]] == ["web"]


async def test_a_retried_create_makes_no_second_agent(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Any
) -> None:
    first = await create(client, tenant, joiner(2))
    again = await client.post("/scim/v2/Users", json=joiner(2), headers=scim_headers(tenant.scim))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"]
    rows = await db_rows(db, select(User).where(User.external_ref == "okta-2"))
    assert len(rows) == 1
    created = await db_rows(db, select(Event).where(Event.type == "user.created"))
    assert len(created) == 1
    # Another person with a login name already taken: SCIM's uniqueness conflict.
    taken = await client.post(
        "/scim/v2/Users",
        json=joiner(3, userName="agent2@acme.vn"),
        headers=scim_headers(tenant.scim),
    )
    assert taken.status_code == 409
    assert taken.headers["content-type"].startswith(SCIM)
    body = taken.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["scimType"] == "uniqueness"
    assert body["status"] == "409"


async def test_filters_and_pages(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    for n in range(5):
        await create(client, tenant, joiner(n))

    async def found(expression: str, **params: Any) -> dict[str, Any]:
        r = await client.get(
            "/scim/v2/Users", params={"filter": expression, **params}, headers=tenant.scim
        )
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    assert [u["userName"] for u in (await found('userName eq "AGENT3@acme.vn"'))["Resources"]] == [
        "agent3@acme.vn"
    ]
    assert (await found('externalId eq "okta-4"'))["totalResults"] == 1
    assert (await found('externalId eq "OKTA-4"'))["totalResults"] == 0
    assert (await found('emails.value eq "agent1@acme.vn"'))["totalResults"] == 1
    assert (await found('emails[value eq "agent1@acme.vn"]'))["totalResults"] == 1
    assert (await found("active eq true"))["totalResults"] == 5
    assert (await found('userName sw "agent" and not (externalId eq "okta-0")'))[
        "totalResults"
    ] == 4
    page = await found('userName co "@acme"', startIndex=2, count=2)
    assert page["totalResults"] == 5
    assert page["startIndex"] == 2
    assert [u["externalId"] for u in page["Resources"]] == ["okta-1", "okta-2"]
    bad = await client.get("/scim/v2/Users", params={"filter": "userName eq"}, headers=tenant.scim)
    assert bad.status_code == 400
    assert bad.json()["scimType"] == "invalidFilter"
    unknown = await client.get(
        "/scim/v2/Users", params={"filter": 'title eq "x"'}, headers=tenant.scim
    )
    assert unknown.json()["scimType"] == "invalidFilter"


async def test_a_leaver_is_disabled_by_patch_and_deleted(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    made = await create(client, tenant, joiner(7))
    url = f"/scim/v2/Users/{made['id']}"
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "active", "value": False},
            {"op": "replace", "path": "name.familyName", "value": "Tran"},
            {"op": "add", "path": f"{AGENT}:limitMinutes", "value": 120},
        ],
    }
    # A stale version changes nothing.
    stale = await client.patch(
        url, json=patch, headers=scim_headers(tenant.scim, **{"If-Match": 'W/"99"'})
    )
    assert stale.status_code == 412
    r = await client.patch(
        url, json=patch, headers=scim_headers(tenant.scim, **{"If-Match": made["meta"]["version"]})
    )
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    assert r.json()[AGENT]["limitMinutes"] == 120
    agent = (await client.get(f"/v1/users/{made['id']}", headers=tenant.admin)).json()
    assert agent["enabled"] is False
    assert agent["limit_minutes"] == 120
    # Remove: the limit goes (unlimited).
    removed = await client.patch(
        url,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": f"{AGENT}:limitMinutes"}],
        },
        headers=scim_headers(tenant.scim),
    )
    assert removed.status_code == 200, removed.text
    assert "limitMinutes" not in removed.json()[AGENT]
    # PUT replaces.
    replaced = await client.put(
        url,
        json=joiner(7, displayName="Trần Thị Lan", active=True),
        headers=scim_headers(tenant.scim),
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["displayName"] == "Trần Thị Lan"
    assert (await client.delete(url, headers=tenant.scim)).status_code == 204
    assert (await client.get(f"/v1/users/{made['id']}", headers=tenant.admin)).status_code == 404
    gone = await client.get(url, headers=tenant.scim)
    assert gone.status_code == 404
    assert gone.json()["status"] == "404"


async def test_a_scim_client_reaches_only_its_tenant_and_only_scim(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    theirs = await create(client, other_tenant, joiner(1))
    mine = await client.get(f"/scim/v2/Users/{theirs['id']}", headers=tenant.scim)
    assert mine.status_code == 404
    listed = await client.get("/scim/v2/Users", headers=tenant.scim)
    assert listed.json()["totalResults"] == 0
    for method, path in [
        ("GET", "/v1/users"),
        ("POST", "/v1/users"),
        ("GET", f"/v1/users/{theirs['id']}"),
        ("GET", f"/v1/tenants/{tenant.id}"),
        ("GET", "/v1/devices"),
    ]:
        r = await client.request(method, path, headers=tenant.scim, json={"display_name": "x"})
        assert r.status_code in (403, 404, 405), (method, path, r.status_code)
        assert r.status_code != 404 or method != "GET" or "users" not in path
    # And the other roles do not reach /scim/v2.
    for keys in (tenant.admin, tenant.operator, tenant.viewer, tenant.call_control):
        r = await client.get("/scim/v2/Users", headers=keys)
        assert r.status_code == 403
        assert r.headers["content-type"].startswith(SCIM)
    unauthenticated = await client.get("/scim/v2/Users")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_discovery(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    config = (await client.get("/scim/v2/ServiceProviderConfig", headers=tenant.scim)).json()
    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True
    types = (await client.get("/scim/v2/ResourceTypes", headers=tenant.scim)).json()
    assert [t["name"] for t in types["Resources"]] == ["User"]
    schemas = (await client.get("/scim/v2/Schemas", headers=tenant.scim)).json()
    assert {s["id"] for s in schemas["Resources"]} == {USER, AGENT}
    assert "/scim/v2" not in str((await client.get("/openapi.json")).json()["paths"].keys())


async def test_a_directory_sets_an_agents_extensions(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Any
) -> None:
    async def numbers(user_id: str) -> list[str]:
        r = await client.get(f"/v1/users/{user_id}/extensions", headers=tenant.admin)
        return [e["number"] for e in r.json()["items"]]

    made = await create(client, tenant, joiner(20, **{AGENT: {"extensions": ["201", "0202"]}}))
    assert made[AGENT]["extensions"] == ["0202", "201"]
    assert await numbers(made["id"]) == ["0202", "201"]
    url = f"/scim/v2/Users/{made['id']}"

    # PATCH adds one and removes another, as the console's (+) and (x) would.
    r = await client.patch(
        url,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "add", "path": f"{AGENT}:extensions", "value": ["203"]},
                {"op": "remove", "path": f'{AGENT}:extensions[value eq "201"]'},
            ],
        },
        headers=scim_headers(tenant.scim),
    )
    assert r.status_code == 200, r.text
    assert await numbers(made["id"]) == ["0202", "203"]

    # A PUT that leaves the numbers out leaves them alone; one that lists them sets them.
    r = await client.put(url, json=joiner(20), headers=scim_headers(tenant.scim))
    assert r.status_code == 200, r.text
    assert r.json()[AGENT]["extensions"] == ["0202", "203"]
    r = await client.put(
        url, json=joiner(20, **{AGENT: {"extensions": ["203"]}}), headers=scim_headers(tenant.scim)
    )
    assert r.status_code == 200, r.text
    assert await numbers(made["id"]) == ["203"]

    # Refusals change nothing: a taken number (409 uniqueness), a malformed one, an emergency one.
    other = await create(client, tenant, joiner(21))
    taken = await client.put(
        f"/scim/v2/Users/{other['id']}",
        json=joiner(21, displayName="Changed", **{AGENT: {"extensions": ["204", "203"]}}),
        headers=scim_headers(tenant.scim),
    )
    assert taken.status_code == 409, taken.text
    assert taken.json()["scimType"] == "uniqueness"
    assert await numbers(other["id"]) == []
    shown = (await client.get(f"/v1/users/{other['id']}", headers=tenant.admin)).json()
    assert shown["display_name"] != "Changed"
    for bad in (["12345"], ["113"], ["205", "205"]):
        refused = await client.put(
            f"/scim/v2/Users/{other['id']}",
            json=joiner(21, **{AGENT: {"extensions": bad}}),
            headers=scim_headers(tenant.scim),
        )
        assert refused.status_code == 400, (bad, refused.text)
        assert refused.json()["scimType"] == "invalidValue"
        assert f"{AGENT}:extensions" in refused.json()["detail"]
    assert await numbers(other["id"]) == []

    # Each change is the console's own event; another tenant may hold the same number.
    added = await db_rows(db, select(Event).where(Event.type == "extension.added"))
    assert sorted(e.resource_id for e in added) == ["0202", "201", "203"]
    theirs = await client.post(
        "/scim/v2/Users",
        json=joiner(20, **{AGENT: {"extensions": ["203"]}}),
        headers=scim_headers(other_tenant.scim),
    )
    assert theirs.status_code == 201, theirs.text
