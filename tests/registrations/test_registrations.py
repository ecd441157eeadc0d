"""Devices show whether they are online: the SIP edges report their contacts (last writer wins
per contact), contacts expire, and an operator or a change of the account ends them, at the
edges too."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.clock import utcnow
from app.db.session import Database
from app.devices.models import Device, Registration
from app.jobs.registry import JOBS
from app.outbox.models import AuditEntry, Event
from app.registrations.jobs import expire_registrations
from tests.helpers.api import (
    TenantKeys,
    add_device,
    assert_problem,
    create_user,
    db_rows,
    new_platform_key,
    new_tenant,
)
from tests.helpers.receiver import Receiver, dropped, edge_calls

REPORT = "/v1/call-control/registrations"
BATCH = "/v1/call-control/registrations/batch"
CONTACT = "sip:lan.web@10.0.0.7:5070;transport=tcp"
OTHER_CONTACT = "sip:lan.web@10.0.0.8:5060"


def account(
    keys: TenantKeys,
    username: str,
    *contacts: str,
    at: float | None = None,
    expires_in: int = 3600,
    **fields: Any,
) -> dict[str, Any]:
    """A report without its edge (a batch's item): every contact the account has, at `at`."""
    body: dict[str, Any] = {
        "domain": keys.sip_domain,
        "username": username,
        "at": time.time() if at is None else at,
        "contacts": [
            {"contact": contact, "expires_at": int(time.time()) + expires_in}
            for contact in contacts
        ],
        **fields,
    }
    return body


def snapshot(
    keys: TenantKeys, username: str, *contacts: str, edge: str = "edge-1", **fields: Any
) -> dict[str, Any]:
    return {"edge": edge, **account(keys, username, *contacts, **fields)}


async def send(client: httpx.AsyncClient, keys: TenantKeys, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(REPORT, json=body, headers=keys.call_control)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def agent(client: httpx.AsyncClient, keys: TenantKeys, name: str = "lan.web") -> Any:
    user = await create_user(client, keys.admin, display_name="Lan")
    device = await add_device(client, keys.admin, user["id"], name=name, kind="web")
    return user, device


async def registered(client: httpx.AsyncClient, keys: TenantKeys, device_id: str) -> Any:
    response = await client.get(f"/v1/devices/{device_id}", headers=keys.viewer)
    assert response.status_code == 200, response.text
    return response.json()["registered"], response.json()["contact_count"]


async def events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    rows = await db_rows(
        db,
        select(Event.type, Event.data)
        .where(Event.type.in_(["device.registered", "device.unregistered"]))
        .order_by(Event.seq),
    )
    # Who reported it (the edge's key, `data.actor`) is tests/audit/test_actor.py's concern.
    return [(row.type, {k: v for k, v in row.data.items() if k != "actor"}) for row in rows]


async def stored_rows(db: Database) -> list[Any]:
    return await db_rows(db, select(Registration).order_by(Registration.edge, Registration.contact))


async def test_a_report_makes_the_device_registered_wherever_it_is_shown(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user, device = await agent(client, tenant)
    assert (device["registered"], device["contact_count"]) == (False, 0)

    answer = await send(
        client,
        tenant,
        snapshot(
            tenant,
            "LAN.Web",  # any case, like the registrar lookup
            CONTACT,
            source={"address": "10.0.0.7", "port": 5070, "transport": "tcp"},
            user_agent="Yealink SIP-T46U 108.86.0.45",
        ),
    )

    assert answer == {"device_id": device["id"], "registered": True, "contact_count": 1}
    assert await registered(client, tenant, device["id"]) == (True, 1)
    listed = await client.get(f"/v1/users/{user['id']}/devices", headers=tenant.viewer)
    shown = {d["id"]: d for d in listed.json()["items"]}[device["id"]]
    assert (shown["registered"], shown["contact_count"]) == (True, 1)
    for path in ("/v1/users", f"/v1/users/{user['id']}"):
        response = await client.get(path, headers=tenant.viewer)
        body = response.json()
        row = body["items"][0] if "items" in body else body
        summary = {d["id"]: d for d in row["devices"]}
        assert (summary[device["id"]]["registered"], summary[device["id"]]["contact_count"]) == (
            True,
            1,
        )
        default = user["devices"][0]["id"]
        assert (summary[default]["registered"], summary[default]["contact_count"]) == (False, 0)

    contacts = await client.get(f"/v1/devices/{device['id']}/registrations", headers=tenant.viewer)
    assert contacts.status_code == 200, contacts.text
    page = contacts.json()
    assert (page["total"], page["limit"], page["offset"]) == (1, 50, 0)
    [item] = page["items"]
    assert {k: item[k] for k in ("edge", "contact", "transport", "source_address")} == {
        "edge": "edge-1",
        "contact": CONTACT,
        "transport": "tcp",
        "source_address": "10.0.0.7",
    }
    assert (item["source_port"], item["user_agent"]) == (5070, "Yealink SIP-T46U 108.86.0.45")
    for moment in ("expires_at", "registered_at", "updated_at"):
        assert item[moment].endswith("Z"), item
    assert await events(db) == [
        (
            "device.registered",
            {
                "user_id": user["id"],
                "name": "lan.web",
                "contact_count": 1,
                "edge": "edge-1",
                "reason": "reported",
            },
        )
    ]


async def test_an_empty_snapshot_or_expired_contacts_unregister(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    _, device = await agent(client, tenant)
    start = time.time() - 60

    await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, at=start))
    gone = await send(client, tenant, snapshot(tenant, "lan.web", at=start + 1))
    assert gone == {"device_id": device["id"], "registered": False, "contact_count": 0}
    assert await registered(client, tenant, device["id"]) == (False, 0)

    await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, OTHER_CONTACT, at=start + 2))
    one_left = {"edge": "edge-1", **account(tenant, "lan.web", at=start + 3)}
    del one_left["contacts"]
    one_left["expired"] = [OTHER_CONTACT, "sip:never-registered@10.0.0.9"]
    assert (await send(client, tenant, one_left))["contact_count"] == 1
    one_left.update(at=start + 4, expired=[CONTACT])
    assert (await send(client, tenant, one_left))["registered"] is False
    listed = await client.get(f"/v1/devices/{device['id']}/registrations", headers=tenant.admin)
    assert listed.json()["items"] == []

    assert [(kind, data["reason"]) for kind, data in await events(db)] == [
        ("device.registered", "reported"),
        ("device.unregistered", "reported"),
        ("device.registered", "reported"),
        ("device.unregistered", "reported"),
    ]


