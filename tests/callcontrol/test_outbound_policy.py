"""What an agent may call and how much: destination classes by the tenant's dial plan, the
agent's own classes, calls at once, calls a minute and the suspension they lead to, and the
`call.refused` events, on both backends."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.callcontrol import service
from app.callcontrol.schemas import AuthorizationRequest
from app.clock import utcnow
from app.db.session import Database
from app.outbox.models import Event
from tests.helpers.api import TenantKeys, add_device, db_rows
from tests.helpers.callcontrol import (
    Agent,
    authorize,
    new_agent,
    outbound_policy,
    report,
    without_call_limits,
)


@pytest.mark.parametrize(
    ("number", "destination_class", "allowed"),
    [
        ("0901234567", "mobile", True),
        ("0387654321", "mobile", True),
        ("+84901234567", "mobile", True),
        ("0084901234567", "mobile", True),
        ("02838123456", "domestic", True),
        ("0241234567", "domestic", True),
        ("18001234", "toll_free", True),
        ("1800123456", "toll_free", True),
        ("102", "internal", True),
        ("113", "emergency", True),
        ("19001234", "premium", False),
        ("1900123456", "premium", False),
        ("0044201234567", "international", False),
        ("+12025550123", "international", False),
        ("12345", "other", False),
        ("09012345678", "other", False),
    ],
)
async def test_the_default_plan_allows_domestic_mobile_and_toll_free_and_refuses_the_rest(
    client: httpx.AsyncClient, agent: Agent, number: str, destination_class: str, allowed: bool
) -> None:
    answer = await authorize(client, agent, f"plan-{number}", number)

    assert (answer["allowed"], answer["destination_class"]) == (allowed, destination_class)
    assert answer["reason"] == ("ok" if allowed else "destination_not_allowed")


async def test_the_outbound_switch_stays_above_the_classes(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    await client.patch(
        f"/v1/users/{agent.id}",
        json={"outbound_allowed": False, "extra_classes": ["premium"]},
        headers=agent.tenant.admin,
    )
    refused = await authorize(client, agent, "switch", "19001234")
    assert (refused["allowed"], refused["reason"]) == (False, "outbound_disabled")
    assert (await authorize(client, agent, "sos", "115"))["allowed"] is True


async def test_a_tenant_s_own_plan_and_classes_decide(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    plan = {
        "country_code": "84",
        "rules": [
            {"prefix": "09", "min_length": 10, "max_length": 10, "destination_class": "mobile"},
            {"prefix": "0909", "min_length": 10, "max_length": 10, "destination_class": "premium"},
        ],
    }
    policy = await outbound_policy(client, tenant, dial_plan=plan)
    assert policy["dial_plan"]["default"] is False
    agent, elsewhere = await new_agent(client, tenant), await new_agent(client, other_tenant)

    premium = await authorize(client, agent, "own-1", "0909123456")
    assert (premium["reason"], premium["destination_class"]) == (
        "destination_not_allowed",
        "premium",
    )
    assert (await authorize(client, agent, "own-2", "0912345678"))["allowed"] is True
    landline = await authorize(client, agent, "own-3", "02838123456")
    assert (landline["reason"], landline["destination_class"]) == (
        "destination_not_allowed",
        "other",
    )
    # The other tenant keeps the default plan.
    assert (await authorize(client, elsewhere, "own-4", "02838123456"))["allowed"] is True

    await outbound_policy(client, tenant, outbound_classes=["mobile", "premium"])
    assert (await authorize(client, agent, "own-5", "0909123456"))["allowed"] is True
    shown = (await client.get(f"/v1/users/{agent.id}", headers=tenant.admin)).json()
    assert shown["outbound"]["classes"] == ["mobile", "premium"]

    back = await outbound_policy(client, tenant, dial_plan=None)
    assert back["dial_plan"]["default"] is True
    assert (await authorize(client, agent, "own-6", "0909123456"))["destination_class"] == "mobile"


async def test_an_agent_may_have_more_or_fewer_classes(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    abroad, colleague = await new_agent(client, tenant), await new_agent(client, tenant)

    changed = await client.patch(
        f"/v1/users/{abroad.id}",
        json={"extra_classes": ["international"], "removed_classes": ["mobile"]},
        headers=tenant.operator,
    )
    assert changed.status_code == 200, changed.text
    outbound = changed.json()["outbound"]
    assert outbound["classes"] == [
        "emergency",
        "internal",
        "domestic",
        "toll_free",
        "international",
    ]
    assert (outbound["extra_classes"], outbound["removed_classes"]) == (
        ["international"],
        ["mobile"],
    )

    assert (await authorize(client, abroad, "x-1", "0044201234567"))["allowed"] is True
    mobile = await authorize(client, abroad, "x-2", "0901234567")
    assert (mobile["reason"], mobile["destination_class"]) == ("destination_not_allowed", "mobile")
    assert (await authorize(client, colleague, "x-3", "0044201234567"))["allowed"] is False
    assert (await authorize(client, colleague, "x-4", "0901234567"))["allowed"] is True

    # A class added again leaves the removed ones.
    again = await client.patch(
        f"/v1/users/{abroad.id}", json={"extra_classes": ["mobile"]}, headers=tenant.operator
    )
    assert again.json()["outbound"]["removed_classes"] == []
    assert (await authorize(client, abroad, "x-5", "0901234567"))["allowed"] is True


async def test_a_class_both_added_and_removed_is_refused_naming_the_field(
    client: httpx.AsyncClient, agent: Agent
) -> None:
    response = await client.patch(
        f"/v1/users/{agent.id}",
        json={"extra_classes": ["premium"], "removed_classes": ["premium"]},
        headers=agent.tenant.admin,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
    unknown = await client.patch(
        f"/v1/users/{agent.id}", json={"extra_classes": ["satellite"]}, headers=agent.tenant.admin
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "body.extra_classes.0"


async def test_calls_at_once_are_limited_and_a_slot_is_freed_by_its_report_or_its_expiry(
    client: httpx.AsyncClient, app: FastAPI, agent: Agent
) -> None:
    await client.patch(
        f"/v1/users/{agent.id}", json={"max_concurrent_calls": 2}, headers=agent.tenant.admin
    )

    first, second = await authorize(client, agent, "c-1"), await authorize(client, agent, "c-2")
    third = await authorize(client, agent, "c-3")
    assert (first["allowed"], second["allowed"]) == (True, True)
    assert (third["allowed"], third["reason"]) == (False, "too_many_calls")
    assert await authorize(client, agent, "c-3") == third  # a retry gets the same answer
    # A short number never leaves the company: it takes no slot.
    assert (await authorize(client, agent, "c-short", "150"))["allowed"] is True

    assert (
        await report(client, agent, "c-1", 30, started_at=utcnow().isoformat())
    ).status_code == 201
    assert (await authorize(client, agent, "c-4"))["allowed"] is True
    assert (await authorize(client, agent, "c-5"))["reason"] == "too_many_calls"

    # The edge never reports c-2 and c-4 (it crashed): their slots are free once they expire.
    def request(call_id: str) -> AuthorizationRequest:
        return AuthorizationRequest(
            domain=agent.domain, username=agent.username, call_id=call_id, destination="0901234567"
        )

    store, open_call = app.state.callcontrol_store, app.state.settings.open_call_seconds
    later = utcnow() + timedelta(seconds=open_call + 1)
    freed = await service.authorize(
        store,
        request=request("c-6"),
        tenant_id=None,
        now=later,
        hold_grace_seconds=60,
        open_call_seconds=open_call,
    )
    assert (freed.allowed, freed.reason) == (True, "ok")


async def test_concurrent_calls_never_exceed_the_limit(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await outbound_policy(client, tenant, max_calls_per_minute=None, max_concurrent_calls=3)
    agent = await new_agent(client, tenant)

    answers = await asyncio.gather(*(authorize(client, agent, f"burst-{i}") for i in range(12)))

    granted = [a for a in answers if a["allowed"]]
    assert len(granted) == 3
    assert {a["reason"] for a in answers if not a["allowed"]} == {"too_many_calls"}


async def test_calls_ending_while_others_are_asked_for_leave_the_count_exact(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    """Reports of ending calls and a burst of new ones, all at once: nothing fails, no more
    than the limit are open at any time, and afterwards exactly the free slots are granted."""
    await outbound_policy(client, tenant, max_calls_per_minute=None, max_concurrent_calls=3)
    agent = await new_agent(client, tenant)
    first = [await authorize(client, agent, f"first-{i}") for i in range(3)]
    assert all(a["allowed"] for a in first)

    outcomes: list[Any] = await asyncio.gather(
        *(report(client, agent, f"first-{i}", 30) for i in range(3)),
        *(authorize(client, agent, f"burst-{i}") for i in range(9)),
    )

    assert [r.status_code for r in outcomes[:3]] == [201, 201, 201]
    granted = sum(1 for a in outcomes[3:] if a["allowed"])
    assert granted <= 3
    assert {a["reason"] for a in outcomes[3:] if not a["allowed"]} <= {"too_many_calls"}
    after = [await authorize(client, agent, f"after-{i}") for i in range(4)]
    assert [a["allowed"] for a in after] == [True] * (3 - granted) + [False] * (1 + granted)


async def test_a_limited_agent_s_call_ending_while_others_are_asked_for(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    """A limited agent's calls are decided under the agent's lock while a report charges and
    frees the call before them: all are answered, and the minutes are held once."""
    agent = await new_agent(client, tenant, limit_minutes=600)
    assert (await authorize(client, agent, "held"))["allowed"] is True

    outcomes: list[Any] = await asyncio.gather(
        report(client, agent, "held", 30),
        *(authorize(client, agent, f"next-{i}") for i in range(8)),
    )

    assert outcomes[0].status_code == 201
    granted = [a for a in outcomes[1:] if a["allowed"]]
    assert len(granted) <= 1  # a granted call holds all that remains
    assert {a["reason"] for a in outcomes[1:] if not a["allowed"]} <= {"quota_exhausted"}
    assert (await authorize(client, agent, "last"))["allowed"] is (not granted)


async def test_too_many_calls_in_a_minute_suspend_the_agent_until_an_operator_lifts_it(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    await outbound_policy(client, tenant, max_calls_per_minute=3, max_concurrent_calls=None)
    agent, colleague = await new_agent(client, tenant), await new_agent(client, tenant)

    answers = [await authorize(client, agent, f"v-{i}") for i in range(4)]
    assert [a["reason"] for a in answers] == ["ok", "ok", "ok", "outbound_suspended"]
    assert (await authorize(client, agent, "v-5"))["reason"] == "outbound_suspended"
    assert (await authorize(client, agent, "v-sos", "113"))["allowed"] is True
    assert (await authorize(client, colleague, "v-other"))["allowed"] is True

    shown = (await client.get(f"/v1/users/{agent.id}", headers=tenant.viewer)).json()
    assert shown["outbound"]["suspended"] is True
    assert shown["outbound"]["suspended_at"] is not None
    suspended = await _events(db, "user.outbound_suspended")
    assert [e["user_id"] for e in suspended] == [agent.id]
    assert suspended[0]["calls_in_a_minute"] == 4

    lifted = await client.patch(
        f"/v1/users/{agent.id}", json={"outbound_suspended": False}, headers=tenant.operator
    )
    assert lifted.status_code == 200
    assert lifted.json()["outbound"] == {
        **shown["outbound"],
        "suspended": False,
        "suspended_at": None,
    }
    # The minute counts from the lift: three more calls, then suspended again.
    again = [await authorize(client, agent, f"w-{i}") for i in range(4)]
    assert [a["reason"] for a in again] == ["ok", "ok", "ok", "outbound_suspended"]
    assert len(await _events(db, "user.outbound_suspended")) == 2


async def test_refusals_make_one_event_per_agent_and_reason(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    await without_call_limits(client, tenant)
    agent, colleague = await new_agent(client, tenant), await new_agent(client, tenant)

    for i in range(3):
        await authorize(client, agent, f"p-{i}", "19001234")
    await authorize(client, colleague, "p-colleague", "19001234")
    await client.patch(
        f"/v1/users/{agent.id}/toggles", json={"outbound_allowed": False}, headers=tenant.admin
    )
    await authorize(client, agent, "off-1")
    await authorize(client, agent, "off-2")

    refused = await _events(db, "call.refused")
    assert sorted((e["user_id"], e["reason"]) for e in refused) == sorted(
        [
            (agent.id, "destination_not_allowed"),
            (colleague.id, "destination_not_allowed"),
            (agent.id, "outbound_disabled"),
        ]
    )
    premium = next(e for e in refused if e["user_id"] == agent.id and e["call_id"] == "p-0")
    assert premium["destination_class"] == "premium"


async def test_the_outbound_policy_is_the_tenant_admin_s(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    shown = await client.get("/v1/outbound-policy", headers=tenant.viewer)
    assert shown.status_code == 200
    policy = shown.json()
    assert policy["outbound_classes"] == [
        "emergency",
        "internal",
        "domestic",
        "mobile",
        "toll_free",
    ]
    assert (policy["max_concurrent_calls"], policy["max_calls_per_minute"]) == (4, 10)
    assert policy["registration_limits"] == {"web": 5, "softphone": 2, "ip_phone": 1}
    assert policy["dial_plan"]["default"] is True
    assert {r["destination_class"] for r in policy["dial_plan"]["rules"]} >= {"premium", "mobile"}

    denied = await client.patch(
        "/v1/outbound-policy", json={"max_concurrent_calls": 9}, headers=tenant.operator
    )
    assert denied.status_code == 403
    stale = await client.patch(
        "/v1/outbound-policy",
        json={"max_concurrent_calls": 9},
        headers={**tenant.admin, "If-Match": '"999"'},
    )
    assert stale.status_code == 412
    changed = await client.patch(
        "/v1/outbound-policy",
        json={"registration_limits": {"web": 3}, "max_concurrent_calls": 2},
        headers={**tenant.admin, "If-Match": shown.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["registration_limits"] == {"web": 3, "softphone": 2, "ip_phone": 1}
    assert changed.json()["max_concurrent_calls"] == 2
    elsewhere = (await client.get("/v1/outbound-policy", headers=other_tenant.admin)).json()
    assert (elsewhere["registration_limits"]["web"], elsewhere["max_concurrent_calls"]) == (5, 4)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "dial_plan": {
                    "country_code": "84",
                    "rules": [
                        {
                            "prefix": "1",
                            "min_length": 9,
                            "max_length": 4,
                            "destination_class": "premium",
                        }
                    ],
                }
            },
            "body.dial_plan.rules.0",
        ),
        (
            {
                "dial_plan": {
                    "country_code": "84",
                    "rules": [
                        {
                            "prefix": "1x",
                            "min_length": 4,
                            "max_length": 9,
                            "destination_class": "premium",
                        }
                    ],
                }
            },
            "body.dial_plan.rules.0.prefix",
        ),
        ({"outbound_classes": ["gold"]}, "body.outbound_classes.0"),
        ({"max_concurrent_calls": 0}, "body.max_concurrent_calls"),
        ({"registration_limits": {"web": None}}, "body.registration_limits.web"),
    ],
)
async def test_a_bad_policy_is_refused_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, body: dict[str, Any], field: str
) -> None:
    before = (await client.get("/v1/outbound-policy", headers=tenant.admin)).json()
    response = await client.patch("/v1/outbound-policy", json=body, headers=tenant.admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
    assert (await client.get("/v1/outbound-policy", headers=tenant.admin)).json() == before


async def _events(db: Database, type: str) -> list[dict[str, Any]]:
    rows = await db_rows(db, select(Event.data).where(Event.type == type).order_by(Event.seq))
    return [row.data for row in rows]


async def test_a_registrar_lookup_gives_the_contacts_the_device_s_kind_may_hold(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await outbound_policy(client, tenant, registration_limits={"web": 3, "ip_phone": 2})
    agent = await new_agent(client, tenant)
    desk = await add_device(client, tenant.admin, agent.id, name="desk-7", kind="ip_phone")
    soft = await add_device(client, tenant.admin, agent.id, name="soft-7", kind="softphone")

    limits = {}
    for name in (agent.username, desk["name"], soft["name"]):
        response = await client.get(
            f"/v1/call-control/sip-accounts/{name}",
            params={"domain": tenant.sip_domain},
            headers=tenant.call_control,
        )
        limits[name] = response.json()["max_contacts"]
    found = await client.post(
        "/v1/call-control/sip-accounts/lookups",
        json={"accounts": [{"username": agent.username, "domain": tenant.sip_domain}]},
        headers=tenant.call_control,
    )

    assert limits == {agent.username: 3, desk["name"]: 2, soft["name"]: 2}
    assert found.json()["accounts"][f"{agent.username}@{tenant.sip_domain}"]["max_contacts"] == 3
