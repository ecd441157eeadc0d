"""QR codes for softphones: a one-time Linphone link, an Acrobits `csc:` code, the web view's
JSON; each decodes from the PNG a phone's camera would read."""

import base64
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import zxingcpp
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import update

from app.clock import utcnow
from app.db.session import Database
from app.main import create_app
from app.provisioning.models import ProvisioningLink
from tests.helpers.api import TenantKeys, assert_problem, db_rows, new_platform_key, new_tenant
from tests.helpers.provisioning import PHONE_PASSWORD, add_phone
from tests.helpers.settings import make_settings

LPCONFIG = "{http://www.linphone.org/xsds/lpconfig.xsd}"


def decode_png(data_uri: str) -> str:
    prefix = "data:image/png;base64,"
    assert data_uri.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(data_uri.removeprefix(prefix))))
    (found,) = zxingcpp.read_barcodes(image)
    text: str = found.text
    return text


def svg_root(data_uri: str) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert data_uri.startswith(prefix)
    return ET.fromstring(base64.b64decode(data_uri.removeprefix(prefix)))


async def make_code(
    client: httpx.AsyncClient, keys: TenantKeys, device_id: str, app: str
) -> httpx.Response:
    return await client.post(
        f"/v1/devices/{device_id}/provisioning-links", json={"app": app}, headers=keys.admin
    )


def entries(root: ET.Element, section: str) -> dict[str, str]:
    found = root.find(f"{LPCONFIG}section[@name='{section}']")
    assert found is not None, section
    return {e.attrib["name"]: e.text or "" for e in found.findall(f"{LPCONFIG}entry")}


async def test_a_linphone_code_decodes_to_a_link_that_works_once(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    phone = await add_phone(client, tenant, model="yealink", display_name='Lan "Q" & Co')

    made = await make_code(client, tenant, phone["id"], "linphone")

    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    code = made.json()
    link = decode_png(code["png"])
    assert link == code["payload"]
    assert link.startswith("http://antring.test/provision/links/")
    assert svg_root(code["svg"]).tag == "{http://www.w3.org/2000/svg}svg"
    first = await client.get(link)
    again = await client.get(link)

    assert first.status_code == 200, first.text
    root = ET.fromstring(first.content)
    assert root.tag == f"{LPCONFIG}config"
    proxy = entries(root, "proxy_0")
    assert proxy["reg_identity"] == f'"Lan \\"Q\\" & Co" <sip:lan.desk@{tenant.sip_domain}>'
    assert proxy["reg_proxy"] == "<sip:sip.test.example:5061;transport=tls>"
    assert proxy["reg_expires"] == "3600"
    auth = entries(root, "auth_info_0")
    assert (auth["username"], auth["userid"], auth["domain"]) == (
        "lan.desk",
        "lan.desk",
        tenant.sip_domain,
    )
    expected_ha1 = hashlib.md5(
        f"lan.desk:{tenant.sip_domain}:{PHONE_PASSWORD}".encode()
    ).hexdigest()
    assert auth["ha1"] == expected_ha1
    assert PHONE_PASSWORD not in first.text
    assert_problem(again, 410, code="provisioning-link-gone")
    shown = await client.get(f"/v1/devices/{phone['id']}/provisioning", headers=tenant.admin)
    assert [f["outcome"] for f in shown.json()["last_fetches"]] == ["link_used", "served"]


async def test_an_expired_link_answers_410(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    phone = await add_phone(client, tenant)
    code = (await make_code(client, tenant, phone["id"], "linphone")).json()
    async with db.engine.begin() as conn:
        await conn.execute(
            update(ProvisioningLink).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    response = await client.get(code["payload"])

    assert_problem(response, 410)
    assert PHONE_PASSWORD not in response.text
    assert_problem(await client.get("/provision/links/not-a-token"), 404)


async def test_only_a_hash_of_the_link_is_kept(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    phone = await add_phone(client, tenant)
    code = (await make_code(client, tenant, phone["id"], "linphone")).json()
    token = code["payload"].rsplit("/", 1)[1]

    (row,) = await db_rows(db, ProvisioningLink.__table__.select())

    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(tuple(row))
    expires = code["expires_at"]
    assert expires is not None


async def test_a_web_code_is_the_json_of_the_web_view(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    phone = await add_phone(client, tenant)

    made = await make_code(client, tenant, phone["id"], "web")
    view = await client.get(
        f"/v1/devices/{phone['id']}/config?reveal=password", headers=tenant.admin
    )

    assert made.status_code == 201, made.text
    code = made.json()
    assert code["expires_at"] is None
    assert json.loads(decode_png(code["png"])) == view.json()["web"]


@pytest.fixture
async def acrobits_client(migrated_url: str, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(
        make_settings(migrated_url, provisioning_acrobits_cloud_id="ANTRING")
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            yield c


async def test_an_acrobits_code_is_a_csc_code_for_the_cloud_id(
    acrobits_client: httpx.AsyncClient, client: httpx.AsyncClient, db: Database
) -> None:
    keys = await new_tenant(acrobits_client, await new_platform_key(db), "Acme")
    phone = await add_phone(acrobits_client, keys)

    made = await make_code(acrobits_client, keys, phone["id"], "acrobits")
    without_cloud_id = await make_code(client, keys, phone["id"], "acrobits")

    assert made.status_code == 201, made.text
    text = decode_png(made.json()["png"])
    scheme, credentials = text.split(":", 1)
    user, rest = credentials.rsplit("@", 1)[0].split(":", 1), credentials.rsplit("@", 1)[1]
    assert scheme == "csc" and rest == "ANTRING"
    assert unquote(user[0]) == f"lan.desk@{keys.sip_domain}"
    assert unquote(user[1]) == PHONE_PASSWORD
    assert_problem(without_cloud_id, 422, field="body.app")


async def test_codes_are_for_the_tenant_admin_and_its_own_devices(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, db: Database
) -> None:
    phone = await add_phone(client, tenant)

    viewer = await client.post(
        f"/v1/devices/{phone['id']}/provisioning-links",
        json={"app": "linphone"},
        headers=tenant.viewer,
    )
    other = await make_code(client, other_tenant, phone["id"], "linphone")
    bad_app = await make_code(client, tenant, phone["id"], "zoiper")

    assert_problem(viewer, 403)
    assert_problem(other, 404, code="device-not-found")
    assert_problem(bad_app, 422, field="body.app")
    assert await db_rows(db, ProvisioningLink.__table__.select()) == []


async def test_making_a_code_is_recorded_without_the_code(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    phone = await add_phone(client, tenant)
    code = (await make_code(client, tenant, phone["id"], "linphone")).json()

    audit = await client.get(
        "/v1/audit-events", params={"resource_id": phone["id"]}, headers=tenant.admin
    )

    assert audit.status_code == 200, audit.text
    entries: list[dict[str, Any]] = audit.json()["items"]
    assert "device.provisioning_code_created" in [e["action"] for e in entries]
    token = code["payload"].rsplit("/", 1)[1]
    assert token not in audit.text and PHONE_PASSWORD not in audit.text