async def test_time_passing_the_expiry_unregisters_and_the_job_says_so_once(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    _, device = await agent(client, tenant)
    _, still = await agent(client, tenant, name="lan.desk")
    await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, OTHER_CONTACT))
    await send(client, tenant, snapshot(tenant, "lan.desk", "sip:lan.desk@10.0.0.9"))
    # One of lan.web's contacts runs out; then the other, without any report.
    async with db.engine.begin() as conn:
        await conn.execute(
            update(Registration)
            .where(Registration.contact == OTHER_CONTACT)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await registered(client, tenant, device["id"]) == (True, 1)
    assert await expire_registrations(db) == 0
    async with db.engine.begin() as conn:
        await conn.execute(
            update(Registration)
            .where(Registration.contact == CONTACT)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await registered(client, tenant, device["id"]) == (False, 0)

    assert await expire_registrations(db) == 1
    assert await expire_registrations(db) == 0
    assert await registered(client, tenant, still["id"]) == (True, 1)
    assert [(kind, data["name"], data["reason"]) for kind, data in await events(db)] == [
        ("device.registered", "lan.web", "reported"),
        ("device.registered", "lan.desk", "reported"),
        ("device.unregistered", "lan.web", "expired"),
    ]
    assert "expire-registrations" in JOBS

    # A day later the ended contacts are forgotten; a live one stays, however old.
    async with db.engine.begin() as conn:
        await conn.execute(update(Registration).values(updated_at=utcnow() - timedelta(days=2)))
    assert await expire_registrations(db) == 0
    assert [row.contact for row in await stored_rows(db)] == ["sip:lan.desk@10.0.0.9"]


async def test_a_late_report_neither_revives_nor_removes(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    _, device = await agent(client, tenant)
    t = time.time() - 100

    await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, at=t))
    # Read by the edge before the registration: it lists nothing, but it is older.
    late = await send(client, tenant, snapshot(tenant, "lan.web", at=t - 10))
    assert late == {"device_id": device["id"], "registered": True, "contact_count": 1}

    await send(client, tenant, snapshot(tenant, "lan.web", at=t + 20))
    # Read before the de-registration: it lists the contact, but it is older.
    revived = await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, at=t + 10))
    assert revived["registered"] is False
    assert await registered(client, tenant, device["id"]) == (False, 0)
    assert [kind for kind, _ in await events(db)] == ["device.registered", "device.unregistered"]


