import asyncio
import hashlib
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.crypto import PasswordCipher
from app.db.session import Database
from app.devices.models import Device
from app.main import create_app
from tests.helpers.api import (
    TenantKeys,
    add_device,
    assert_problem,
    create_user,
    db_get,
    db_rows,
    new_platform_key,
    new_tenant,
)
from tests.helpers.settings import TEST_SECRET_KEY, make_settings


def md5_ha1(name: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{name}:{realm}:{password}".encode()).hexdigest()


def sha256_ha1(name: str, realm: str, password: str) -> str:
    return hashlib.sha256(f"{name}:{realm}:{password}".encode()).hexdigest()


async def stored(db: Database, device_id: str) -> Device:
    device = await db_get(db, Device, device_id)
    assert device is not None
    return device


async def config(client: httpx.AsyncClient, keys: TenantKeys, device_id: str) -> dict[str, Any]:
    response = await client.get(
        f"/v1/devices/{device_id}/config?reveal=password", headers=keys.admin
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_create_device_with_a_given_password(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "Lan.Desk", "kind": "ip_phone", "password": "Blue7Harbor42x"},
        headers=tenant.admin,
    )

    assert response.status_code == 201, response.text
    device = response.json()
    assert device["name"] == "Lan.Desk"
    assert device["kind"] == "ip_phone"
    assert device["enabled"] is True
    assert device["user_id"] == user["id"]
    assert device["password"] == "Blue7Harbor42x"
    row = await stored(db, device["id"])
    assert (row.tenant_id, row.user_id, row.name, row.name_key) == (
        tenant.id,
        uuid.UUID(user["id"]),
        "Lan.Desk",
        "lan.desk",
    )
    listed = await client.get(f"/v1/users/{user['id']}/devices", headers=tenant.admin)
    assert [d["name"] for d in listed.json()["items"]] == [user["devices"][0]["name"], "Lan.Desk"]


async def test_create_device_generates_a_strong_password_when_none_is_given(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)

    first = await add_device(client, tenant.admin, user["id"], name="lan.soft")
    second = await add_device(client, tenant.admin, user["id"], name="lan.soft2")

    for password in (first["password"], second["password"]):
        assert len(password) >= 16
        assert any(c.isalpha() for c in password) and any(c.isdigit() for c in password)
        assert password.isascii() and password.isalnum()
    assert first["password"] != second["password"]
    assert (await config(client, tenant, first["id"]))["web"]["password"] == first["password"]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Short7pass", "fewer than 12 characters"),
        ("OnlyLettersHere", "no digit"),
        ("123456789012345", "no letter"),
        ("Blue7 Harbor42x", "a space"),
        ("Blue7Hárbor42x", "not ASCII"),
        ("Blue7Harbor42\x00", "a control character"),
        ("xxLAN.DESK2024xx", "contains the device name, in another case"),
        ("Blue7Harbor42x" * 10, "more than 128 characters"),
    ],
)
async def test_create_device_refuses_a_weak_password(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, password: str, reason: str
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "lan.desk", "kind": "softphone", "password": password},
        headers=tenant.admin,
    )

    body = assert_problem(response, 422, field="body.password")
    assert password not in response.text, reason
    assert body["errors"][0]["message"]
    assert await db_rows(db, select(Device.id).where(Device.name == "lan.desk")) == []


@pytest.mark.parametrize(
    "name",
    ["ab", "x" * 65, "lan desk", "lan@desk", "lân.desk", "lan/desk", "lan:desk", "", "lan\x00desk"],
)
async def test_create_device_refuses_a_bad_name(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, name: str
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": name, "kind": "softphone"},
        headers=tenant.admin,
    )

    assert_problem(response, 422, field="body.name")
    assert len(await db_rows(db, select(Device.id))) == 1


