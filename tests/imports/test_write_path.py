"""The import makes users, devices and extensions with the functions a single request uses: a
rule added to a single create reaches the import, and an imported device signs in as a device
created alone with the same name and password does."""

import hashlib

import httpx
import pytest

from app.crypto import PasswordCipher
from app.db.session import Database
from app.devices import service as devices
from app.devices.models import Device
from app.devices.schemas import DeviceCreate
from app.errors import Code, InvalidInput
from tests.helpers.api import TenantKeys, assert_problem, create_user, db_get
from tests.helpers.imports import csv_file, post_import, stored_counts
from tests.helpers.settings import TEST_SECRET_KEY


async def test_an_imported_device_signs_in_as_one_created_alone_with_its_name_and_password(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    imported = await post_import(
        client, tenant.admin, csv_file("Lan,,emp-1,,lan.desk:softphone,,,")
    )
    assert imported.status_code == 200, imported.text
    (new,) = imported.json()["new_devices"]
    lookup_url = "/v1/call-control/sip-accounts/lan.desk"
    lookup = {"params": {"domain": tenant.sip_domain}, "headers": tenant.call_control}
    by_import = await client.get(lookup_url, **lookup)
    assert by_import.status_code == 200, by_import.text
    stored = await db_get(db, Device, new["device_id"])
    assert stored is not None
    # The same name and password again, by a single create (the import's device gone first).
    deleted = await client.delete(f"/v1/devices/{new['device_id']}", headers=tenant.admin)
    assert deleted.status_code == 204, deleted.text
    created = await client.post(
        f"/v1/users/{new['user_id']}/devices",
        json={"name": "lan.desk", "kind": "softphone", "password": new["password"]},
        headers=tenant.admin,
    )
    assert created.status_code == 201, created.text
    alone = await db_get(db, Device, created.json()["id"])
    assert alone is not None

    by_single_create = await client.get(lookup_url, **lookup)

    assert by_single_create.status_code == 200, by_single_create.text
    ids = {"device_id"}
    assert {k: v for k, v in by_import.json().items() if k not in ids} == {
        k: v for k, v in by_single_create.json().items() if k not in ids
    }
    assert (stored.ha1, stored.ha1_sha256) == (alone.ha1, alone.ha1_sha256)
    secret = f"lan.desk:{tenant.sip_domain}:{new['password']}".encode()
    assert stored.ha1 == hashlib.md5(secret).hexdigest()
    assert stored.ha1_sha256 == hashlib.sha256(secret).hexdigest()
    assert PasswordCipher(TEST_SECRET_KEY).decrypt(stored.password_encrypted) == new["password"]


async def test_a_rule_added_to_a_new_device_reaches_a_single_create_and_the_import(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = devices.check_new_device

    def with_one_more_rule(data: DeviceCreate) -> None:
        rules(data)
        if "blocked" in data.name:
            raise InvalidInput("body.name", Code.reserved_device_name, name="blocked")

    monkeypatch.setattr(devices, "check_new_device", with_one_more_rule)
    user = await create_user(client, tenant.admin)

    single = await client.post(
        f"/v1/users/{user['id']}/devices",
        json={"name": "lan.blocked", "kind": "softphone"},
        headers=tenant.admin,
    )

    assert_problem(single, 422, field="body.name")
    before = await stored_counts(db)
    body = csv_file("Hoa,,emp-2,,hoa.blocked:softphone hoa.soft:softphone,,,")
    checked = await post_import(client, tenant.admin, body, dry_run=True)
    assert checked.status_code == 200, checked.text
    problems = checked.json()["problems"]
    assert [(p["row"], p["column"], p["code"], p["params"]) for p in problems] == [
        (2, "devices", "reserved-device-name", {"name": "blocked", "item": "hoa.blocked"})
    ]
    assert problems[0]["message"] == (
        "“hoa.blocked”: The device name blocked is reserved; choose another."
    )
    imported = await post_import(client, tenant.admin, body)
    assert_problem(imported, 422, code="import-rejected")
    assert await stored_counts(db) == before
