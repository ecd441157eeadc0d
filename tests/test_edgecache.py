"""The SIP edges are told to drop a cached account, and its registrations, once a change that
must take effect at once commits, and only then (the edges themselves are exercised in
tests/sip)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app import edgecache
from tests.helpers.api import TenantKeys, add_device, create_user, new_tenant
from tests.helpers.receiver import Receiver, dropped, edge_calls


@pytest.fixture
async def api(pushing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=pushing_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        yield c


@pytest.fixture
async def acme(api: httpx.AsyncClient, platform: dict[str, str]) -> TenantKeys:
    return await new_tenant(api, platform, "Acme")


async def test_each_change_that_must_take_effect_at_once_drops_the_cached_accounts(
    api: httpx.AsyncClient, pushing_app: FastAPI, edge: Receiver, acme: TenantKeys
) -> None:
    domain = acme.sip_domain
    user = await create_user(api, acme.admin, display_name="Alice")
    web = user["devices"][0]["name"]
    desk = await add_device(api, acme.admin, user["id"], name="Alice.Desk")
    assert await edge_calls(pushing_app, edge) == []  # creating changes nothing cached

    rotated = await api.post(f"/v1/devices/{desk['id']}/password", json={}, headers=acme.admin)
    assert rotated.status_code == 200
    assert await edge_calls(pushing_app, edge) == dropped(f"alice.desk@{domain}")

    renamed = await api.patch(
        f"/v1/devices/{desk['id']}", json={"name": "alice-phone"}, headers=acme.admin
    )
    assert renamed.status_code == 200
    assert await edge_calls(pushing_app, edge) == dropped(f"alice.desk@{domain}")

    for enabled in (False, True):
        changed = await api.patch(
            f"/v1/devices/{desk['id']}", json={"enabled": enabled}, headers=acme.admin
        )
        assert changed.status_code == 200
    # Disabling drops it; enabling has nothing to drop (a disabled account is never cached).
    assert await edge_calls(pushing_app, edge) == dropped(f"alice-phone@{domain}")

    disabled = await api.patch(
        f"/v1/users/{user['id']}", json={"enabled": False}, headers=acme.admin
    )
    assert disabled.status_code == 200
    assert await edge_calls(pushing_app, edge) == dropped(
        f"alice-phone@{domain}", f"{web.lower()}@{domain}"
    )

    deleted = await api.delete(f"/v1/devices/{desk['id']}", headers=acme.admin)
    assert deleted.status_code == 204
    assert await edge_calls(pushing_app, edge) == dropped(f"alice-phone@{domain}")

    gone = await api.delete(f"/v1/users/{user['id']}", headers=acme.admin)
    assert gone.status_code == 204
    assert await edge_calls(pushing_app, edge) == dropped(f"{web.lower()}@{domain}")


async def test_a_new_sip_domain_or_a_deleted_tenant_drops_the_accounts_of_the_old_domain(
    api: httpx.AsyncClient,
    pushing_app: FastAPI,
    edge: Receiver,
    acme: TenantKeys,
    platform: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await create_user(api, acme.admin, display_name="Bob")
    second = await create_user(api, acme.admin, display_name="Carol")
    names = sorted(u["devices"][0]["name"].lower() for u in (first, second))
    await edge_calls(pushing_app, edge)

    moved = await api.patch(
        f"/v1/tenants/{acme.id}", json={"sip_domain": "moved.sip.test"}, headers=platform
    )
    assert moved.status_code == 200
    assert await edge_calls(pushing_app, edge) == dropped(
        *(f"{name}@{acme.sip_domain}" for name in names)
    )

    # Past FLUSH_ABOVE accounts the edge drops its whole cache in one call; usrloc has no such
    # call, so each account's contacts are removed on their own.
    monkeypatch.setattr(edgecache, "FLUSH_ABOVE", 1)
    deleted = await api.delete(f"/v1/tenants/{acme.id}", headers=platform)
    assert deleted.status_code == 204
    assert await edge_calls(pushing_app, edge) == [("htable.flush", ["acc"])] + [
        ("ul.rm", ["location", f"{name}@moved.sip.test"]) for name in names
    ]


async def test_a_change_that_fails_tells_the_edges_nothing(
    api: httpx.AsyncClient, pushing_app: FastAPI, edge: Receiver, acme: TenantKeys
) -> None:
    user = await create_user(api, acme.admin, display_name="Dan")
    device = user["devices"][0]
    taken = await add_device(api, acme.admin, user["id"], name="dan-desk")
    await edge_calls(pushing_app, edge)

    # A rename onto a taken name is refused after the edge's key was named: rolled back, unsent.
    clash = await api.patch(
        f"/v1/devices/{device['id']}", json={"name": taken["name"]}, headers=acme.admin
    )
    assert clash.status_code == 409
    stale = await api.post(
        f"/v1/devices/{device['id']}/password", json={}, headers={**acme.admin, "If-Match": '"0"'}
    )
    assert stale.status_code == 412
    assert await edge_calls(pushing_app, edge) == []


async def test_an_edge_that_fails_is_tried_again_then_given_up(
    api: httpx.AsyncClient, pushing_app: FastAPI, edge: Receiver, acme: TenantKeys
) -> None:
    user = await create_user(api, acme.admin, display_name="Erin")
    device = user["devices"][0]
    await edge_calls(pushing_app, edge)

    edge.statuses = [503, 500]
    rotated = await api.post(f"/v1/devices/{device['id']}/password", json={}, headers=acme.admin)
    assert rotated.status_code == 200
    assert [m for m, _ in await edge_calls(pushing_app, edge)] == ["htable.delete"] * 3 + ["ul.rm"]

    edge.statuses = [503] * 2 * len(edgecache._RETRY_DELAYS)
    rotated = await api.post(f"/v1/devices/{device['id']}/password", json={}, headers=acme.admin)
    assert rotated.status_code == 200
    # Four tries of each call in about a second, then the edge's own expiry bounds it.
    assert [m for m, _ in await edge_calls(pushing_app, edge)] == ["htable.delete"] * len(
        edgecache._RETRY_DELAYS
    ) + ["ul.rm"] * len(edgecache._RETRY_DELAYS)
    # The change itself stands.
    config = await api.get(f"/v1/devices/{device['id']}/config?reveal=password", headers=acme.admin)
    assert config.json()["ip_phone"]["password"] == rotated.json()["password"]


async def test_devices_an_import_takes_away_are_dropped_once_it_commits(
    api: httpx.AsyncClient, pushing_app: FastAPI, edge: Receiver, acme: TenantKeys
) -> None:
    csv = "display_name,external_ref,devices\nPhuong,emp-1,phuong.desk:ip_phone phuong.web:web\n"
    headers = {**acme.admin, "Content-Type": "text/csv"}
    created = await api.post("/v1/users/import", content=csv, headers=headers)
    assert created.status_code in (200, 201), created.text
    assert await edge_calls(pushing_app, edge) == []

    # A dry run changes nothing, so it tells the edges nothing.
    fewer = "display_name,external_ref,devices\nPhuong,emp-1,phuong.desk:ip_phone\n"
    checked = await api.post("/v1/users/import?dry_run=true", content=fewer, headers=headers)
    assert checked.status_code == 200, checked.text
    assert await edge_calls(pushing_app, edge) == []

    updated = await api.post("/v1/users/import", content=fewer, headers=headers)
    assert updated.status_code in (200, 201), updated.text
    assert await edge_calls(pushing_app, edge) == dropped(f"phuong.web@{acme.sip_domain}")