async def test_no_device_is_named_lookups(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    """`GET /v1/call-control/sip-accounts/lookups` is the batch's path, not a registrar lookup:
    an account of that name could not be looked up, so none is made."""
    user = await create_user(client, tenant.admin)
    device_id = user["devices"][0]["id"]

    named = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "LookUps", "kind": "softphone"},
        headers=tenant.admin,
    )
    renamed = await client.patch(
        f"/v1/devices/{device_id}", json={"name": "lookups"}, headers=tenant.admin
    )

    assert_problem(named, 422, field="body.name")
    assert_problem(renamed, 422, field="body.name")
    assert "lookups" not in [d.name.lower() for d in await db_rows(db, select(Device))]
    lookups = await client.get(
        "/v1/call-control/sip-accounts/lookups",
        params={"domain": tenant.sip_domain},
        headers=tenant.call_control,
    )
    assert_problem(lookups, 405)


@pytest.mark.parametrize("name", ["abc", "x" * 64, "Lan_Desk-2.web", "007", "a.b"])
async def test_create_device_accepts_names_within_the_rules(
    client: httpx.AsyncClient, tenant: TenantKeys, name: str
) -> None:
    user = await create_user(client, tenant.admin)

    device = await add_device(client, tenant.admin, user["id"], name=name)

    assert device["name"] == name


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "lan.desk", "kind": "fax"}, "body.kind"),
        ({"name": "lan.desk"}, "body.kind"),
        ({"name": "lan.desk", "kind": "WEB"}, "body.kind"),
        ({"kind": "web"}, "body.name"),
        ({"name": "lan.desk", "kind": "web", "enabled": False}, "body.enabled"),
    ],
)
async def test_create_device_validates_the_body(
    client: httpx.AsyncClient, tenant: TenantKeys, body: dict[str, Any], field: str
) -> None:
    user = await create_user(client, tenant.admin)

    response = await client.post(f"/v1/users/{user['id']}/devices", json=body, headers=tenant.admin)

    assert_problem(response, 422, field=field)


@pytest.mark.parametrize("kind", ["web", "softphone", "ip_phone"])
async def test_every_kind_can_be_created(
    client: httpx.AsyncClient, tenant: TenantKeys, kind: str
) -> None:
    user = await create_user(client, tenant.admin)

    device = await add_device(client, tenant.admin, user["id"], name=f"lan.{kind}", kind=kind)

    assert device["kind"] == kind


async def test_device_names_are_unique_per_tenant_whatever_the_case(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    lan = await create_user(client, tenant.admin)
    minh = await create_user(client, tenant.admin, display_name="Minh")
    await add_device(client, tenant.admin, lan["id"], name="Front.Desk")

    same_user = await client.post(
        f"/v1/users/{lan['id']}/devices",
        json={"name": "front.desk", "kind": "web"},
        headers=tenant.admin,
    )
    other_user = await client.post(
        f"/v1/users/{minh['id']}/devices",
        json={"name": "FRONT.DESK", "kind": "web"},
        headers=tenant.admin,
    )
    default_name = await client.post(
        f"/v1/users/{minh['id']}/devices",
        json={"name": lan["devices"][0]["name"].upper(), "kind": "web"},
        headers=tenant.admin,
    )
    stranger = await create_user(client, other_tenant.admin)
    elsewhere = await add_device(client, other_tenant.admin, stranger["id"], name="front.desk")

    body = assert_problem(same_user, 409, code="device-name-taken")
    assert "front.desk" in body["detail"]
    assert_problem(other_user, 409, code="device-name-taken")
    assert_problem(default_name, 409, code="device-name-taken")
    assert elsewhere["name"] == "front.desk"
    rows = await db_rows(db, select(Device.tenant_id).where(Device.name_key == "front.desk"))
    assert sorted(str(r.tenant_id) for r in rows) == sorted([str(tenant.id), str(other_tenant.id)])


async def test_concurrent_creates_of_one_name_give_one_device_and_one_conflict(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    lan = await create_user(client, tenant.admin)
    minh = await create_user(client, tenant.admin, display_name="Minh")

    for round in range(3):
        name = f"shared.phone{round}"
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/v1/users/{user['id']}/devices",
                    json={"name": name, "kind": "ip_phone"},
                    headers=tenant.admin,
                )
                for user in (lan, minh)
            )
        )

        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        loser = next(r for r in responses if r.status_code == 409)
        assert_problem(loser, 409, code="device-name-taken")
        rows = await db_rows(db, select(Device.id).where(Device.name_key == name))
        winner = next(r for r in responses if r.status_code == 201)
        assert [str(r.id) for r in rows] == [winner.json()["id"]]


