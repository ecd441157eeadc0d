"""Passwords, their digests and API keys appear only where the product shows them."""

import logging
import time

import httpx
import pytest
from sqlalchemy import select

from app.db.session import Database
from app.devices.models import Device
from tests.helpers.api import TenantKeys, add_device, add_extension, create_user, db_rows


async def collect_secrets(
    client: httpx.AsyncClient, tenant: TenantKeys, platform: dict[str, str], db: Database
) -> tuple[dict[str, str], list[str]]:
    """Sets up a user with devices; returns the ids to read and every secret now in existence."""
    user = await create_user(client, tenant.admin, display_name="Lan")
    chosen = await add_device(
        client, tenant.admin, user["id"], name="lan.desk", password="Blue7Harbor42x"
    )
    generated = await add_device(client, tenant.admin, user["id"], name="lan.soft")
    rotated = await client.post(
        f"/v1/devices/{generated['id']}/password", json={}, headers=tenant.admin
    )
    await add_extension(client, tenant.admin, user["id"], "102")
    default = await client.get(
        f"/v1/devices/{user['devices'][0]['id']}/config?reveal=password", headers=tenant.admin
    )
    secrets = [
        "Blue7Harbor42x",
        generated["password"],
        rotated.json()["password"],
        default.json()["web"]["password"],
    ]
    for row in await db_rows(db, select(Device.ha1, Device.ha1_sha256, Device.password_encrypted)):
        secrets.extend(row)
    for headers in (tenant.admin, tenant.operator, tenant.viewer, tenant.call_control, platform):
        secrets.append(headers["Authorization"].removeprefix("Bearer "))
    # lan.desk's phone registered at an edge.
    reported = await client.post(
        "/v1/call-control/registrations",
        json={
            "edge": "edge-1",
            "domain": tenant.sip_domain,
            "username": "lan.desk",
            "at": time.time(),
            "contacts": [{"contact": "sip:lan.desk@10.0.0.7", "expires_at": int(time.time()) + 60}],
        },
        headers=tenant.call_control,
    )
    assert reported.status_code == 200, reported.text
    provisioning = await client.post("/v1/provisioning/credentials", headers=tenant.admin)
    secrets.append(provisioning.json()["password"])
    ids = {"user_id": user["id"], "device_id": chosen["id"], "tenant_id": str(tenant.id)}
    return ids, secrets


async def test_secrets_never_appear_in_lists_or_reads(
    client: httpx.AsyncClient, tenant: TenantKeys, platform: dict[str, str], db: Database
) -> None:
    ids, secrets = await collect_secrets(client, tenant, platform, db)

    reads = [
        ("/v1/users", tenant.admin),
        ("/v1/users?search=lan", tenant.viewer),
        ("/v1/users/{user_id}", tenant.admin),
        ("/v1/users/{user_id}/devices", tenant.admin),
        ("/v1/devices/{device_id}", tenant.admin),
        ("/v1/devices/{device_id}/config", tenant.admin),
        ("/v1/devices/{device_id}/config", tenant.operator),
        ("/v1/devices/{device_id}/config", tenant.viewer),
        ("/v1/devices/{device_id}/registrations", tenant.admin),
        ("/v1/users/{user_id}/extensions", tenant.admin),
        ("/v1/extensions/102", tenant.admin),
        ("/v1/tenants", platform),
        ("/v1/tenants/{tenant_id}", platform),
        ("/v1/tenants/{tenant_id}/api-keys", platform),
        ("/v1/provisioning", tenant.admin),
        ("/v1/provisioning/fetches", tenant.admin),
        ("/v1/devices/{device_id}/provisioning", tenant.admin),
        ("/v1/audit-events", tenant.admin),
    ]
    for path, headers in reads:
        response = await client.get(path.format(**ids), headers=headers)
        assert response.status_code == 200, path
        leaked = [s for s in secrets if s in response.text]
        assert leaked == [], path
    # Where the product does show a password, these same checks see it.
    shown = await client.get(
        f"/v1/devices/{ids['device_id']}/config?reveal=password", headers=tenant.admin
    )
    assert "Blue7Harbor42x" in shown.text
    renamed = await client.patch(
        f"/v1/devices/{ids['device_id']}", json={"name": "lan.desk2"}, headers=tenant.admin
    )
    assert renamed.status_code == 200
    assert [s for s in secrets if s in renamed.text] == []


async def test_passwords_never_appear_in_error_bodies_or_logs(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="app")
    user = await create_user(client, tenant.admin)
    device = await add_device(
        client, tenant.admin, user["id"], name="lan.desk", password="Blue7Harbor42x"
    )
    devices = f"/v1/users/{user['id']}/devices"
    attempts = [
        # Taken name, with a good password.
        ("POST", devices, {"name": "lan.desk", "kind": "web", "password": "Green8Valley31q"}),
        # Good password, bad kind.
        ("POST", devices, {"name": "lan.other", "kind": "fax", "password": "Green8Valley31q"}),
        # Bad passwords.
        ("POST", devices, {"name": "lan.other", "kind": "web", "password": "Green8Valley 31q"}),
        ("POST", devices, {"name": "lan.other", "kind": "web", "password": "xLAN.OTHERx9"}),
        ("POST", f"/v1/devices/{device['id']}/password", {"password": "Greenvalleyonly"}),
        ("POST", f"/v1/devices/{device['id']}/password", {"password": "Green8", "x": 1}),
        # A rename into the current password.
        ("PATCH", f"/v1/devices/{device['id']}", {"name": "Harbor42x"}),
    ]

    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=tenant.admin)
        assert 400 <= response.status_code < 500, response.text
        for secret in ("Green8Valley31q", "Green8Valley 31q", "xLAN.OTHERx9", "Greenvalleyonly"):
            assert secret not in response.text, (path, body)
        assert "Blue7Harbor42x" not in response.text
    broken = await client.post(
        devices,
        content=b'{"name": "lan.x", "kind": "web", "password": "Green8Valley31q"',
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    assert "Green8Valley31q" not in broken.text
    wrong_key = await client.get("/v1/users", headers={"Authorization": "Bearer ark_SECRETguess"})
    assert "ark_SECRETguess" not in wrong_key.text
    assert not any(
        s in caplog.text for s in ("Blue7Harbor42x", "Green8Valley31q", "ark_SECRETguess")
    )
