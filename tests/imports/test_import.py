import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.crypto import PasswordCipher
from app.db.session import Database
from app.devices.models import Device
from app.main import create_app
from app.outbox.models import AuditEntry, Event
from tests.helpers.api import TenantKeys, add_device, add_extension, assert_problem, create_user
from tests.helpers.imports import csv_file, db_objects, jsonl_file, post_import, stored_counts
from tests.helpers.settings import TEST_SECRET_KEY, make_settings


async def users_by_ref(client: httpx.AsyncClient, tenant: TenantKeys) -> dict[str, Any]:
    listed = await client.get("/v1/users", params={"limit": 200}, headers=tenant.admin)
    assert listed.status_code == 200
    return {user["external_ref"] or user["display_name"]: user for user in listed.json()["items"]}


async def test_a_file_creates_users_with_devices_extensions_limits_and_switches(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    body = csv_file(
        "Nguyễn Thị Lan,lan@acme.vn,emp-1,101 102,"
        "lan.desk:ip_phone lan.soft:softphone,600,false,true",
        "Trần Minh,,emp-2,103,,,,",
        "Hotline,,,,,,true,true",
    )

    response = await post_import(client, tenant.admin, body)

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows_total"], report["created"], report["updated"]) == (3, 3, 0)
    assert report["problems"] == [] and report["problems_total"] == 0
    assert [(r["row"], r["action"], r["external_ref"]) for r in report["rows"]] == [
        (2, "create", "emp-1"),
        (3, "create", "emp-2"),
        (4, "create", None),
    ]
    users = await users_by_ref(client, tenant)
    lan = users["emp-1"]
    assert (lan["display_name"], lan["email"], lan["limit_minutes"]) == (
        "Nguyễn Thị Lan",
        "lan@acme.vn",
        600,
    )
    assert (lan["outbound_allowed"], lan["auto_answer"]) == (False, True)
    assert lan["extensions"] == ["101", "102"]
    assert sorted((d["name"], d["kind"]) for d in lan["devices"]) == [
        ("lan.desk", "ip_phone"),
        ("lan.soft", "softphone"),
    ]
    # Empty cells: the product's defaults, and the default device a single create gives.
    minh = users["emp-2"]
    assert (minh["email"], minh["limit_minutes"], minh["extensions"]) == (None, None, ["103"])
    assert (minh["outbound_allowed"], minh["auto_answer"]) == (True, False)
    assert [(d["kind"], d["name"][:5]) for d in minh["devices"]] == [("web", "tran-")]
    assert users["Hotline"]["external_ref"] is None

    # Each new device's generated password is in the answer, and is the one stored.
    new_devices = {d["name"]: d for d in report["new_devices"]}
    assert len(new_devices) == 4
    cipher = PasswordCipher(TEST_SECRET_KEY)
    for device in await db_objects(db, select(Device).where(Device.tenant_id == tenant.id)):
        shown = new_devices[device.name]
        password = shown["password"]
        assert len(password) == 20 and shown["device_id"] == str(device.id)
        assert cipher.decrypt(device.password_encrypted) == password
        digest = f"{device.name}:{tenant.sip_domain}:{password}".encode()
        assert device.ha1 == hashlib.md5(digest).hexdigest()
        assert device.ha1_sha256 == hashlib.sha256(digest).hexdigest()


async def test_an_import_writes_the_events_and_audit_entries_a_single_create_writes(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    single = await create_user(client, tenant.admin, display_name="Single", external_ref="s-1")
    await add_extension(client, tenant.admin, single["id"], "201")
    response = await post_import(client, tenant.admin, csv_file("Bulk,,b-1,202,,,,"))
    assert response.status_code == 200, response.text
    bulk_id = response.json()["rows"][0]["user_id"]

    def shape(rows: list[Any], user_id: str) -> list[tuple[str, list[str], list[str]]]:
        return [
            (r.type, sorted(r.data), sorted(r.data.get("changed", {})))
            for r in rows
            if r.data.get("user_id", r.resource_id) == user_id
        ]

    events = await db_objects(db, select(Event).order_by(Event.seq))
    assert shape(events, bulk_id) == shape(events, single["id"])
    assert [e.type for e in events if e.data.get("user_id", e.resource_id) == bulk_id] == [
        "user.created",
        "device.created",
        "extension.added",
    ]
    audit = await db_objects(db, select(AuditEntry).where(AuditEntry.user_id == uuid.UUID(bulk_id)))
    assert sorted(a.action for a in audit) == ["device.created", "extension.added", "user.created"]
    admin_key = (await client.get("/v1/audit-events", headers=tenant.admin)).json()["items"][0]
    assert {a.actor_key_id for a in audit} == {uuid.UUID(admin_key["actor_key_id"])}
    assert all(a.request_id == response.headers["x-request-id"] for a in audit)
    # No password in any event or audit entry.
    password = response.json()["new_devices"][0]["password"]
    stored = [str(e.data) for e in events] + [str((a.before, a.after)) for a in audit]
    assert not any(password in text for text in stored)


async def test_spreadsheet_csv_with_a_bom_and_semicolons(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    body = "\ufeff" + (
        "display_name;external_ref;extensions;devices;;\r\n"
        "Đặng Văn Hùng;emp-7;104, 105;hung.desk:ip_phone;;\r\n"
        '"Lê, Thị Hoa";emp-8;;;;\r\n'
    )

    response = await post_import(client, tenant.admin, body.encode())

    assert response.status_code == 200, response.text
    users = await users_by_ref(client, tenant)
    assert users["emp-7"]["display_name"] == "Đặng Văn Hùng"
    assert users["emp-7"]["extensions"] == ["104", "105"]
    assert users["emp-8"]["display_name"] == "Lê, Thị Hoa"


async def test_json_lines_take_values_as_a_single_request_does(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    good = {
        "display_name": "Lan",
        "external_ref": "emp-1",
        "extensions": ["101"],
        "devices": [{"name": "lan.desk", "kind": "ip_phone"}],
        "limit_minutes": 300,
        "outbound_allowed": False,
        "auto_answer": True,
    }
    response = await post_import(
        client, tenant.admin, jsonl_file(good), content_type="application/x-ndjson"
    )
    assert response.status_code == 200, response.text
    users = await users_by_ref(client, tenant)
    assert users["emp-1"]["limit_minutes"] == 300
    assert users["emp-1"]["devices"][0]["name"] == "lan.desk"

    before = await stored_counts(db)
    bad = (
        jsonl_file(
            {"display_name": "A", "outbound_allowed": "yes", "limit_minutes": "60"},
            {"display_name": "B", "extensions": "102"},
        )
        + b'{"display_name": "C", "display_name": "D"}\n[1, 2]\n{not json\n'
    )
    response = await post_import(
        client, tenant.admin, bad, dry_run=True, content_type="application/x-ndjson"
    )
    assert response.status_code == 200, response.text
    assert [(p["row"], p["column"], p["code"]) for p in response.json()["problems"]] == [
        (1, "outbound_allowed", "not-a-boolean"),
        (1, "limit_minutes", "not-a-whole-number"),
        (2, "extensions", "extension-list-form"),
        (3, "display_name", "duplicate-key"),
        (4, None, "not-an-object"),
        (5, None, "invalid-json"),
    ]
    assert response.json()["problems"][0]["message"] == "The value must be true or false."
    assert await stored_counts(db) == before


async def test_a_known_external_ref_updates_only_the_columns_given(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    lan = await create_user(
        client, tenant.admin, display_name="Lan", email="lan@acme.vn", external_ref="emp-1"
    )
    await add_extension(client, tenant.admin, lan["id"], "101")
    await add_device(client, tenant.admin, lan["id"], name="lan.soft", kind="softphone")
    await add_device(client, tenant.admin, lan["id"], name="lan.old", kind="softphone")
    default = lan["devices"][0]["name"]
    minh = await create_user(client, tenant.admin, display_name="Minh", external_ref="emp-2")
    before = await stored_counts(db)
    body = csv_file(
        f"emp-1,true,102 101,{default}:web lan.soft:ip_phone lan.new:softphone",
        "emp-2,,,",
        header="external_ref,auto_answer,extensions,devices",
    )

    response = await post_import(client, tenant.admin, body)

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 1)
    assert [(r["action"], r["user_id"]) for r in report["rows"]] == [
        ("update", lan["id"]),
        ("unchanged", minh["id"]),
    ]
    assert [d["name"] for d in report["new_devices"]] == ["lan.new"]
    users = await users_by_ref(client, tenant)
    assert users["emp-1"]["id"] == lan["id"]
    # Given: the switch, the extensions and devices as listed. Not given: kept as they were.
    assert (users["emp-1"]["auto_answer"], users["emp-1"]["email"]) == (True, "lan@acme.vn")
    assert users["emp-1"]["extensions"] == ["101", "102"]
    assert sorted((d["name"], d["kind"]) for d in users["emp-1"]["devices"]) == [
        (default, "web"),
        ("lan.new", "softphone"),
        ("lan.soft", "ip_phone"),
    ]
    minh.pop("default_device_password")
    assert users["emp-2"] == minh
    changes = [
        (row.type, row.data.get("changed"))
        for row in await db_objects(db, select(Event).order_by(Event.seq))
    ][before["event"] :]
    assert changes == [
        ("user.updated", {"auto_answer": True}),
        ("extension.added", {"number": "102", "user_id": lan["id"]}),
        ("device.deleted", None),
        ("device.updated", {"kind": "ip_phone"}),
        (
            "device.created",
            {
                "name": "lan.new",
                "kind": "softphone",
                "enabled": True,
                "user_id": lan["id"],
                "mac": None,
                "model": None,
            },
        ),
    ]


async def test_a_dry_run_says_what_would_happen_and_changes_nothing(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    existing = await create_user(client, tenant.admin, display_name="Lan", external_ref="emp-1")
    device = existing["devices"][0]["name"]
    other = await create_user(client, tenant.admin, display_name="Hoa", external_ref="emp-3")
    before = await stored_counts(db)
    body = csv_file(
        "Lan Nguyen,,emp-1,,,,,",
        "Minh,,emp-2,101,,,,",
        f"Hoa,,emp-3,,{other['devices'][0]['name']}:web hoa.desk:ip_phone,,,",
        f"Lan Nguyen,,emp-4,,{device}:web,,,",
    )

    response = await post_import(client, tenant.admin, body, dry_run=True)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True and report["new_devices"] is None
    assert (report["created"], report["updated"], report["problems_total"]) == (1, 2, 1)
    assert [(r["action"], r["user_id"]) for r in report["rows"]] == [
        ("update", existing["id"]),
        ("create", None),
        ("update", other["id"]),
    ]
    assert [(p["row"], p["code"]) for p in report["problems"]] == [(5, "device-name-taken")]
    assert await stored_counts(db) == before


async def test_who_may_import_and_export(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    platform: dict[str, str],
    db: Database,
) -> None:
    body = csv_file("Lan,,emp-1,101,,,,")
    assert_problem(await post_import(client, tenant.viewer, body), 403)
    assert_problem(await post_import(client, tenant.call_control, body), 403)
    assert_problem(await post_import(client, {}, body), 401)
    assert (await stored_counts(db))["user_account"] == 0

    # A platform key names the tenant; another tenant's import and export are its own.
    as_tenant = {**platform, "X-Tenant-ID": str(tenant.id)}
    assert (await post_import(client, as_tenant, body)).status_code == 200
    assert (await post_import(client, other_tenant.admin, body)).status_code == 200
    exported = await client.get("/v1/users/export", headers=tenant.viewer)
    assert exported.status_code == 200
    assert exported.text.count("emp-1") == 1
    assert (await client.get("/v1/users/export", headers=tenant.call_control)).status_code == 403


async def test_the_file_must_be_csv_or_json_lines(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    body = csv_file("Lan,,emp-1,101,,,,")
    response = await post_import(client, tenant.admin, body, content_type="application/json")
    assert_problem(response, 415)
    response = await post_import(client, tenant.admin, b"", content_type="text/csv")
    assert [(e["row"], e["code"]) for e in assert_problem(response, 422)["errors"]] == [
        (1, "file-empty")
    ]
    response = await post_import(client, tenant.admin, csv_file("Lan", header="name"))
    body = assert_problem(response, 422, code="import-rejected")
    assert [(e["row"], e["column"], e["field"]) for e in body["errors"]] == [
        (1, "name", "body.name"),
        (2, "display_name", "body.display_name"),
    ]
    assert (await stored_counts(db))["user_account"] == 0


@pytest.fixture
async def small_bodies(migrated_url: str, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(migrated_url, max_body_bytes=4096, import_max_bytes=64 * 1024))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            yield c


async def test_an_import_may_be_larger_than_other_bodies_up_to_its_own_limit(
    small_bodies: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    rows = [f"Agent {i},,emp-{i},,,,," for i in range(1000)]
    body = csv_file(*rows)
    assert 4096 < len(body) < 64 * 1024

    assert (await post_import(small_bodies, tenant.admin, body, dry_run=True)).status_code == 200

    too_large = csv_file(*rows, *rows, *rows)
    assert len(too_large) > 64 * 1024
    # Starlette answers a declared Content-Length over the limit itself, in plain text.
    assert (await post_import(small_bodies, tenant.admin, too_large)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(too_large), 8192):
            yield too_large[start : start + 8192]

    streamed = await small_bodies.post(
        "/v1/users/import", content=chunks(), headers={**tenant.admin, "Content-Type": "text/csv"}
    )
    assert (
        "ANTRING_IMPORT_MAX_BYTES" in assert_problem(streamed, 413, code="file-too-large")["detail"]
    )
    other = await small_bodies.post(
        "/v1/users", json={"display_name": "x" * 5000}, headers=tenant.admin
    )
    assert other.status_code == 413
    assert (await stored_counts(db))["user_account"] == 0