async def test_config_shows_the_web_and_ip_phone_forms(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="Lan Nguyen")
    device = await add_device(
        client,
        tenant.admin,
        user["id"],
        name="lan.desk",
        kind="ip_phone",
        password="Blue7Harbor42x",
    )

    shown = await config(client, tenant, device["id"])

    assert shown["device_id"] == device["id"]
    assert shown["web"] == {
        "websocket_url": "wss://sip.test.example:7443/ws",
        "uri": f"sip:lan.desk@{tenant.sip_domain}",
        "sip_uri": f"sip:lan.desk@{tenant.sip_domain}",
        "authorization_user": "lan.desk",
        "password": "Blue7Harbor42x",
        "realm": tenant.sip_domain,
        "display_name": "Lan Nguyen",
        "ice_servers": [],
    }
    assert shown["ip_phone"] == {
        "registrar": tenant.sip_domain,
        "domain": tenant.sip_domain,
        "outbound_proxy": "sip.test.example",
        "transports": ["udp", "tcp", "tls"],
        "ports": {"udp": 5060, "tcp": 5060, "tls": 5061},
        "username": "lan.desk",
        "auth_id": "lan.desk",
        "password": "Blue7Harbor42x",
        "display_name": "Lan Nguyen",
    }


async def test_the_views_show_only_the_transports_the_edge_serves(
    migrated_url: str, db: Database
) -> None:
    # `db` empties the tables afterwards.
    settings = make_settings(
        migrated_url,
        sip_transports=["udp", "tcp"],
        sip_ice_servers=[
            {"urls": ["turn:turn.test.example:3478"], "username": "u", "credential": "c"}
        ],
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            platform = await new_platform_key(app.state.db)
            tenant = await new_tenant(c, platform, "Views")
            user = await create_user(c, tenant.admin)
            shown = await config(c, tenant, user["devices"][0]["id"])
    assert shown["ip_phone"]["transports"] == ["udp", "tcp"]
    assert shown["ip_phone"]["ports"] == {"udp": 5060, "tcp": 5060, "tls": None}
    # No WebSocket offered: no URL a browser would try in vain.
    assert shown["web"]["websocket_url"] is None
    assert shown["web"]["ice_servers"] == [
        {"urls": ["turn:turn.test.example:3478"], "username": "u", "credential": "c"}
    ]


async def test_the_default_device_has_a_config_with_its_generated_password(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    default = user["devices"][0]

    shown = await config(client, tenant, default["id"])

    password = shown["web"]["password"]
    assert shown["ip_phone"]["password"] == password
    assert len(password) >= 16
    row = await stored(db, default["id"])
    assert row.ha1 == md5_ha1(default["name"], tenant.sip_domain, password)


async def test_password_is_stored_encrypted_with_its_digests(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    device = await add_device(
        client, tenant.admin, user["id"], name="lan.desk", password="Blue7Harbor42x"
    )

    row = await stored(db, device["id"])

    assert row.ha1 == md5_ha1("lan.desk", tenant.sip_domain, "Blue7Harbor42x")
    assert row.ha1_sha256 == sha256_ha1("lan.desk", tenant.sip_domain, "Blue7Harbor42x")
    assert "Blue7Harbor42x" not in row.password_encrypted
    assert PasswordCipher(TEST_SECRET_KEY).decrypt(row.password_encrypted) == "Blue7Harbor42x"
    [raw] = await db_rows(db, select(Device.__table__).where(Device.name == "lan.desk"))
    assert not any("Blue7Harbor42x" in str(value) for value in raw)


async def test_rotation_returns_the_new_password_once_and_the_config_shows_it(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    device = await add_device(client, tenant.admin, user["id"], name="lan.desk")
    before = await stored(db, device["id"])

    response = await client.post(
        f"/v1/devices/{device['id']}/password", json={}, headers=tenant.admin
    )

    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["device_id"] == device["id"]
    assert rotated["password"] != device["password"]
    assert len(rotated["password"]) >= 16
    assert (await config(client, tenant, device["id"]))["web"]["password"] == rotated["password"]
    after = await stored(db, device["id"])
    assert after.ha1 == md5_ha1("lan.desk", tenant.sip_domain, rotated["password"])
    assert after.ha1_sha256 == sha256_ha1("lan.desk", tenant.sip_domain, rotated["password"])
    assert (after.ha1, after.ha1_sha256) != (before.ha1, before.ha1_sha256)
    shown = await client.get(f"/v1/devices/{device['id']}", headers=tenant.admin)
    assert rotated["password"] not in shown.text
    assert "password" not in shown.json()


async def test_rotation_to_a_chosen_password(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    device = await add_device(client, tenant.admin, user["id"], name="lan.desk")

    response = await client.post(
        f"/v1/devices/{device['id']}/password",
        json={"password": "Green8Valley31q"},
        headers=tenant.admin,
    )

    body = response.json()
    assert (body["device_id"], body["password"]) == (device["id"], "Green8Valley31q")
    # The row shows the device at its new version (a new password is a change of it).
    [shown] = [d for d in body["user"]["devices"] if d["id"] == device["id"]]
    assert shown["version"] == device["version"] + 1
    assert (await config(client, tenant, device["id"]))["ip_phone"]["password"] == "Green8Valley31q"
    row = await stored(db, device["id"])
    assert row.ha1 == md5_ha1("lan.desk", tenant.sip_domain, "Green8Valley31q")


@pytest.mark.parametrize(
    "password", ["short1A", "nodigitsatallhere", "has lan.desk 123", "xxLan.Desk99xx"]
)
async def test_rotation_refuses_a_weak_password_and_keeps_the_old_one(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, password: str
) -> None:
    user = await create_user(client, tenant.admin)
    device = await add_device(client, tenant.admin, user["id"], name="lan.desk")
    before = await stored(db, device["id"])

    response = await client.post(
        f"/v1/devices/{device['id']}/password", json={"password": password}, headers=tenant.admin
    )

    assert_problem(response, 422, field="body.password")
    assert password not in response.text
    assert (await config(client, tenant, device["id"]))["web"]["password"] == device["password"]
    assert (await stored(db, device["id"])).ha1 == before.ha1


async def test_changing_the_tenant_domain_recomputes_every_digest(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    platform: dict[str, str],
    db: Database,
) -> None:
    user = await create_user(client, tenant.admin)
    device = await add_device(
        client, tenant.admin, user["id"], name="lan.desk", password="Blue7Harbor42x"
    )
    default = user["devices"][0]
    default_password = (await config(client, tenant, default["id"]))["web"]["password"]
    stranger = await create_user(client, other_tenant.admin)
    untouched = await stored(db, stranger["devices"][0]["id"])

    response = await client.patch(
        f"/v1/tenants/{tenant.id}", json={"sip_domain": "acme-new.sip.test"}, headers=platform
    )

    assert response.status_code == 200, response.text
    assert response.json()["sip_domain"] == "acme-new.sip.test"
    row = await stored(db, device["id"])
    assert row.ha1 == md5_ha1("lan.desk", "acme-new.sip.test", "Blue7Harbor42x")
    assert row.ha1_sha256 == sha256_ha1("lan.desk", "acme-new.sip.test", "Blue7Harbor42x")
    default_row = await stored(db, default["id"])
    assert default_row.ha1 == md5_ha1(default["name"], "acme-new.sip.test", default_password)
    shown = await config(client, tenant, device["id"])
    assert shown["web"]["realm"] == "acme-new.sip.test"
    assert shown["web"]["sip_uri"] == "sip:lan.desk@acme-new.sip.test"
    assert shown["ip_phone"]["registrar"] == "acme-new.sip.test"
    assert shown["web"]["password"] == "Blue7Harbor42x"
    assert (await stored(db, stranger["devices"][0]["id"])).ha1 == untouched.ha1


async def test_rename_recomputes_the_digest_and_keeps_the_password(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    device = await add_device(
        client, tenant.admin, user["id"], name="lan.desk", password="Blue7Harbor42x"
    )

    response = await client.patch(
        f"/v1/devices/{device['id']}", json={"name": "lan.phone"}, headers=tenant.admin
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "lan.phone"
    row = await stored(db, device["id"])
    assert (row.name, row.name_key) == ("lan.phone", "lan.phone")
    assert row.ha1 == md5_ha1("lan.phone", tenant.sip_domain, "Blue7Harbor42x")
    shown = await config(client, tenant, device["id"])
    assert (shown["web"]["authorization_user"], shown["web"]["password"]) == (
        "lan.phone",
        "Blue7Harbor42x",
    )
    # The old name is free again.
    await add_device(client, tenant.admin, user["id"], name="lan.desk")


async def test_rename_refuses_a_taken_name_or_one_inside_the_password(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    await add_device(client, tenant.admin, user["id"], name="lan.desk")
    device = await add_device(
        client, tenant.admin, user["id"], name="lan.phone", password="Blue7Harbor42x"
    )

    taken = await client.patch(
        f"/v1/devices/{device['id']}", json={"name": "LAN.DESK"}, headers=tenant.admin
    )
    inside = await client.patch(
        f"/v1/devices/{device['id']}", json={"name": "harbor42"}, headers=tenant.admin
    )
    invalid = await client.patch(
        f"/v1/devices/{device['id']}", json={"name": "no spaces"}, headers=tenant.admin
    )
    null = await client.patch(
        f"/v1/devices/{device['id']}", json={"name": None}, headers=tenant.admin
    )

    assert_problem(taken, 409, code="device-name-taken")
    assert_problem(inside, 422, field="body.name")
    assert "Blue7Harbor42x" not in inside.text
    assert_problem(invalid, 422, field="body.name")
    assert_problem(null, 422, field="body.name")
    row = await stored(db, device["id"])
    assert row.name == "lan.phone"
    assert row.ha1 == md5_ha1("lan.phone", tenant.sip_domain, "Blue7Harbor42x")


async def test_update_kind_and_enabled(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    user = await create_user(client, tenant.admin)
    device = await add_device(client, tenant.admin, user["id"], name="lan.desk", kind="web")

    response = await client.patch(
        f"/v1/devices/{device['id']}",
        json={"kind": "ip_phone", "enabled": False},
        headers=tenant.admin,
    )

    assert response.status_code == 200, response.text
    assert (response.json()["kind"], response.json()["enabled"]) == ("ip_phone", False)
    row = await stored(db, device["id"])
    assert (row.kind.value, row.enabled) == ("ip_phone", False)
    assert_problem(
        await client.patch(
            f"/v1/devices/{device['id']}", json={"kind": "fax"}, headers=tenant.admin
        ),
        422,
        field="body.kind",
    )
    shown = await client.get(f"/v1/devices/{device['id']}", headers=tenant.admin)
    assert (shown.json()["kind"], shown.json()["enabled"]) == ("ip_phone", False)


async def test_delete_device(client: httpx.AsyncClient, tenant: TenantKeys, db: Database) -> None:
    user = await create_user(client, tenant.admin)
    device = await add_device(client, tenant.admin, user["id"], name="lan.desk")

    response = await client.delete(f"/v1/devices/{device['id']}", headers=tenant.admin)

    assert response.status_code == 204
    assert await db_get(db, Device, device["id"]) is None
    for path in (f"/v1/devices/{device['id']}", f"/v1/devices/{device['id']}/config"):
        assert_problem(await client.get(path, headers=tenant.admin), 404, code="device-not-found")
    assert_problem(await client.delete(f"/v1/devices/{device['id']}", headers=tenant.admin), 404)
    listed = await client.get(f"/v1/users/{user['id']}/devices", headers=tenant.admin)
    assert [d["id"] for d in listed.json()["items"]] == [user["devices"][0]["id"]]


async def test_devices_of_an_unknown_user_are_404(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    missing = uuid.uuid4()

    listed = await client.get(f"/v1/users/{missing}/devices", headers=tenant.admin)
    created = await client.post(
        f"/v1/users/{missing}/devices",
        json={"name": "lan.desk", "kind": "web"},
        headers=tenant.admin,
    )

    assert_problem(listed, 404, code="user-not-found")
    assert_problem(created, 404, code="user-not-found")
    assert await db_rows(db, select(Device.id)) == []
