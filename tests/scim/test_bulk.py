"""`POST /scim/v2/Bulk` as a directory uses it to sync many agents at once: each operation made
by the single request's write path (or, for creates, written together as the import writes
its rows) with its own outcome, bulkId references, failOnErrors and the advertised limits."""

import json
from typing import Any

import httpx
from sqlalchemy import func, select

from app.devices import service as devices_service
from app.outbox.models import AuditEntry, Event
from app.scim.bulk import MAX_OPERATIONS
from app.user_record.models import User
from tests.helpers.api import TenantKeys, db_rows
from tests.scim.test_users import AGENT, create, joiner, scim_headers

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def post(n: int, bulk_id: str | None = None, **more: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": bulk_id or f"b{n}",
        "data": joiner(n, **more),
    }


def bulk(*operations: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"schemas": [BULK_REQUEST], "Operations": list(operations), **more}


async def send(
    client: httpx.AsyncClient, keys: dict[str, str], body: dict[str, Any]
) -> list[dict[str, Any]]:
    r = await client.post("/scim/v2/Bulk", json=body, headers=scim_headers(keys))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/scim+json")
    answer = r.json()
    assert answer["schemas"] == [BULK_RESPONSE]
    operations: list[dict[str, Any]] = answer["Operations"]
    return operations


async def agent(client: httpx.AsyncClient, tenant: TenantKeys, user_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/users/{user_id}", headers=tenant.admin)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def refs(db: Any) -> list[str]:
    """The agents' external references, in order (those that have one)."""
    rows = await db_rows(db, select(User.external_ref))
    return sorted(row[0] for row in rows if row[0] is not None)


def user_id(result: dict[str, Any]) -> str:
    return str(result["location"].rsplit("/", 1)[1])


async def test_a_bulk_of_joiners_makes_agents_as_single_creates_do(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Any
) -> None:
    results = await send(
        client,
        tenant.scim,
        bulk(
            *(post(n) for n in range(5)),
            post(5, **{AGENT: {"extensions": ["501", "0502"], "limitMinutes": 90}}),
            post(6, active=False),
        ),
    )
    assert [r["status"] for r in results] == ["201"] * 7
    assert [r["bulkId"] for r in results] == [f"b{n}" for n in range(7)]
    assert all(r["version"] == 'W/"1"' for r in results[:6])
    assert all("response" not in r for r in results)
    # Each is an agent as POST /v1/users makes one: its web device, its reference.
    first = await agent(client, tenant, user_id(results[0]))
    assert first["external_ref"] == "okta-0"
    assert first["email"] == "agent0@acme.vn"
    assert first["display_name"] == "Lan Nguyen 0"
    assert first["auto_answer"] is True
    assert first["limit_minutes"] == 600
    assert [d["kind"] for d in first["devices"]] == ["web"]
    with_numbers = await agent(client, tenant, user_id(results[5]))
    assert sorted(with_numbers["extensions"]) == ["0502", "501"]
    assert with_numbers["limit_minutes"] == 90
    assert (await agent(client, tenant, user_id(results[6])))["enabled"] is False
    # And SCIM shows them as its own creates do.
    shown = await client.get(results[5]["location"].split("antring.test")[1], headers=tenant.scim)
    assert shown.json()[AGENT]["extensions"] == ["0502", "501"]
    assert shown.json()["userName"] == "agent5@acme.vn"
    # Found by the Users table's search: by a name, a device's name, an extension.
    found = await client.get("/v1/users", params={"search": "0502"}, headers=tenant.admin)
    assert [u["id"] for u in found.json()["items"]] == [user_id(results[5])]
    device = first["devices"][0]["name"]
    found = await client.get("/v1/users", params={"search": device}, headers=tenant.admin)
    assert [u["id"] for u in found.json()["items"]] == [user_id(results[0])]
    # The events and audit entries of single creates, naming the directory's key.
    for kind, count in [
        ("user.created", 7),
        ("device.created", 7),
        ("extension.added", 2),
        ("user.updated", 1),
    ]:
        events = await db_rows(db, select(Event).where(Event.type == kind))
        assert len(events) == count, kind
    entries = await db_rows(db, select(AuditEntry).where(AuditEntry.action == "user.created"))
    assert {(e.actor_role, e.actor_key_name) for e in entries} == {("scim", "scim")}


async def test_a_failing_operation_fails_alone(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Any
) -> None:
    held = await create(client, tenant, joiner(1, **{AGENT: {"extensions": ["101"]}}))
    results = await send(
        client,
        tenant.scim,
        bulk(
            post(2),
            # Another person with a login name taken: 409, and nothing of it kept.
            post(3, userName="agent1@acme.vn"),
            post(4),
            # An extension another agent holds.
            post(5, **{AGENT: {"extensions": ["101"]}}),
            # Two creates of the request claiming one number: the second is refused.
            post(6, **{AGENT: {"extensions": ["606"]}}),
            post(7, **{AGENT: {"extensions": ["606"]}}),
            # Not a SCIM user at all, and a resource type that is not served.
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"displayName": "x"}},
            {"method": "PUT", "path": "/Groups/1", "data": joiner(8)},
            # A retry of a create the directory sent before: that agent, unchanged.
            post(1),
            post(9),
        ),
    )
    statuses = [r["status"] for r in results]
    assert statuses == ["201", "409", "201", "409", "201", "409", "400", "400", "200", "201"]
    for failed in (results[1], results[3], results[5]):
        assert failed["response"]["schemas"] == [ERROR]
        assert failed["response"]["scimType"] == "uniqueness"
        assert failed["response"]["status"] == "409"
        assert "location" not in failed
    assert results[6]["response"]["scimType"] == "invalidValue"
    assert results[7]["response"]["scimType"] == "invalidPath"
    assert user_id(results[8]) == held["id"]
    assert await refs(db) == ["okta-1", "okta-2", "okta-4", "okta-6", "okta-9"]
    assert (await agent(client, tenant, held["id"]))["extensions"] == ["101"]


