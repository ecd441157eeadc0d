import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI

from app.callcontrol import service
from app.callcontrol.schemas import AuthorizationRequest
from app.clock import utcnow
from tests.helpers.api import TenantKeys
from tests.helpers.callcontrol import Agent, authorize, new_agent, quota, report


async def test_unlimited_user_is_allowed_without_a_time_limit(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    answer = await authorize(client, agent, "call-1")
    assert answer["allowed"] is True
    assert answer["reason"] == "ok"
    assert answer["max_duration_seconds"] is None
    assert answer["emergency"] is False


async def test_outbound_disabled_refuses_everything_but_emergency_numbers(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    await client.patch(
        f"/v1/users/{agent.id}/toggles",
        json={"outbound_allowed": False},
        headers=agent.tenant.admin,
    )

    for i, number in enumerate(["0901234567", "19001234", "1130"]):
        refused = await authorize(client, agent, f"out-{i}", number)
        assert (refused["allowed"], refused["reason"]) == (False, "outbound_disabled")
    for number in ["113", "114", "115"]:
        emergency = await authorize(client, agent, f"sos-{number}", number)
        assert (emergency["allowed"], emergency["emergency"]) == (True, True)
        assert emergency["max_duration_seconds"] is None


async def test_disabled_device_or_user_is_refused(client: httpx.AsyncClient, agent: Agent) -> None:
    admin = agent.tenant.admin
    device_id = (await client.get(f"/v1/users/{agent.id}/devices", headers=admin)).json()["items"][
        0
    ]["id"]
    await client.patch(f"/v1/devices/{device_id}", json={"enabled": False}, headers=admin)
    assert (await authorize(client, agent, "d-1"))["reason"] == "device_disabled"

    await client.patch(f"/v1/devices/{device_id}", json={"enabled": True}, headers=admin)
    await client.patch(f"/v1/users/{agent.id}", json={"enabled": False}, headers=admin)
    assert (await authorize(client, agent, "d-2"))["reason"] == "device_disabled"


async def test_unknown_caller_is_refused(client: httpx.AsyncClient, agent: Agent) -> None:
    response = await client.post(
        "/v1/call-control/authorizations",
        json={"domain": agent.domain, "username": "ghost", "call_id": "g", "destination": "0901"},
        headers=agent.tenant.call_control,
    )
    assert response.status_code == 200
    assert (response.json()["allowed"], response.json()["reason"]) == (False, "unknown_caller")


async def test_caller_may_be_named_by_user_id(client: httpx.AsyncClient, agent: Agent) -> None:
    response = await client.post(
        "/v1/call-control/authorizations",
        json={"domain": agent.domain, "user_id": agent.id, "call_id": "u", "destination": "0901"},
        headers=agent.tenant.call_control,
    )
    assert response.status_code == 200
    assert response.json()["allowed"] is True
    both = await client.post(
        "/v1/call-control/authorizations",
        json={
            "domain": agent.domain,
            "user_id": agent.id,
            "username": agent.username,
            "call_id": "u2",
            "destination": "0901",
        },
        headers=agent.tenant.call_control,
    )
    assert both.status_code == 422


async def test_concurrent_authorizations_never_grant_more_than_what_remains(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=10)

    answers = await asyncio.gather(*(authorize(client, agent, f"race-{i}") for i in range(20)))

    granted = [a["max_duration_seconds"] for a in answers if a["allowed"]]
    assert granted, "at least one call must get through"
    assert sum(granted) <= 600
    assert all(a["reason"] == "quota_exhausted" for a in answers if not a["allowed"])
    assert (await quota(client, agent))["held_seconds"] == sum(granted)


async def test_user_at_zero_is_refused_and_a_report_frees_the_rest(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=2)

    first = await authorize(client, agent, "a")
    assert (first["allowed"], first["max_duration_seconds"]) == (True, 120)
    assert (await authorize(client, agent, "b"))["reason"] == "quota_exhausted"

    assert (
        await report(client, agent, "a", 50, started_at=utcnow().isoformat())
    ).status_code == 201
    after = await authorize(client, agent, "c")
    assert (after["allowed"], after["max_duration_seconds"]) == (True, 60)

    assert (
        await report(client, agent, "c", 60, started_at=utcnow().isoformat())
    ).status_code == 201
    assert (await authorize(client, agent, "d"))["reason"] == "quota_exhausted"
    assert (await quota(client, agent))["remaining_seconds"] == 0


async def test_an_expired_hold_frees_its_seconds(
    client: httpx.AsyncClient, app: FastAPI, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=5)
    assert (await authorize(client, agent, "lost-report"))["max_duration_seconds"] == 300

    def request(call_id: str) -> AuthorizationRequest:
        return AuthorizationRequest(
            domain=agent.domain, username=agent.username, call_id=call_id, destination="0901"
        )

    store = app.state.callcontrol_store
    now = utcnow()
    still_held = await service.authorize(
        store, request=request("soon"), tenant_id=None, now=now, hold_grace_seconds=60
    )
    assert still_held.reason == "quota_exhausted"

    later = now + timedelta(seconds=300 + 300 + 1)  # max duration + the app's grace, plus 1 s
    freed = await service.authorize(
        store, request=request("later"), tenant_id=None, now=later, hold_grace_seconds=60
    )
    assert (freed.allowed, freed.max_duration_seconds) == (True, 300)


async def test_a_repeated_call_id_gets_the_first_answer(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=3)

    first = await authorize(client, agent, "retry-me")
    await client.patch(
        f"/v1/users/{agent.id}/toggles", json={"outbound_allowed": False}, headers=tenant.admin
    )
    again = await asyncio.gather(*(authorize(client, agent, "retry-me") for _ in range(5)))

    assert first["allowed"] is True
    assert all(a == first for a in again)
    assert (await quota(client, agent))["held_seconds"] == 180


async def test_authorization_input_errors_name_the_field(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    response = await client.post(
        "/v1/call-control/authorizations",
        json={
            "domain": agent.domain,
            "username": agent.username,
            "call_id": "",
            "destination": "x",
        },
        headers=agent.tenant.call_control,
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.call_id", "body.destination"}
