"""Who may fetch a file: the tenant's provisioning credentials, from its allowed networks, for a
MAC one of its devices holds. Every attempt is recorded, and a refusal serves no file."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.clock import utcnow
from app.db.session import Database
from app.jobs.registry import run_job
from app.main import create_app
from app.outbox.models import Event
from app.provisioning.models import ProvisioningFetch, ProvisioningLink
from tests.helpers.api import TenantKeys, assert_problem, db_rows
from tests.helpers.provisioning import (
    PHONE_PASSWORD,
    YEALINK_AGENT,
    Tally,
    add_phone,
    enable_provisioning,
    fetches,
    file_path,
    key_values,
    tally,
)
from tests.helpers.settings import make_settings

OUTSIDE = "198.51.100.7"


@pytest.fixture
async def outside_client(app: FastAPI, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A phone on a network of its own."""
    transport = httpx.ASGITransport(app=app, client=(OUTSIDE, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        yield c


def refused_without_file(response: httpx.Response, status: int) -> None:
    assert_problem(response, status)
    assert PHONE_PASSWORD not in response.text
    assert "account.1" not in response.text


async def test_refusals_are_recorded_and_serve_no_file(
    client: httpx.AsyncClient,
    outside_client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
) -> None:
    await add_phone(client, tenant, model="yealink")
    await add_phone(client, other_tenant, model="yealink", mac="00:15:65:00:00:02")
    access = await enable_provisioning(client, tenant)
    other_access = await enable_provisioning(client, other_tenant)
    ours = file_path(access.files_url, "001565aabbcc.cfg")
    headers = {"User-Agent": YEALINK_AGENT}

    wrong_password = await client.get(
        ours, auth=(access.username, "Wrong7Secret42x"), headers=headers
    )
    no_credentials = await client.get(ours, headers=headers)
    others_credentials = await client.get(ours, auth=other_access.auth, headers=headers)
    unknown_mac = await client.get(
        file_path(access.files_url, "001565999999.cfg"), auth=access.auth, headers=headers
    )
    others_mac = await client.get(
        file_path(access.files_url, "001565000002.cfg"), auth=access.auth, headers=headers
    )
    unknown_file = await client.get(
        file_path(access.files_url, "boot.ini"), auth=access.auth, headers=headers
    )
    allowed = await client.patch(
        "/v1/provisioning",
        json={"allowed_networks": ["10.0.0.0/8", "127.0.0.0/8"]},
        headers=tenant.admin,
    )
    outside = await outside_client.get(ours, auth=access.auth, headers=headers)
    inside = await client.get(ours, auth=access.auth, headers=headers)

    for response in (wrong_password, no_credentials, others_credentials):
        refused_without_file(response, 401)
        assert response.headers.get_list("www-authenticate")[0].startswith("Digest ")
    for response in (unknown_mac, others_mac, unknown_file):
        refused_without_file(response, 404)
    assert allowed.status_code == 200, allowed.text
    refused_without_file(outside, 403)
    assert inside.status_code == 200
    assert key_values(inside.text)["account.1.password"] == PHONE_PASSWORD
    # Refusals of requests that proved nothing are counted; the others are one row each.
    assert tally(await fetches(client, tenant)) == [
        Tally("unauthorized", 401, "001565aabbcc", "127.0.0.1", 3),
        Tally("unknown_mac", 404, "001565999999", "127.0.0.1", 1),
        Tally("unknown_mac", 404, "001565000002", "127.0.0.1", 1),
        Tally("unknown_file", 404, None, "127.0.0.1", 1),
        Tally("address_refused", 403, "001565aabbcc", OUTSIDE, 1),
        Tally("served", 200, "001565aabbcc", "127.0.0.1", 1),
    ]
    assert all(f["user_agent"] == YEALINK_AGENT for f in await fetches(client, tenant))
    # The other tenant's record holds none of this tenant's fetches.
    assert await fetches(client, other_tenant) == []


async def test_a_tenant_without_credentials_serves_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await add_phone(client, tenant, model="yealink")
    shown = await client.get("/v1/provisioning", headers=tenant.admin)

    response = await client.get(
        f"/provision/{tenant.id}/001565aabbcc.cfg", auth=("prov-x", "anything")
    )

    assert shown.json()["enabled"] is False and shown.json()["username"] is None
    refused_without_file(response, 403)
    assert [f["outcome"] for f in await fetches(client, tenant)] == ["not_enabled"]
    unknown_tenant = await client.get(
        "/provision/6f1d1c34-5c4c-4c0e-9a57-1d1e4b7a0c11/001565aabbcc.cfg", auth=("a", "b")
    )
    refused_without_file(unknown_tenant, 404)


async def test_a_disabled_device_gets_no_file(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    phone = await add_phone(client, tenant, model="snom")
    access = await enable_provisioning(client, tenant)
    await client.patch(f"/v1/devices/{phone['id']}", json={"enabled": False}, headers=tenant.admin)

    response = await client.get(file_path(access.files_url, "001565aabbcc.xml"), auth=access.auth)

    refused_without_file(response, 404)
    assert [f["outcome"] for f in await fetches(client, tenant)] == ["device_disabled"]


async def test_a_model_fetches_only_its_own_file_name(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await add_phone(client, tenant, model="grandstream")
    access = await enable_provisioning(client, tenant)

    response = await client.get(file_path(access.files_url, "001565aabbcc.cfg"), auth=access.auth)

    refused_without_file(response, 404)


async def test_rotating_the_secret_refuses_the_old_one(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    await add_phone(client, tenant, model="yealink")
    first = await enable_provisioning(client, tenant)
    second = await enable_provisioning(client, tenant)
    path = file_path(first.files_url, "001565aabbcc.cfg")

    old = await client.get(path, auth=first.auth)
    new = await client.get(path, auth=second.auth)

    assert first.username == second.username and first.password != second.password
    refused_without_file(old, 401)
    assert new.status_code == 200
    shown = await client.get("/v1/provisioning", headers=tenant.admin)
    assert shown.json()["enabled"] is True and shown.json()["username"] == first.username
    assert first.password not in shown.text and second.password not in shown.text
    events = await db_rows(db, select(Event.type, Event.data).where(Event.tenant_id == tenant.id))
    types = [row.type for row in events]
    assert "provisioning.enabled" in types and "provisioning.credentials_rotated" in types
    assert not [
        row for row in events if first.password in str(row.data) or second.password in str(row.data)
    ]


async def test_disabling_provisioning_refuses_every_phone(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)

    deleted = await client.delete("/v1/provisioning", headers=tenant.admin)
    response = await client.get(file_path(access.files_url, "001565aabbcc.cfg"), auth=access.auth)

    assert deleted.status_code == 204
    refused_without_file(response, 403)
    assert_problem(await client.delete("/v1/provisioning", headers=tenant.admin), 409)


async def test_managing_provisioning_needs_the_tenant_admin(
    client: httpx.AsyncClient, tenant: TenantKeys, platform: dict[str, str]
) -> None:
    viewer = await client.post("/v1/provisioning/credentials", headers=tenant.viewer)
    anonymous = await client.get("/v1/provisioning")
    by_platform = await client.post(
        "/v1/provisioning/credentials", headers={**platform, "X-Tenant-ID": str(tenant.id)}
    )

    assert_problem(viewer, 403)
    assert_problem(anonymous, 401)
    assert by_platform.status_code == 200, by_platform.text
    assert by_platform.json()["files_url"] == f"http://antring.test/provision/{tenant.id}/"


async def test_allowed_networks_are_checked_and_normalized(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    before = await client.patch(
        "/v1/provisioning", json={"allowed_networks": ["10.0.0.0/8"]}, headers=tenant.admin
    )
    await enable_provisioning(client, tenant)
    bad = await client.patch(
        "/v1/provisioning",
        json={"allowed_networks": ["10.0.0.0/8", "10.0.0.300/24"]},
        headers=tenant.admin,
    )
    good = await client.patch(
        "/v1/provisioning",
        json={"allowed_networks": ["10.1.2.3/16", "2001:db8::/32"]},
        headers=tenant.admin,
    )

    assert_problem(before, 409, code="provisioning-not-enabled")
    assert_problem(bad, 422, field="body.allowed_networks.1")
    assert good.status_code == 200, good.text
    assert good.json()["allowed_networks"] == ["10.1.0.0/16", "2001:db8::/32"]


@pytest.fixture
async def strict_client(migrated_url: str, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """An app that allows two failed authentications a minute per address."""
    application = create_app(make_settings(migrated_url, auth_failure_limit="2/minute"))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("192.0.2.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            yield c


async def test_guessing_the_secret_is_slowed_down(
    strict_client: httpx.AsyncClient, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)
    path = file_path(access.files_url, "001565aabbcc.cfg")

    guesses = [
        await strict_client.get(path, auth=(access.username, f"Guess{n}Secret42x"))
        for n in range(3)
    ]
    right_too_late = await strict_client.get(path, auth=access.auth)

    assert [g.status_code for g in guesses] == [401, 401, 429]
    assert_problem(right_too_late, 429)
    assert "retry-after" in right_too_late.headers
    assert tally(await fetches(client, tenant)) == [
        Tally("unauthorized", 401, "001565aabbcc", "192.0.2.9", 2),
        Tally("throttled", 429, "001565aabbcc", "192.0.2.9", 2),
    ]


@pytest.mark.parametrize(
    "authorization",
    [
        b"Digest username=",
        b'Digest realm=, nonce="x", uri=/',
        b"Digest ",
        b'Digest username="a" realm="b"',
        b"Basic \xe9t\xe9",
        b'Digest username="a", realm="AntRing provisioning", uri="{uri}", nonce="1.\xe9", '
        b'response="0"',
    ],
)
async def test_an_unreadable_authorization_is_a_failed_authentication(
    strict_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    authorization: bytes,
) -> None:
    await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)
    path = file_path(access.files_url, "001565aabbcc.cfg")

    header = authorization.replace(b"{uri}", path.encode())
    answers = [await strict_client.get(path, headers={"Authorization": header}) for _ in range(3)]

    for answer in answers[:2]:
        refused_without_file(answer, 401)
        assert answer.headers.get_list("www-authenticate")[0].startswith("Digest ")
    refused_without_file(answers[2], 429)
    assert tally(await fetches(client, tenant)) == [
        Tally("unauthorized", 401, "001565aabbcc", "192.0.2.9", 2),
        Tally("throttled", 429, "001565aabbcc", "192.0.2.9", 1),
    ]


async def test_a_flood_of_unauthenticated_fetches_costs_a_few_rows(
    strict_client: httpx.AsyncClient,
    outside_client: httpx.AsyncClient,
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
) -> None:
    await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)
    await enable_provisioning(client, other_tenant)
    ours = file_path(access.files_url, "001565aabbcc.cfg")
    started = utcnow()

    async def unauthenticated(n: int) -> int:
        # Whatever a client makes up (file names, MACs, user agents, query strings, passwords)
        # adds no row: only its address, the outcome, a device of the tenant and the minute do.
        path = ours if n % 2 else file_path(access.files_url, f"{n:012x}.cfg")
        response = await strict_client.get(
            f"{path}?n={n}",
            headers={"User-Agent": f"Flood/{n}"},
            auth=(access.username, f"Guess{n}Secret42x") if n % 3 else None,
        )
        return response.status_code

    statuses: list[int] = []
    for first in range(0, 500, 50):
        statuses += await asyncio.gather(*(unauthenticated(n) for n in range(first, first + 50)))
    served = await outside_client.get(ours, auth=access.auth)
    minutes = int((utcnow() - started.replace(second=0, microsecond=0)).total_seconds() // 60) + 1

    assert set(statuses) == {401, 429} and served.status_code == 200
    rows = [f for f in await fetches(client, tenant) if f["client_address"] == "192.0.2.9"]
    # One row per outcome (401, 429) and device (the phone's, none) a minute: 4 a minute.
    assert len(rows) <= 4 * minutes
    assert sum(f["count"] for f in rows) == 500
    kinds = {(f["outcome"], f["device_id"] is None) for f in rows}
    assert {("throttled", True), ("throttled", False)} <= kinds
    assert {outcome for outcome, _ in kinds} == {"unauthorized", "throttled"}
    assert all(f["fetched_at"] <= f["last_fetched_at"] for f in rows)
    assert tally([f for f in await fetches(client, tenant) if f["client_address"] == OUTSIDE]) == [
        Tally("served", 200, "001565aabbcc", OUTSIDE, 1)
    ]
    assert await fetches(client, other_tenant) == []


async def test_old_fetches_and_links_are_forgotten(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    phone = await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)
    await client.get(file_path(access.files_url, "001565aabbcc.cfg"), auth=access.auth)
    await client.post(
        f"/v1/devices/{phone['id']}/provisioning-links",
        json={"app": "linphone"},
        headers=tenant.admin,
    )
    await client.get(file_path(access.files_url, "001565aabbcc.cfg"), auth=access.auth)
    long_ago = utcnow() - timedelta(days=91)
    async with db.engine.begin() as conn:
        await conn.execute(update(ProvisioningFetch).values(fetched_at=long_ago))
        await conn.execute(update(ProvisioningLink).values(expires_at=long_ago))

    assert await run_job(db, "prune-provisioning-fetches") == 3
    assert await fetches(client, tenant) == []
    assert await db_rows(db, select(ProvisioningLink.id)) == []