async def test_bulk_ids_name_the_users_the_request_created(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    results = await send(
        client,
        tenant.scim,
        bulk(
            post(1, bulk_id="lan"),
            {
                "method": "PATCH",
                "path": "/Users/bulkId:lan",
                "version": 'W/"1"',
                "data": {
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {"op": "replace", "path": "active", "value": False},
                        {"op": "add", "path": f"{AGENT}:limitMinutes", "value": 30},
                    ],
                },
            },
            post(2, bulk_id="minh"),
            {"method": "PUT", "path": "/Users/bulkId:minh", "data": joiner(2, displayName="Minh")},
            post(3, bulk_id="gone"),
            {"method": "DELETE", "path": "/Users/bulkId:gone"},
            # A create that fails, and the operations naming it.
            post(4, bulk_id="failed", userName="agent1@acme.vn"),
            {"method": "DELETE", "path": "/Users/bulkId:failed"},
            {"method": "DELETE", "path": "/Users/bulkId:nobody"},
            # A version the user is not at changes nothing.
            {
                "method": "PUT",
                "path": "/Users/bulkId:minh",
                "version": 'W/"1"',
                "data": joiner(2, displayName="Stale"),
            },
            # A bulkId given twice.
            post(5, bulk_id="lan"),
        ),
    )
    statuses = [r["status"] for r in results]
    assert statuses == [
        "201", "200", "201", "200", "201", "204", "409", "409", "409", "412", "400"
    ]  # fmt: skip
    lan, minh, gone = user_id(results[0]), user_id(results[2]), user_id(results[4])
    assert user_id(results[1]) == lan
    assert results[1]["version"] == 'W/"2"'
    shown = await agent(client, tenant, lan)
    assert shown["enabled"] is False
    assert shown["limit_minutes"] == 30
    assert (await agent(client, tenant, minh))["display_name"] == "Minh"
    assert (await client.get(f"/v1/users/{gone}", headers=tenant.admin)).status_code == 404
    assert "failed" in results[7]["response"]["detail"]
    assert results[10]["response"]["scimType"] == "invalidValue"


async def test_fail_on_errors_ends_the_request(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Any
) -> None:
    await create(client, tenant, joiner(1))
    taken = {"userName": "agent1@acme.vn"}
    results = await send(
        client,
        tenant.scim,
        bulk(
            post(2),
            post(3, **taken),
            post(4),
            post(5, **taken),
            post(6),
            {"method": "DELETE", "path": "/Users/00000000-0000-0000-0000-000000000000"},
            post(7),
            failOnErrors=2,
        ),
    )
    # The second failure ends it: what came before stays, nothing after is run or answered.
    assert [r["status"] for r in results] == ["201", "409", "201", "409"]
    assert await refs(db) == ["okta-1", "okta-2", "okta-4"]
    results = await send(
        client,
        tenant.scim,
        bulk(
            {"method": "DELETE", "path": "/Users/00000000-0000-0000-0000-000000000000"},
            post(8),
            failOnErrors=1,
        ),
    )
    assert [r["status"] for r in results] == ["404"]
    bad = await client.post(
        "/scim/v2/Bulk", json=bulk(post(9), failOnErrors=0), headers=scim_headers(tenant.scim)
    )
    assert bad.status_code == 400
    assert bad.json()["scimType"] == "invalidValue"