async def test_an_expiry_that_arrives_before_its_registration_still_ends_it(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    """The edge's queue holds reports in no particular order: a TCP phone that registered and
    closed its connection at once may have its expiry reported first, in one batch or two."""
    _, device = await agent(client, tenant)
    t = time.time() - 60
    expired = {"domain": tenant.sip_domain, "username": "lan.web", "at": t + 5}
    registration = account(tenant, "lan.web", CONTACT, at=t)

    response = await client.post(
        BATCH,
        json={"edge": "edge-1", "reports": [{**expired, "expired": [CONTACT]}, registration]},
        headers=tenant.call_control,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"applied": 2, "refused": []}
    assert await registered(client, tenant, device["id"]) == (False, 0)
    # Applied in the edge's order: it was online, then it was not.
    assert [kind for kind, _ in await events(db)] == ["device.registered", "device.unregistered"]

    # In two requests, the expiry first: the registration's report is older, and changes nothing.
    expired["at"] = t + 25
    await send(client, tenant, {"edge": "edge-2", **expired, "expired": [OTHER_CONTACT]})
    late = await send(
        client, tenant, {"edge": "edge-2", **account(tenant, "lan.web", OTHER_CONTACT, at=t + 20)}
    )
    assert late["registered"] is False
    assert await registered(client, tenant, device["id"]) == (False, 0)
    assert len(await events(db)) == 2


async def test_a_repeated_report_changes_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    await agent(client, tenant)
    body = snapshot(tenant, "lan.web", CONTACT, user_agent="Linphone/5.2")

    first = await send(client, tenant, body)
    before = await stored_rows(db)
    again = await send(client, tenant, body)

    assert again == first
    assert [(r.id, r.updated_at, r.seen_at) for r in await stored_rows(db)] == [
        (r.id, r.updated_at, r.seen_at) for r in before
    ]
    assert [kind for kind, _ in await events(db)] == ["device.registered"]

    # A refresh (a later report of the same contact) is no transition either.
    refreshed = await send(client, tenant, {**body, "at": body["at"] + 30})
    assert refreshed["contact_count"] == 1
    assert [kind for kind, _ in await events(db)] == ["device.registered"]


async def test_two_edges_keep_their_contacts_apart(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    _, device = await agent(client, tenant)
    t = time.time() - 30

    await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, at=t, edge="edge-1"))
    both = await send(client, tenant, snapshot(tenant, "lan.web", OTHER_CONTACT, at=t, edge="b:2"))
    assert both["contact_count"] == 2

    left = await send(client, tenant, snapshot(tenant, "lan.web", at=t + 1, edge="edge-1"))

    assert left == {"device_id": device["id"], "registered": True, "contact_count": 1}
    listed = await client.get(f"/v1/devices/{device['id']}/registrations", headers=tenant.admin)
    assert [(i["edge"], i["contact"]) for i in listed.json()["items"]] == [("b:2", OTHER_CONTACT)]
    assert [kind for kind, _ in await events(db)] == ["device.registered"]


async def test_a_contact_that_moved_to_another_edge_counts_once_where_it_is(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    _, device = await agent(client, tenant)
    t = time.time() - 30
    await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, at=t, edge="edge-a"))

    # Its edge died; the phone registered the same contact at the other edge of the cluster.
    moved = await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, at=t + 5, edge="b"))
    # A late report of the dead edge's changes nothing.
    late = await send(client, tenant, snapshot(tenant, "lan.web", CONTACT, at=t + 1, edge="edge-a"))

    assert moved["contact_count"] == late["contact_count"] == 1
    listed = await client.get(f"/v1/devices/{device['id']}/registrations", headers=tenant.admin)
    assert [(i["edge"], i["contact"]) for i in listed.json()["items"]] == [("b", CONTACT)]
    assert [kind for kind, _ in await events(db)] == ["device.registered"]


