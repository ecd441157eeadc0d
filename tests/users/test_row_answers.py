"""Writes to a user's devices, extensions, switches and quota answer the user's row as the
change left it, so the console redraws the row without reading it again; a deletion does so
when asked with `Prefer: return=representation` (RFC 7240)."""

from typing import Any

import httpx

from tests.helpers.api import TenantKeys, add_extension, create_user, version_of

PREFER = {"Prefer": "return=representation"}


async def _shown(client: httpx.AsyncClient, tenant: TenantKeys, user_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/users/{user_id}", headers=tenant.admin)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_device_writes_answer_the_row_they_leave(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="Trần Thị Hiếu")

    created = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "hieu.desk", "kind": "ip_phone", "mac": "001565aabbcc", "model": "yealink"},
        headers=tenant.admin,
    )
    assert created.status_code == 201, created.text
    row = created.json()["user"]
    assert row == await _shown(client, tenant, user["id"])
    assert [d["name"] for d in row["devices"]][-1] == "hieu.desk"

    device_id = created.json()["id"]
    changed = await client.patch(
        f"/v1/devices/{device_id}", json={"enabled": False}, headers=tenant.admin
    )
    assert changed.status_code == 200
    row = changed.json()["user"]
    assert row == await _shown(client, tenant, user["id"])
    [summary] = [d for d in row["devices"] if d["id"] == device_id]
    assert summary["enabled"] is False
    assert str(summary["version"]) == version_of(changed.headers["etag"])

    # A deletion answers nothing unless asked for the row.
    plain = await client.delete(f"/v1/devices/{user['devices'][0]['id']}", headers=tenant.admin)
    assert plain.status_code == 204 and plain.content == b""
    deleted = await client.delete(f"/v1/devices/{device_id}", headers={**tenant.admin, **PREFER})
    assert deleted.status_code == 200, deleted.text
    assert deleted.headers["preference-applied"] == "return=representation"
    assert deleted.json() == {"user": await _shown(client, tenant, user["id"])}
    assert deleted.json()["user"]["devices"] == []


async def test_extension_switch_and_quota_writes_answer_the_row_they_leave(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="Lê Minh Hiếu")
    user_url = f"/v1/users/{user['id']}"

    added = await client.post(
        f"{user_url}/extensions", json={"number": "230"}, headers=tenant.admin
    )
    assert added.status_code == 201
    assert added.json()["number"] == "230"
    assert added.json()["user"]["extensions"] == ["230"]
    assert added.json()["user"] == await _shown(client, tenant, user["id"])

    await add_extension(client, tenant.admin, user["id"], "231")
    removed = await client.delete(f"{user_url}/extensions/230", headers={**tenant.admin, **PREFER})
    assert removed.status_code == 200
    assert removed.json()["user"]["extensions"] == ["231"]
    assert removed.json()["user"] == await _shown(client, tenant, user["id"])

    switched = await client.patch(
        f"{user_url}/toggles", json={"auto_answer": True}, headers=tenant.admin
    )
    assert switched.status_code == 200
    assert switched.json()["auto_answer"] is True
    assert switched.json()["user"]["auto_answer"] is True
    assert switched.json()["user"] == await _shown(client, tenant, user["id"])
    assert switched.headers["etag"] == f'"{switched.json()["user"]["version"]}"'

    limited = await client.put(
        f"{user_url}/quota", json={"limit_minutes": 90}, headers=tenant.admin
    )
    assert limited.status_code == 200
    row = limited.json()["user"]
    assert row["minutes"]["limit_minutes"] == row["limit_minutes"] == 90
    assert limited.headers["etag"] == f'"{row["minutes"]["version"]}"'
    assert row == await _shown(client, tenant, user["id"])


async def test_another_tenants_user_is_not_found_and_shows_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "555"}, headers=other_tenant.admin
    )

    assert response.status_code == 404
    assert "user" not in response.json()