async def test_a_bulk_sent_again_makes_no_second_agent(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Any
) -> None:
    body = bulk(*(post(n) for n in range(3)), post(1, bulk_id="b1-again"))
    first = await send(client, tenant.scim, body)
    assert [r["status"] for r in first] == ["201", "201", "201", "200"]
    assert user_id(first[3]) == user_id(first[1])
    again = await send(client, tenant.scim, body)
    assert [r["status"] for r in again] == ["200"] * 4
    assert [user_id(r) for r in again] == [user_id(r) for r in first]
    count = await db_rows(db, select(func.count()).select_from(User))
    assert count[0][0] == 3


async def test_the_limits_are_advertised_and_kept(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Any
) -> None:
    config = (await client.get("/scim/v2/ServiceProviderConfig", headers=tenant.scim)).json()
    assert config["bulk"] == {
        "supported": True,
        "maxOperations": MAX_OPERATIONS,
        "maxPayloadSize": 1024 * 1024,
    }
    many = bulk(*({"method": "DELETE", "path": f"/Users/{n}"} for n in range(MAX_OPERATIONS + 1)))
    r = await client.post("/scim/v2/Bulk", json=many, headers=scim_headers(tenant.scim))
    assert r.status_code == 413
    assert r.json()["schemas"] == [ERROR]
    assert r.json()["status"] == "413"
    assert str(MAX_OPERATIONS) in r.json()["detail"]
    large = json.dumps(bulk(post(1, displayName="x" * (1024 * 1024))))
    r = await client.post("/scim/v2/Bulk", content=large, headers=scim_headers(tenant.scim))
    assert r.status_code == 413
    assert r.json()["schemas"] == [ERROR]
    assert "maxPayloadSize" in r.json()["detail"]
    # The same limit, in the same shape, on a single request.
    one = json.dumps(joiner(1, displayName="x" * (1024 * 1024)))
    r = await client.post("/scim/v2/Users", content=one, headers=scim_headers(tenant.scim))
    assert r.status_code == 413
    assert r.json()["schemas"] == [ERROR]
    # Neither was run; nor is a request that is not a BulkRequest.
    assert await db_rows(db, select(User.id)) == []
    for body in ({"Operations": "x"}, [post(1)], {"schemas": [BULK_REQUEST]}):
        r = await client.post("/scim/v2/Bulk", json=body, headers=scim_headers(tenant.scim))
        assert r.status_code == 400, r.text
        assert r.json()["scimType"] == "invalidSyntax"
    r = await client.get("/scim/v2/Bulk", headers=tenant.scim)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    r = await client.post("/scim/v2/Bulk/1", json=bulk(post(1)), headers=scim_headers(tenant.scim))
    assert r.status_code == 404


async def test_a_scim_client_reaches_only_its_tenant_through_bulk(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    theirs = await create(client, other_tenant, joiner(1))
    path = f"/Users/{theirs['id']}"
    results = await send(
        client,
        tenant.scim,
        bulk(
            {"method": "PUT", "path": path, "data": joiner(1, displayName="Mine now")},
            {
                "method": "PATCH",
                "path": path,
                "data": {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "active", "value": False}],
                },
            },
            {"method": "DELETE", "path": path},
            # Their externalId and userName are theirs: here it is a new agent.
            post(1),
        ),
    )
    assert [r["status"] for r in results] == ["404", "404", "404", "201"]
    assert user_id(results[3]) != theirs["id"]
    still = (await client.get(f"/v1/users/{theirs['id']}", headers=other_tenant.admin)).json()
    assert still["display_name"] == "Lan Nguyen 1"
    assert still["enabled"] is True
    # Other roles do not reach /Bulk.
    for keys in (tenant.admin, tenant.operator):
        r = await client.post("/scim/v2/Bulk", json=bulk(post(2)), headers=scim_headers(keys))
        assert r.status_code == 403


async def test_creates_another_change_got_in_the_way_of_go_on_their_own(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Any, monkeypatch: Any
) -> None:
    # A device name taken between the look-up and the write (as by another request): the
    # first generated name is one a device has already, which only the write finds out.
    made = await client.post("/v1/users", json={"display_name": "Early"}, headers=tenant.admin)
    taken = made.json()["devices"][0]["name"]
    names = iter([taken])
    original = devices_service.default_device_name

    def name(display_name: str) -> str:
        return next(names, None) or original(display_name)

    monkeypatch.setattr(devices_service, "default_device_name", name)
    results = await send(client, tenant.scim, bulk(*(post(n) for n in range(4))))
    assert [r["status"] for r in results] == ["201"] * 4
    assert await refs(db) == ["okta-0", "okta-1", "okta-2", "okta-3"]
    # Written once each: the refused write left nothing behind.
    for kind in ("user.created", "device.created"):
        events = await db_rows(db, select(Event).where(Event.type == kind))
        assert len(events) == 5, kind
    for result in results:
        shown = await agent(client, tenant, user_id(result))
        assert len(shown["devices"]) == 1
        assert shown["devices"][0]["name"] != taken
