"""Editing from the Users table with versions: each row carries the versions its edits need
(the user's, the quota's, each device's), a switch does not make a quota edit stale, a real
conflict is a 412 with the ETag and the resource as they are now, and a 201 carries the new
resource's ETag."""

import httpx

from tests.helpers.api import TenantKeys, add_device, assert_problem, create_user, version_of
from tests.helpers.imports import csv_file, post_import


def _if_match(headers: dict[str, str], version: int) -> dict[str, str]:
    return {**headers, "If-Match": f'"{version}"'}


async def _row(client: httpx.AsyncClient, tenant: TenantKeys, user_id: str) -> dict:
    page = await client.get("/v1/users", headers=tenant.admin)
    assert page.status_code == 200, page.text
    [row] = [user for user in page.json()["items"] if user["id"] == user_id]
    return row


async def test_each_row_carries_the_versions_its_edits_need(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="Nguyễn Văn An")
    phone = await add_device(client, tenant.admin, user["id"], name="an.desk")
    await client.patch(f"/v1/devices/{phone['id']}", json={"enabled": False}, headers=tenant.admin)
    await client.patch(
        f"/v1/users/{user['id']}", json={"email": "an@acme.vn"}, headers=tenant.admin
    )

    row = await _row(client, tenant, user["id"])

    shown = await client.get(f"/v1/users/{user['id']}", headers=tenant.admin)
    # A read's ETag names the version, and what the read shows.
    assert version_of(shown.headers["etag"]) == str(row["version"]) == "2"
    quota = await client.get(f"/v1/users/{user['id']}/quota", headers=tenant.admin)
    assert quota.headers["etag"] == f'"{row["minutes"]["version"]}"' == '"1"'
    for device in row["devices"]:
        one = await client.get(f"/v1/devices/{device['id']}", headers=tenant.admin)
        assert version_of(one.headers["etag"]) == str(device["version"])
    assert [d["version"] for d in row["devices"] if d["id"] == phone["id"]] == [2]


async def test_a_switch_then_a_quota_edit_from_the_same_row_both_go_through(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, limit_minutes=600)
    row = await _row(client, tenant, user["id"])

    switched = await client.patch(
        f"/v1/users/{user['id']}/toggles",
        json={"outbound_allowed": False},
        headers=_if_match(tenant.admin, row["version"]),
    )
    assert switched.status_code == 200, switched.text
    limited = await client.put(
        f"/v1/users/{user['id']}/quota",
        json={"limit_minutes": 300},
        headers=_if_match(tenant.admin, row["minutes"]["version"]),
    )
    assert limited.status_code == 200, limited.text
    assert limited.json()["limit_minutes"] == 300
    # A change of the limit is a change of the user too: its row's version rose with both.
    row_after = await _row(client, tenant, user["id"])
    assert row_after["version"] == row["version"] + 2
    assert row_after["minutes"]["version"] == row["minutes"]["version"] + 1
    assert limited.headers["etag"] == f'"{row_after["minutes"]["version"]}"'


async def test_a_real_conflict_answers_the_etag_and_the_resource_as_they_are_now(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, limit_minutes=600)
    row = await _row(client, tenant, user["id"])
    quota_url, user_url = f"/v1/users/{user['id']}/quota", f"/v1/users/{user['id']}"

    # Another operator changes the limit first.
    first = await client.put(
        quota_url,
        json={"limit_minutes": 100},
        headers=_if_match(tenant.admin, row["minutes"]["version"]),
    )
    assert first.status_code == 200
    late = await client.put(
        quota_url,
        json={"limit_minutes": 900},
        headers=_if_match(tenant.admin, row["minutes"]["version"]),
    )

    body = assert_problem(late, 412, code="precondition-failed")
    now = await client.get(quota_url, headers=tenant.admin)
    assert late.headers["etag"] == now.headers["etag"] == first.headers["etag"]
    assert body["current"] == now.json()
    assert body["current"]["limit_minutes"] == 100

    # A stale change of the user is answered with the user's row as it is now.
    stale = await client.patch(
        user_url, json={"display_name": "B"}, headers=_if_match(tenant.admin, row["version"])
    )
    body = assert_problem(stale, 412)
    shown = await client.get(user_url, headers=tenant.admin)
    assert version_of(stale.headers["etag"]) == version_of(shown.headers["etag"])
    assert body["current"] == shown.json()
    # Sent again with that ETag, it goes through.
    again = await client.patch(
        user_url,
        json={"display_name": "B"},
        headers={**tenant.admin, "If-Match": stale.headers["etag"]},
    )
    assert again.status_code == 200, again.text

    # A device deleted from a row whose device summary is stale.
    device = row["devices"][0]
    await client.patch(f"/v1/devices/{device['id']}", json={"enabled": False}, headers=tenant.admin)
    refused = await client.delete(
        f"/v1/devices/{device['id']}", headers=_if_match(tenant.admin, device["version"])
    )
    body = assert_problem(refused, 412)
    one = await client.get(f"/v1/devices/{device['id']}", headers=tenant.admin)
    assert version_of(refused.headers["etag"]) == version_of(one.headers["etag"])
    assert body["current"] == one.json()
    assert body["current"]["enabled"] is False


async def test_every_201_of_a_versioned_resource_carries_its_etag(
    client: httpx.AsyncClient, tenant: TenantKeys, platform: dict[str, str]
) -> None:
    headers = {**tenant.admin, "Idempotency-Key": "new-agent-1"}
    created = await client.post("/v1/users", json={"display_name": "Lê Lan"}, headers=headers)
    assert created.status_code == 201
    shown = await client.get(created.headers["location"], headers=tenant.admin)
    assert created.headers["etag"] == '"1"'
    assert version_of(shown.headers["etag"]) == "1"
    replayed = await client.post("/v1/users", json={"display_name": "Lê Lan"}, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["etag"] == created.headers["etag"]

    device = await client.post(
        f"/v1/users/{created.json()['id']}/devices",
        json={"name": "le.lan", "kind": "softphone"},
        headers=tenant.admin,
    )
    assert device.status_code == 201
    assert device.headers["etag"] == f'"{device.json()["version"]}"'

    tenant_created = await client.post(
        "/v1/tenants", json={"name": "Initech", "sip_domain": "initech.sip.test"}, headers=platform
    )
    assert tenant_created.status_code == 201
    one = await client.get(tenant_created.headers["location"], headers=platform)
    assert tenant_created.headers["etag"] == one.headers["etag"]


async def test_an_import_raises_the_quota_version_only_when_it_changes_the_limit(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    created = await post_import(client, tenant.admin, csv_file("Lê Lan,,emp-1,,,600,true,false"))
    user_id = created.json()["rows"][0]["user_id"]
    quota_url = f"/v1/users/{user_id}/quota"
    first = (await client.get(quota_url, headers=tenant.admin)).headers["etag"]

    switched = await post_import(client, tenant.admin, csv_file("Lê Lan,,emp-1,,,600,false,true"))
    assert switched.json()["updated"] == 1
    assert (await client.get(quota_url, headers=tenant.admin)).headers["etag"] == first

    limited = await post_import(client, tenant.admin, csv_file("Lê Lan,,emp-1,,,300,false,true"))
    assert limited.json()["updated"] == 1
    quota = await client.get(quota_url, headers=tenant.admin)
    assert quota.headers["etag"] != first
    assert quota.json()["limit_minutes"] == 300
