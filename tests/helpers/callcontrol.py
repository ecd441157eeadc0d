"""A tenant's agent as the SIP platform knows it, and the call-control requests it makes."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from fastapi import FastAPI

from app.callcontrol import service
from app.callcontrol.schemas import UsageReport
from app.clock import utcnow
from app.quotas.schemas import CallOut
from tests.helpers.api import TenantKeys, create_user


@dataclass
class Agent:
    id: str
    username: str
    domain: str
    tenant: TenantKeys

    def caller(self, **fields: Any) -> dict[str, Any]:
        return {"domain": self.domain, "username": self.username, **fields}


async def new_agent(client: httpx.AsyncClient, tenant: TenantKeys, **fields: Any) -> Agent:
    user = await create_user(client, tenant.admin, **fields)
    return Agent(
        id=user["id"],
        username=user["devices"][0]["name"],
        domain=tenant.sip_domain,
        tenant=tenant,
    )


async def outbound_policy(
    client: httpx.AsyncClient, tenant: TenantKeys, **changes: Any
) -> dict[str, Any]:
    """Changes the tenant's outbound policy (its admin's route)."""
    response = await client.patch("/v1/outbound-policy", json=changes, headers=tenant.admin)
    assert response.status_code == 200, response.text
    policy: dict[str, Any] = response.json()
    return policy


async def without_call_limits(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    """No limit on an agent's calls at once or in a minute: for tests that make many."""
    await outbound_policy(client, tenant, max_concurrent_calls=None, max_calls_per_minute=None)


async def authorize(
    client: httpx.AsyncClient, agent: Agent, call_id: str, destination: str = "0901234567"
) -> dict[str, Any]:
    response = await client.post(
        "/v1/call-control/authorizations",
        json=agent.caller(call_id=call_id, destination=destination),
        headers=agent.tenant.call_control,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def report(
    client: httpx.AsyncClient,
    agent: Agent,
    call_id: str,
    duration: int,
    started_at: str | None = None,
    destination: str = "0901234567",
) -> httpx.Response:
    return await client.post(
        "/v1/call-control/usage",
        json=agent.caller(
            call_id=call_id,
            destination=destination,
            started_at=started_at or utcnow().isoformat(),
            duration_seconds=duration,
        ),
        headers=agent.tenant.call_control,
    )


async def quota(client: httpx.AsyncClient, agent: Agent) -> dict[str, Any]:
    response = await client.get(f"/v1/users/{agent.id}/quota", headers=agent.tenant.admin)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def record_at(
    app: FastAPI,
    agent: Agent,
    call_id: str,
    duration: int,
    *,
    started_at: datetime,
    now: datetime,
    late_months: int = 1,
) -> CallOut:
    """A usage report as the service takes it at `now` (a past month's calls, in tests that
    drive the calendar)."""
    report = UsageReport(
        domain=agent.domain,
        username=agent.username,
        call_id=call_id,
        destination="0901234567",
        started_at=started_at,
        duration_seconds=duration,
    )
    call, _ = await service.record_usage(
        app.state.callcontrol_store,
        report=report,
        tenant_id=None,
        now=now,
        window=service.UsageWindow(late_months=late_months, future_seconds=300),
    )
    return call
