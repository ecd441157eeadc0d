"""The audit trail and the events say who acted: the key (or, in tests/auth/test_tokens.py, the
person signed in), never its secret; the trail filters by actor."""

import httpx
from sqlalchemy import select

from app.db.session import Database
from app.outbox.models import Event
from tests.helpers.api import TenantKeys, create_user, db_rows


async def test_changes_name_the_key_and_the_trail_filters_by_actor(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    keys = (await client.get(f"/v1/tenants/{tenant.id}/api-keys", headers=tenant.admin)).json()
    by_role = {k["role"]: k for k in keys["items"]}
    by_admin = await create_user(client, tenant.admin, display_name="Lê Văn Minh")
    by_operator = await create_user(client, tenant.operator, display_name="Phạm Thu Hà")

    mine = await client.get(
        "/v1/audit-events",
        params={"actor_id": by_role["operator"]["id"], "resource_type": "user"},
        headers=tenant.admin,
    )

    assert mine.status_code == 200, mine.text
    assert [e["resource_id"] for e in mine.json()["items"]] == [by_operator["id"]]
    [entry] = mine.json()["items"]
    assert entry["actor"]["kind"] == "api_key"
    assert entry["actor"]["name"] == "operator"
    assert entry["actor"]["role"] == "operator"
    assert entry["actor_key_id"] == by_role["operator"]["id"]
    # Events name the actor by kind and id, nothing more.
    events = await db_rows(
        db, select(Event.resource_id, Event.data).where(Event.type == "user.created")
    )
    actors = {row.resource_id: row.data["actor"] for row in events}
    assert actors[by_admin["id"]] == {"kind": "api_key", "id": by_role["admin"]["id"]}
    assert actors[by_operator["id"]] == {"kind": "api_key", "id": by_role["operator"]["id"]}
    for row in events:
        for headers in (tenant.admin, tenant.operator):
            assert headers["Authorization"].removeprefix("Bearer ") not in str(row.data)
