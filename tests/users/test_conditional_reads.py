"""Conditional reads: a user, a device and a page of users answer an ETag of what they show;
If-None-Match with it gets 304 and no body until something shown changes, and the same tag
sent as If-Match guards a change."""

import httpx

from tests.helpers.api import TenantKeys, add_device, create_user
from tests.helpers.callcontrol import new_agent, report


async def _again(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], etag: str
) -> httpx.Response:
    return await client.get(url, headers={**headers, "If-None-Match": etag})


async def test_an_unchanged_user_device_and_page_answer_304_without_a_body(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="An")
    device = await add_device(client, tenant.admin, user["id"], name="an.desk")
    for url in (f"/v1/users/{user['id']}", f"/v1/devices/{device['id']}", "/v1/users?limit=10"):
        first = await client.get(url, headers=tenant.viewer)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')

        unchanged = await _again(client, url, tenant.viewer, etag)
        assert (unchanged.status_code, unchanged.content) == (304, b"")
        assert unchanged.headers["etag"] == etag
        # Weak comparison, lists and `*`, as RFC 9110 says for If-None-Match.
        for sent in (f"W/{etag}", f'"other", {etag}', "*"):
            assert (await _again(client, url, tenant.viewer, sent)).status_code == 304
        assert (await _again(client, url, tenant.viewer, '"other"')).status_code == 200


async def test_a_change_of_anything_shown_answers_the_new_body(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, display_name="An")
    user_url = f"/v1/users/{agent.id}"
    user_tag = (await client.get(user_url, headers=tenant.viewer)).headers["etag"]
    page_tag = (await client.get("/v1/users", headers=tenant.viewer)).headers["etag"]

    # Minutes used change neither the user's version nor its switches: still a new body.
    assert (await report(client, agent, "call-1", duration=90)).status_code == 201
    changed = await _again(client, user_url, tenant.viewer, user_tag)
    assert changed.status_code == 200
    assert changed.json()["minutes"]["used_minutes"] == 2
    assert changed.headers["etag"] != user_tag
    assert (await _again(client, "/v1/users", tenant.viewer, page_tag)).status_code == 200


async def test_a_reads_etag_guards_a_change_by_its_version(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, display_name="An")
    url = f"/v1/users/{agent.id}"
    etag = (await client.get(url, headers=tenant.admin)).headers["etag"]
    # Minutes used do not make a change of the user stale.
    await report(client, agent, "call-1", duration=30)

    first = await client.patch(
        url, json={"email": "an@acme.vn"}, headers={**tenant.admin, "If-Match": etag}
    )
    assert first.status_code == 200, first.text
    late = await client.patch(
        url, json={"email": "b@acme.vn"}, headers={**tenant.admin, "If-Match": etag}
    )
    assert late.status_code == 412
