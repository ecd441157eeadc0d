import asyncio
import hashlib

import httpx

from app.auth.models import Role
from app.db.session import Database
from tests.helpers.api import TenantKeys, new_platform_key
from tests.helpers.callcontrol import Agent, new_agent


async def test_registrar_lookup_gives_digest_ha1_of_the_device_password(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant)
    created = await client.post(
        f"/v1/users/{agent.id}/devices",
        json={"name": "Lan.Desk", "kind": "ip_phone", "password": "Harbor7Blue42x"},
        headers=tenant.admin,
    )
    assert created.status_code == 201

    response = await client.get(
        "/v1/call-control/sip-accounts/lan.desk",
        params={"domain": tenant.sip_domain},
        headers=tenant.call_control,
    )

    assert response.status_code == 200
    body = response.json()
    secret = f"Lan.Desk:{tenant.sip_domain}:Harbor7Blue42x".encode()
    assert body["ha1"] == hashlib.md5(secret).hexdigest()
    assert body["ha1_sha256"] == hashlib.sha256(secret).hexdigest()
    assert body["realm"] == tenant.sip_domain
    assert body["username"] == "Lan.Desk"
    assert body["enabled"] is True
    assert body["auto_answer"] is False
    assert "password" not in body


async def test_registrar_lookup_reports_disabled_device_and_user(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    devices = await client.get(f"/v1/users/{agent.id}/devices", headers=agent.tenant.admin)
    device_id = devices.json()["items"][0]["id"]
    url = f"/v1/call-control/sip-accounts/{agent.username}"
    params = {"domain": agent.domain}

    await client.patch(
        f"/v1/devices/{device_id}", json={"enabled": False}, headers=agent.tenant.admin
    )
    body = (await client.get(url, params=params, headers=agent.tenant.call_control)).json()
    assert (body["enabled"], body["device_enabled"], body["user_enabled"]) == (False, False, True)

    await client.patch(
        f"/v1/devices/{device_id}", json={"enabled": True}, headers=agent.tenant.admin
    )
    await client.patch(f"/v1/users/{agent.id}", json={"enabled": False}, headers=agent.tenant.admin)
    body = (await client.get(url, params=params, headers=agent.tenant.call_control)).json()
    assert (body["enabled"], body["device_enabled"], body["user_enabled"]) == (False, True, False)


async def test_registrar_lookup_of_unknown_account_or_foreign_domain_is_404(
    client: httpx.AsyncClient, agent: Agent, other_tenant: TenantKeys
) -> None:
    unknown = await client.get(
        "/v1/call-control/sip-accounts/nobody",
        params={"domain": agent.domain},
        headers=agent.tenant.call_control,
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"

    foreign = await client.get(
        f"/v1/call-control/sip-accounts/{agent.username}",
        params={"domain": agent.domain},
        headers=other_tenant.call_control,
    )
    assert foreign.status_code == 404
    assert "ha1" not in foreign.text


async def test_platform_call_control_key_serves_every_tenant_by_domain(
    client: httpx.AsyncClient, db: Database, agent: Agent
) -> None:
    platform_cc = await new_platform_key(db, Role.call_control)

    response = await client.get(
        f"/v1/call-control/sip-accounts/{agent.username}",
        params={"domain": agent.domain},
        headers=platform_cc,
    )

    assert response.status_code == 200
    assert response.json()["user_id"] == agent.id
    users = await client.get(
        "/v1/users", headers={**platform_cc, "X-Tenant-ID": str(agent.tenant.id)}
    )
    assert users.status_code == 403


async def test_call_control_routes_refuse_viewer_keys(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    response = await client.get(
        f"/v1/call-control/sip-accounts/{agent.username}",
        params={"domain": agent.domain},
        headers=agent.tenant.viewer,
    )
    assert response.status_code == 403


async def test_call_control_takes_the_key_as_the_password_of_http_basic(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    """Kamailio's kept connections authenticate with their user and password, not a header."""
    key = agent.tenant.call_control["Authorization"].removeprefix("Bearer ")
    path = f"/v1/call-control/sip-accounts/{agent.username}"
    found = await client.get(
        path, params={"domain": agent.domain}, auth=httpx.BasicAuth("edge", key)
    )
    assert found.status_code == 200, found.text
    assert found.json()["username"] == agent.username

    wrong = await client.get(
        path, params={"domain": agent.domain}, auth=httpx.BasicAuth("edge", key + "x")
    )
    assert wrong.status_code == 401
    malformed = await client.get(
        path, params={"domain": agent.domain}, headers={"Authorization": "Basic !!"}
    )
    assert malformed.status_code == 401
    # The rest of the API keeps to Bearer keys.
    users = await client.get("/v1/users", auth=httpx.BasicAuth("edge", key))
    assert users.status_code == 401


async def test_extension_route_rings_enabled_devices_with_auto_answer_headers_only_when_on(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    admin = agent.tenant.admin
    await client.post(f"/v1/users/{agent.id}/extensions", json={"number": "102"}, headers=admin)
    desk = await client.post(
        f"/v1/users/{agent.id}/devices",
        json={"name": "desk-102", "kind": "ip_phone"},
        headers=admin,
    )
    spare = await client.post(
        f"/v1/users/{agent.id}/devices",
        json={"name": "spare-102", "kind": "softphone"},
        headers=admin,
    )
    await client.patch(f"/v1/devices/{spare.json()['id']}", json={"enabled": False}, headers=admin)
    url = "/v1/call-control/extensions/102"

    off = await client.get(url, params={"domain": agent.domain}, headers=agent.tenant.call_control)
    assert off.status_code == 200
    assert sorted(off.json()["targets"]) == sorted([agent.username, desk.json()["name"]])
    assert off.json()["auto_answer"] is False
    assert off.json()["auto_answer_headers"] == []
    assert off.json()["auto_answer_header_block"] == ""

    await client.patch(f"/v1/users/{agent.id}/toggles", json={"auto_answer": True}, headers=admin)
    on = (
        await client.get(url, params={"domain": agent.domain}, headers=agent.tenant.call_control)
    ).json()
    assert on["auto_answer"] is True
    names = [h["name"] for h in on["auto_answer_headers"]]
    assert names == ["Call-Info", "Alert-Info"]
    assert f"Call-Info: <sip:{agent.domain}>;answer-after=0\r\n" in on["auto_answer_header_block"]


async def test_free_extension_route_is_404(client: httpx.AsyncClient, agent: Agent) -> None:
    response = await client.get(
        "/v1/call-control/extensions/555",
        params={"domain": agent.domain},
        headers=agent.tenant.call_control,
    )
    assert response.status_code == 404


async def test_concurrent_lookups_each_get_their_own_account_within_their_key_s_tenant(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    # Lookups that arrive together are answered in batches on PostgreSQL: every answer must
    # still be the account asked for, and a tenant's key must still see its own tenant only.
    agents = [
        await new_agent(client, t, display_name=f"Agent {i}")
        for t in (tenant, other_tenant)
        for i in range(3)
    ]
    platform_cc = await new_platform_key(db, Role.call_control)
    cases: list[tuple[dict[str, str], str, str, str | None]] = []
    for a in agents:
        foreign = other_tenant if a.tenant is tenant else tenant
        cases += [
            (a.tenant.call_control, a.username, a.domain, a.id),
            (platform_cc, a.username.upper(), a.domain, a.id),
            (foreign.call_control, a.username, a.domain, None),
            (a.tenant.call_control, a.username + "x", a.domain, None),
        ]
    cases *= 4

    responses = await asyncio.gather(
        *(
            client.get(
                f"/v1/call-control/sip-accounts/{username}",
                params={"domain": domain},
                headers=headers,
            )
            for headers, username, domain, _ in cases
        )
    )

    for (_, username, domain, expected), response in zip(cases, responses, strict=True):
        if expected is None:
            assert response.status_code == 404, response.text
            assert "ha1" not in response.text
        else:
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["user_id"], body["username"].lower(), body["realm"]) == (
                expected,
                username.lower(),
                domain,
            )


async def test_a_lookup_no_device_could_answer_fails_only_itself(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    # Lookups that arrive together share a statement on PostgreSQL: a NUL byte, which the
    # database cannot take, must not reach it and fail the others' lookups.
    agents = [await new_agent(client, tenant, display_name=f"Agent {i}") for i in range(3)]
    bad_names = ["x%00y", "a%0Db", "ab", "l%C3%A2n", "a%20b"]
    for _ in range(5):
        good = [
            client.get(
                f"/v1/call-control/sip-accounts/{agents[i % 3].username}",
                params={"domain": tenant.sip_domain},
                headers=tenant.call_control,
            )
            for i in range(60)
        ]
        bad = [
            client.get(
                f"/v1/call-control/sip-accounts/{name}",
                params={"domain": other_tenant.sip_domain},
                headers=other_tenant.call_control,
            )
            for name in bad_names
        ]
        responses = await asyncio.gather(*good, *bad)

        assert [r.status_code for r in responses[:60]] == [200] * 60
        assert [r.status_code for r in responses[60:]] == [404] * len(bad_names)
        assert all(
            r.json()["username"] == agents[i % 3].username for i, r in enumerate(responses[:60])
        )


async def test_lookups_sent_together_answer_each_account_by_name_within_the_key_s_tenant(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    """What an edge sends for the REGISTERs waiting on the service: one request, one answer
    per name; unknown names, other tenants' accounts and impossible names are null."""
    mine = await new_agent(client, tenant)
    disabled = await new_agent(client, tenant)
    await client.patch(f"/v1/users/{disabled.id}", json={"enabled": False}, headers=tenant.admin)
    theirs = await new_agent(client, other_tenant)
    asked = [
        {"username": mine.username.upper(), "domain": mine.domain},
        {"username": disabled.username, "domain": disabled.domain},
        {"username": "nobody", "domain": tenant.sip_domain},
        {"username": theirs.username, "domain": theirs.domain},
        {"username": "no way", "domain": tenant.sip_domain},
    ]

    answer = await client.post(
        "/v1/call-control/sip-accounts/lookups",
        json={"accounts": asked},
        headers=tenant.call_control,
    )

    assert answer.status_code == 200
    found = answer.json()["accounts"]
    assert list(found) == [f"{a['username']}@{a['domain']}" for a in asked]
    single = await client.get(
        f"/v1/call-control/sip-accounts/{mine.username}",
        params={"domain": mine.domain},
        headers=tenant.call_control,
    )
    assert found[f"{mine.username.upper()}@{mine.domain}"] == single.json()
    assert found[f"{disabled.username}@{disabled.domain}"]["enabled"] is False
    assert found[f"nobody@{tenant.sip_domain}"] is None
    assert found[f"{theirs.username}@{theirs.domain}"] is None
    assert found[f"no way@{tenant.sip_domain}"] is None


async def test_lookups_sent_together_are_bounded_and_checked(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    url = "/v1/call-control/sip-accounts/lookups"
    one = {"username": "1001", "domain": tenant.sip_domain}
    for body, field in (
        ({"accounts": []}, "accounts"),
        ({"accounts": [one] * 201}, "accounts"),
        ({"accounts": [{"username": "1001"}]}, "domain"),
        ({"accounts": [{**one, "password": "x"}]}, "password"),
    ):
        refused = await client.post(url, json=body, headers=tenant.call_control)
        assert refused.status_code == 422, body
        assert field in refused.text
    viewer = await client.post(url, json={"accounts": [one]}, headers=tenant.viewer)
    assert viewer.status_code == 403
