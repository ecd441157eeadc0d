"""A directory's day by SCIM, with the reference edge: 200 joiners, 20 changes, 10 leavers, and
the leavers' phones refused by Kamailio at their next REGISTER (sipp)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .harness import MakeTenant, Service, Sipp, SippResult

pytestmark = pytest.mark.sip

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
AGENT = "urn:antring:params:scim:schemas:extension:AntRing:2.0:Agent"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _final(result: SippResult) -> int | None:
    return result.final[0] if result.final else None


def _patch(scim: httpx.Client, user_id: str, *operations: dict[str, Any]) -> dict[str, Any]:
    r = scim.patch(f"/Users/{user_id}", json={"schemas": [PATCH], "Operations": list(operations)})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _count(scim: httpx.Client, expression: str) -> int:
    r = scim.get("/Users", params={"filter": expression, "count": 0})
    assert r.status_code == 200, r.text
    total: int = r.json()["totalResults"]
    return total


def test_a_directorys_day(make_tenant: MakeTenant, service: Service, sipp: Sipp) -> None:
    tenant = make_tenant("Directory")
    key = service.create_tenant_key(tenant.id, "scim")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/scim+json"}
    with httpx.Client(base_url=f"{service.url}/scim/v2", headers=headers, timeout=10) as scim:
        # 200 joiners.
        ids = []
        for n in range(200):
            r = scim.post(
                "/Users",
                json={
                    "schemas": [USER],
                    "userName": f"agent{n}@directory.test",
                    "externalId": f"00u{n:05d}",
                    "name": {"givenName": "Agent", "familyName": str(n)},
                    "emails": [{"value": f"agent{n}@directory.test", "primary": True}],
                    "active": True,
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        assert _count(scim, "active eq true") == 200

        # 20 changes: a new name, a minute limit.
        for n in range(20):
            changed = _patch(
                scim,
                ids[n],
                {"op": "replace", "path": "displayName", "value": f"Agent {n} (team B)"},
                {"op": "add", "path": f"{AGENT}:limitMinutes", "value": 300},
            )
            assert changed["displayName"] == f"Agent {n} (team B)"
        assert _count(scim, 'displayName co "team B"') == 20

        # The 10 who leave today have desk phones, registered with the edge.
        leavers = ids[-10:]
        phones = {
            user_id: tenant.add_device(user_id, f"desk-{i}") for i, user_id in enumerate(leavers)
        }
        stayer = tenant.add_device(ids[0], "desk-stays")
        for phone in [*phones.values(), stayer]:
            assert _final(sipp.register(phone.name, phone.password, tenant.sip_domain)) == 200

        # 10 leavers: each deactivated in one request.
        for user_id in leavers:
            assert (
                _patch(scim, user_id, {"op": "replace", "value": {"active": False}})["active"]
                is False
            )
        assert _count(scim, "active eq false") == 10

    # Their next REGISTER is refused by the edge; the others' still goes through.
    for phone in phones.values():
        result = sipp.register(phone.name, phone.password, tenant.sip_domain)
        assert _final(result) == 403, result.log
    assert _final(sipp.register(stayer.name, stayer.password, tenant.sip_domain)) == 200
    # The console sees the same: 190 agents enabled.
    r = tenant.api.get("/v1/users", params={"limit": 1})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 200
