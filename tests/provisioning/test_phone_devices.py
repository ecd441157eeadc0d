"""An IP phone's MAC address and model: normalized, unique in the tenant, IP phones only."""

import httpx
import pytest

from app.db.session import Database
from app.devices.models import Device
from tests.helpers.api import TenantKeys, add_device, assert_problem, create_user, db_get


@pytest.mark.parametrize("given", ["00:15:65:AA:BB:CC", "00-15-65-aa-bb-cc", "001565aabbcc"])
async def test_a_mac_in_any_common_form_is_kept_as_12_hex_digits(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, given: str
) -> None:
    user = await create_user(client, tenant.admin)

    device = await add_device(
        client,
        tenant.admin,
        user["id"],
        name="lan.desk",
        kind="ip_phone",
        mac=given,
        model="yealink",
    )

    assert (device["mac"], device["model"]) == ("001565aabbcc", "yealink")
    row = await db_get(db, Device, device["id"])
    assert row is not None and row.mac == "001565aabbcc"
    shown = await client.get(f"/v1/devices/{device['id']}", headers=tenant.admin)
    assert shown.json()["mac"] == "001565aabbcc"


@pytest.mark.parametrize(
    "bad", ["00:15:65:AA:BB", "00:15:65:AA:BB:CG", "00:15-65:AA:BB:CC", "01:00:5e:00:00:fb", ""]
)
async def test_a_bad_mac_is_refused_naming_the_field(
    client: httpx.AsyncClient, tenant: TenantKeys, bad: str
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "lan.desk", "kind": "ip_phone", "mac": bad},
        headers=tenant.admin,
    )

    assert_problem(response, 422, field="body.mac")
    listed = await client.get(f"/v1/users/{user['id']}/devices", headers=tenant.admin)
    assert "lan.desk" not in [d["name"] for d in listed.json()["items"]]


async def test_a_mac_belongs_to_one_device_of_a_tenant(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    first = await add_device(
        client, tenant.admin, user["id"], name="lan.desk", kind="ip_phone", mac="001565aabbcc"
    )
    second = await add_device(client, tenant.admin, user["id"], name="lan.desk3", kind="ip_phone")

    taken = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "lan.desk2", "kind": "ip_phone", "mac": "00:15:65:aa:bb:cc"},
        headers=tenant.admin,
    )
    moved = await client.patch(
        f"/v1/devices/{second['id']}", json={"mac": "001565AABBCC"}, headers=tenant.admin
    )

    assert_problem(taken, 409, code="mac-address-taken")
    assert_problem(moved, 409, code="mac-address-taken")
    # Another tenant's phone may have it: the MAC is looked up in the tenant's own URL.
    other_user = await create_user(client, other_tenant.admin)
    await add_device(
        client,
        other_tenant.admin,
        other_user["id"],
        name="other.desk",
        kind="ip_phone",
        mac="001565aabbcc",
    )
    freed = await client.patch(
        f"/v1/devices/{first['id']}", json={"mac": None}, headers=tenant.admin
    )
    assert freed.status_code == 200 and freed.json()["mac"] is None
    again = await client.patch(
        f"/v1/devices/{second['id']}",
        json={"mac": "00:15:65:aa:bb:cc", "model": "polycom"},
        headers=tenant.admin,
    )
    assert again.status_code == 200, again.text
    assert (again.json()["mac"], again.json()["model"]) == ("001565aabbcc", "polycom")


async def test_only_an_ip_phone_has_a_mac_or_a_model(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    devices = f"/v1/users/{user['id']}/devices"

    softphone = await client.post(
        devices,
        json={"name": "lan.soft", "kind": "softphone", "mac": "001565aabbcc"},
        headers=tenant.admin,
    )
    web = await client.post(
        devices, json={"name": "lan.web", "kind": "web", "model": "snom"}, headers=tenant.admin
    )
    phone = await add_device(
        client,
        tenant.admin,
        user["id"],
        name="lan.desk",
        kind="ip_phone",
        mac="001565aabbcc",
        model="snom",
    )
    rekinded = await client.patch(
        f"/v1/devices/{phone['id']}", json={"kind": "softphone"}, headers=tenant.admin
    )

    assert_problem(softphone, 422, field="body.mac")
    assert_problem(web, 422, field="body.model")
    assert_problem(rekinded, 422, field="body.kind")
    row = await db_get(db, Device, phone["id"])
    assert row is not None and (row.kind, row.mac) == ("ip_phone", "001565aabbcc")
    cleared = await client.patch(
        f"/v1/devices/{phone['id']}",
        json={"kind": "softphone", "mac": None, "model": None},
        headers=tenant.admin,
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["kind"], cleared.json()["mac"]) == ("softphone", None)


async def test_an_unknown_model_is_refused(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    user = await create_user(client, tenant.admin)
    response = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "lan.desk", "kind": "ip_phone", "model": "cisco"},
        headers=tenant.admin,
    )
    assert_problem(response, 422, field="body.model")
