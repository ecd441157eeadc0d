"""A device's SIP password is shown only by an explicit reveal, to admins and operators, and each
reveal is on the audit trail: who, when, from where. Everything else in the config views stays
visible to whoever may read the device."""

import logging

import httpx
import pytest
from sqlalchemy import select

from app.db.session import Database
from app.outbox.models import Event
from tests.helpers.api import TenantKeys, add_device, assert_problem, create_user, db_rows


@pytest.fixture
async def phone(client: httpx.AsyncClient, tenant: TenantKeys) -> dict[str, str]:
    user = await create_user(client, tenant.admin, display_name="Trần Thị Lan")
    return await add_device(
        client, tenant.admin, user["id"], name="lan.desk", password="Blue7Harbor42x"
    )


async def test_the_config_shows_everything_but_the_password_to_every_reader(
    client: httpx.AsyncClient, tenant: TenantKeys, phone: dict[str, str]
) -> None:
    for headers in (tenant.admin, tenant.operator, tenant.viewer):
        response = await client.get(f"/v1/devices/{phone['id']}/config", headers=headers)

        assert response.status_code == 200, response.text
        config = response.json()
        assert config["web"]["password"] is None
        assert config["ip_phone"]["password"] is None
        assert config["web"]["authorization_user"] == "lan.desk"
        assert config["ip_phone"]["registrar"] == "acme.sip.test"
        assert response.headers["cache-control"] == "no-store"
        assert "Blue7Harbor42x" not in response.text


async def test_admins_and_operators_reveal_the_password_viewers_may_not(
    client: httpx.AsyncClient, tenant: TenantKeys, phone: dict[str, str]
) -> None:
    path = f"/v1/devices/{phone['id']}/config?reveal=password"
    for headers in (tenant.admin, tenant.operator):
        shown = await client.get(path, headers=headers)
        assert shown.status_code == 200, shown.text
        assert shown.json()["web"]["password"] == "Blue7Harbor42x"
        assert shown.json()["ip_phone"]["password"] == "Blue7Harbor42x"

    refused = await client.get(path, headers=tenant.viewer)

    assert_problem(refused, 403, code="forbidden")
    assert "Blue7Harbor42x" not in refused.text
    assert_problem(
        await client.get(f"/v1/devices/{phone['id']}/config?reveal=ha1", headers=tenant.admin),
        422,
        field="query.reveal",
    )


async def test_each_reveal_is_audited_with_who_and_from_where_and_nothing_else_is(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    phone: dict[str, str],
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = (await client.get(f"/v1/tenants/{tenant.id}/api-keys", headers=tenant.admin)).json()
    operator_key = next(k for k in keys["items"] if k["role"] == "operator")
    events_before = await db_rows(db, select(Event.id))

    await client.get(f"/v1/devices/{phone['id']}/config", headers=tenant.operator)
    await client.get(f"/v1/devices/{phone['id']}/config?reveal=password", headers=tenant.viewer)
    shown = await client.get(
        f"/v1/devices/{phone['id']}/config?reveal=password", headers=tenant.operator
    )

    assert shown.status_code == 200
    trail = await client.get(
        "/v1/audit-events",
        params={"resource_id": phone["id"], "resource_type": "device"},
        headers=tenant.admin,
    )
    reveals = [e for e in trail.json()["items"] if e["action"] == "device.password_revealed"]
    assert len(reveals) == 1, trail.json()
    [reveal] = reveals
    assert reveal["actor"] == {
        "kind": "api_key",
        "id": operator_key["id"],
        "name": "operator",
        "email": None,
        "client_id": None,
        "role": "operator",
        # httpx's ASGI transport comes from 127.0.0.1.
        "address": "127.0.0.1",
    }
    assert reveal["user_id"] == phone["user_id"]
    assert reveal["before"] is None and reveal["after"] is None
    # A reveal is not a change: no event, so no webhook or stream carries it.
    assert await db_rows(db, select(Event.id)) == events_before
    assert "Blue7Harbor42x" not in trail.text
    assert "Blue7Harbor42x" not in caplog.text