async def test_reports_of_one_device_at_once_decide_one_transition(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    _, device = await agent(client, tenant)
    bodies = [
        snapshot(tenant, "lan.web", f"sip:lan.web@10.0.0.{i}", edge=f"edge-{i}") for i in range(6)
    ]

    await asyncio.gather(*(send(client, tenant, body) for body in bodies))

    assert await registered(client, tenant, device["id"]) == (True, 6)
    assert [kind for kind, _ in await events(db)] == ["device.registered"]


def _refused_cases(keys: TenantKeys) -> list[tuple[dict[str, Any], int, str | None, str | None]]:
    """Bodies that must change nothing: (body, status, field, problem code)."""
    good = snapshot(keys, "lan.web", CONTACT)
    no_contacts = {k: v for k, v in good.items() if k != "contacts"}
    now = time.time()
    return [
        ({**good, "username": "nobody"}, 404, None, "sip-account-not-found"),
        ({**good, "domain": "nowhere.sip.test"}, 404, None, "sip-account-not-found"),
        (
            {**good, "contacts": [{"contact": CONTACT, "expires_at": int(now) - 5}]},
            422,
            "body.contacts.0.expires_at",
            "validation-error",
        ),
        (
            {**good, "at": now - 60, "contacts": [{"contact": CONTACT, "expires_at": now - 70}]},
            422,
            "body.contacts.0.expires_at",
            None,
        ),
        ({**good, "at": now + 3600}, 422, "body.at", None),
        ({**good, "at": str(int(now))}, 422, "body.at", None),
        ({**good, "at": True}, 422, "body.at", None),
        (
            {**good, "contacts": [{"contact": "tel:123", "expires_at": int(now) + 60}]},
            422,
            "body.contacts.0.contact",
            None,
        ),
        (
            {**good, "contacts": [{"contact": "http://x", "expires_at": int(now) + 60}]},
            422,
            "body.contacts.0.contact",
            None,
        ),
        (
            {**good, "contacts": [{"contact": "sip:a\x01b@x", "expires_at": int(now) + 60}]},
            422,
            "body.contacts.0.contact",
            None,
        ),
        (
            {**good, "contacts": [{"contact": "sip:a b@x", "expires_at": int(now) + 60}]},
            422,
            "body.contacts.0.contact",
            None,
        ),
        (
            {**good, "contacts": [{"contact": CONTACT, "expires_at": int(now) + 60}] * 2},
            422,
            "body.contacts.1.contact",
            None,
        ),
        ({**no_contacts, "expired": ["tel:123"]}, 422, "body.expired.0", None),
        ({**no_contacts, "expired": []}, 422, "body.expired", None),
        ({**good, "expired": [CONTACT]}, 422, "body", None),
        (no_contacts, 422, "body", None),
        ({**good, "user_agent": "Yealink\r\nX-Evil: 1"}, 422, "body.user_agent", None),
        ({**good, "edge": "edge 1"}, 422, "body.edge", None),
        (
            {**good, "source": {"address": "10.0.0.7", "port": 5070, "transport": "sctp"}},
            422,
            "body.source.transport",
            None,
        ),
        (
            {**good, "source": {"address": "phone.local", "port": 5070, "transport": "udp"}},
            422,
            "body.source.address",
            None,
        ),
        (
            {**good, "source": {"address": "10.0.0.7", "port": 0, "transport": "udp"}},
            422,
            "body.source.port",
            None,
        ),
    ]


async def test_a_wrong_report_is_a_problem_and_changes_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    await agent(client, tenant)
    await agent(client, other_tenant, name="other.web")

    for body, status, field, code in _refused_cases(tenant):
        response = await client.post(REPORT, json=body, headers=tenant.call_control)
        assert_problem(response, status, field=field, code=code)
    # Another tenant's device, with a tenant's own key: not found.
    theirs = snapshot(other_tenant, "other.web", CONTACT)
    assert_problem(
        await client.post(REPORT, json=theirs, headers=tenant.call_control),
        404,
        code="sip-account-not-found",
    )
    past = await client.post(
        REPORT,
        json={
            **snapshot(tenant, "lan.web", CONTACT),
            "contacts": [{"contact": CONTACT, "expires_at": int(time.time()) - 5}],
        },
        headers=tenant.call_control,
    )
    assert assert_problem(past, 422)["errors"][0]["code"] == "expires-at-in-past"

    assert await stored_rows(db) == []
    assert await events(db) == []


async def test_a_platform_key_reports_for_every_tenant(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    from app.auth.models import Role

    platform = await new_platform_key(db, Role.call_control)
    _, mine = await agent(client, tenant)
    _, theirs = await agent(client, other_tenant)

    for keys, device in ((tenant, mine), (other_tenant, theirs)):
        response = await client.post(
            REPORT, json=snapshot(keys, "lan.web", CONTACT), headers=platform
        )
        assert response.status_code == 200, response.text
        assert response.json()["device_id"] == device["id"]


async def test_a_batch_applies_the_good_reports_and_lists_the_refused(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    _, web = await agent(client, tenant)
    _, desk = await agent(client, tenant, name="lan.desk")
    await agent(client, other_tenant, name="other.web")
    past = account(tenant, "lan.desk", CONTACT)
    past["contacts"][0]["expires_at"] = int(time.time()) - 5
    reports = [
        account(tenant, "lan.web", CONTACT),
        account(tenant, "nobody", CONTACT),
        past,
        account(tenant, "LAN.DESK", "sip:lan.desk@10.0.0.9"),
        account(tenant, "lan.web", CONTACT, at=time.time() + 3600),
        account(other_tenant, "other.web", CONTACT),
    ]

    response = await client.post(
        BATCH, json={"edge": "edge-1", "reports": reports}, headers=tenant.call_control
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["applied"] == 2
    assert [(r["index"], r["status"], r["field"]) for r in result["refused"]] == [
        (1, 404, "reports.1.username"),
        (2, 422, "reports.2.contacts.0.expires_at"),
        (4, 422, "reports.4.at"),
        (5, 404, "reports.5.username"),
    ]
    # Each refusal is the problem the single report gets.
    for refused in result["refused"]:
        single = await client.post(
            REPORT,
            json={"edge": "edge-1", **reports[refused["index"]]},
            headers=tenant.call_control,
        )
        problem = single.json()
        assert (refused["type"], refused["title"], refused["status"]) == (
            problem["type"],
            problem["title"],
            problem["status"],
        )
        assert refused["detail"] == problem["detail"]
    assert await registered(client, tenant, web["id"]) == (True, 1)
    assert await registered(client, tenant, desk["id"]) == (True, 1)
    assert [(kind, data["name"]) for kind, data in await events(db)] == [
        ("device.registered", "lan.web"),
        ("device.registered", "lan.desk"),
    ]


async def test_a_malformed_batch_is_refused_whole(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    await agent(client, tenant)
    good = account(tenant, "lan.web", CONTACT)
    bad = account(tenant, "lan.web", "tel:123")
    cases: list[tuple[Any, str]] = [
        ({"edge": "edge-1", "reports": [good, bad]}, "body.reports.1.contacts.0.contact"),
        ({"edge": "edge-1", "reports": []}, "body.reports"),
        ({"edge": "edge-1", "reports": [good] * 501}, "body.reports"),
        ({"reports": [good]}, "body.edge"),
        ({"edge": "edge-1", "reports": [{**good, "edge": "edge-1"}]}, "body.reports.0.edge"),
    ]
    for body, field in cases:
        response = await client.post(BATCH, json=body, headers=tenant.call_control)
        assert_problem(response, 422, field=field)
    assert await stored_rows(db) == []


async def test_only_call_control_and_admin_keys_report(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    _, device = await agent(client, tenant)
    body = snapshot(tenant, "lan.web", CONTACT)

    assert_problem(await client.post(REPORT, json=body, headers=tenant.viewer), 403)
    assert_problem(await client.post(REPORT, json=body), 401)
    # Kamailio sends the key as HTTP Basic.
    key = tenant.call_control["Authorization"].removeprefix("Bearer ")
    basic = await client.post(REPORT, json=body, auth=("kamailio", key))
    assert basic.status_code == 200, basic.text
    # A call-control key uses no device route.
    for path in (f"/v1/devices/{device['id']}", f"/v1/devices/{device['id']}/registrations"):
        assert_problem(await client.get(path, headers=tenant.call_control), 403)
    ended = await client.delete(
        f"/v1/devices/{device['id']}/registrations", headers=tenant.call_control
    )
    assert_problem(ended, 403)


async def test_a_viewer_reads_registrations_but_cannot_end_them(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    _, device = await agent(client, tenant)
    await send(client, tenant, snapshot(tenant, "lan.web", CONTACT))
    url = f"/v1/devices/{device['id']}/registrations"

    assert (await client.get(url, headers=tenant.viewer)).json()["total"] == 1
    assert_problem(await client.delete(url, headers=tenant.viewer), 403)
    assert_problem(await client.get(url, headers=other_tenant.admin), 404, code="device-not-found")
    assert_problem(await client.delete(url, headers=other_tenant.admin), 404)
    assert await registered(client, tenant, device["id"]) == (True, 1)


@pytest.fixture
async def api(pushing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=pushing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        yield c


@pytest.fixture
async def acme(api: httpx.AsyncClient, platform: dict[str, str]) -> TenantKeys:
    return await new_tenant(api, platform, "Acme")


async def test_ending_registrations_tells_the_edges_and_a_late_report_cannot_revive_them(
    api: httpx.AsyncClient, pushing_app: FastAPI, edge: Receiver, acme: TenantKeys, db: Database
) -> None:
    user, device = await agent(api, acme, name="Lan.Web")
    before = time.time() - 1
    await send(api, acme, snapshot(acme, "lan.web", CONTACT, at=before))
    assert await edge_calls(pushing_app, edge) == []

    ended = await api.delete(f"/v1/devices/{device['id']}/registrations", headers=acme.admin)

    assert ended.status_code == 204, ended.text
    assert await registered(api, acme, device["id"]) == (False, 0)
    # Only the contacts go: the account's cached HA1 is still right.
    assert await edge_calls(pushing_app, edge) == [
        ("ul.rm", ["location", f"lan.web@{acme.sip_domain}"])
    ]
    assert (await events(db))[-1] == (
        "device.unregistered",
        {
            "user_id": user["id"],
            "name": "Lan.Web",
            "contact_count": 0,
            "edge": None,
            "reason": "ended",
        },
    )
    [audit] = await db_rows(
        db, select(AuditEntry).where(AuditEntry.action == "device.unregistered")
    )
    assert (audit.actor_key_name, audit.actor_role, audit.resource_id) == (
        "admin",
        "admin",
        device["id"],
    )
    # Read by the edge before the operator ended it: too late.
    late = await send(api, acme, snapshot(acme, "lan.web", CONTACT, at=before + 0.5))
    assert late["registered"] is False
    # The phone's next REGISTER.
    again = await send(api, acme, snapshot(acme, "lan.web", CONTACT))
    assert again["registered"] is True
    # Ending it again, and ending a device that is not registered, say nothing more.
    for _ in range(2):
        ended = await api.delete(f"/v1/devices/{device['id']}/registrations", headers=acme.admin)
        assert ended.status_code == 204
    assert [kind for kind, _ in await events(db)][-2:] == [
        "device.registered",
        "device.unregistered",
    ]


async def test_a_directorys_leaver_stops_registering_within_the_one_request(
    api: httpx.AsyncClient, pushing_app: FastAPI, edge: Receiver, acme: TenantKeys, db: Database
) -> None:
    """SCIM's `active: false` (a leaver in the company's directory) ends the agent's
    registrations and tells the edges, as disabling the agent on /v1 does (that the edge then
    refuses the phone's REGISTER: tests/sip/test_scim_day.py)."""
    user, device = await agent(api, acme)
    await send(api, acme, snapshot(acme, "lan.web", CONTACT))
    assert await registered(api, acme, device["id"]) == (True, 1)

    left = await api.patch(
        f"/scim/v2/Users/{user['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": False}],
        },
        headers={**acme.scim, "Content-Type": "application/scim+json"},
    )

    assert left.status_code == 200, left.text
    assert await registered(api, acme, device["id"]) == (False, 0)
    # Its phone among the agent's devices the edge forgets (the default web device too).
    told = await edge_calls(pushing_app, edge)
    assert all(call in told for call in dropped(f"lan.web@{acme.sip_domain}")), told
    assert (await events(db))[-1][1]["reason"] == "user_disabled"


async def test_a_password_rotation_or_a_disabled_user_ends_the_registrations(
    api: httpx.AsyncClient, pushing_app: FastAPI, edge: Receiver, acme: TenantKeys, db: Database
) -> None:
    user, device = await agent(api, acme)
    key = f"lan.web@{acme.sip_domain}"
    await send(api, acme, snapshot(acme, "lan.web", CONTACT))

    rotated = await api.post(f"/v1/devices/{device['id']}/password", json={}, headers=acme.admin)

    assert rotated.status_code == 200, rotated.text
    assert await registered(api, acme, device["id"]) == (False, 0)
    assert await edge_calls(pushing_app, edge) == dropped(key)
    assert [(kind, data["reason"]) for kind, data in await events(db)] == [
        ("device.registered", "reported"),
        ("device.unregistered", "password_rotated"),
    ]

    await send(api, acme, snapshot(acme, "lan.web", CONTACT))
    disabled = await api.patch(
        f"/v1/users/{user['id']}", json={"enabled": False}, headers=acme.admin
    )
    assert disabled.status_code == 200, disabled.text
    assert await registered(api, acme, device["id"]) == (False, 0)
    assert (await events(db))[-1][1]["reason"] == "user_disabled"

    # Every event of it is thin: no password, HA1 or key.
    secrets = [rotated.json()["password"]]
    for row in await db_rows(db, select(Device.ha1, Device.ha1_sha256, Device.password_encrypted)):
        secrets.extend(row)
    for headers in (acme.admin, acme.call_control):
        secrets.append(headers["Authorization"].removeprefix("Bearer "))
    for _, data in await events(db):
        assert not [s for s in secrets if s in str(data)]


async def test_a_renamed_or_disabled_device_or_a_new_domain_ends_the_registrations(
    client: httpx.AsyncClient, tenant: TenantKeys, platform: dict[str, str], db: Database
) -> None:
    _, device = await agent(client, tenant)
    url = f"/v1/devices/{device['id']}"

    await send(client, tenant, snapshot(tenant, "lan.web", CONTACT))
    renamed = await client.patch(url, json={"name": "lan.browser"}, headers=tenant.admin)
    assert (renamed.json()["registered"], renamed.json()["contact_count"]) == (False, 0)

    await send(client, tenant, snapshot(tenant, "lan.browser", CONTACT))
    disabled = await client.patch(url, json={"enabled": False}, headers=tenant.admin)
    assert disabled.json()["registered"] is False

    await client.patch(url, json={"enabled": True}, headers=tenant.admin)
    await send(client, tenant, snapshot(tenant, "lan.browser", CONTACT))
    moved = await client.patch(
        f"/v1/tenants/{tenant.id}", json={"sip_domain": "moved.sip.test"}, headers=platform
    )
    assert moved.status_code == 200, moved.text
    assert await registered(client, tenant, device["id"]) == (False, 0)

    assert [(kind, data["name"], data["reason"]) for kind, data in await events(db)] == [
        ("device.registered", "lan.web", "reported"),
        ("device.unregistered", "lan.web", "renamed"),
        ("device.registered", "lan.browser", "reported"),
        ("device.unregistered", "lan.browser", "disabled"),
        ("device.registered", "lan.browser", "reported"),
        ("device.unregistered", "lan.browser", "domain_changed"),
    ]
    # A deleted device takes its contacts with it.
    await send(
        client,
        tenant,
        {**snapshot(tenant, "lan.browser", CONTACT), "domain": "moved.sip.test"},
    )
    assert (await client.delete(url, headers=tenant.admin)).status_code == 204
    assert await stored_rows(db) == []
