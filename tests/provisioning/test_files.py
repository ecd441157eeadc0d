"""Each vendor family's file for a phone, parsed back: it holds the device's settings."""

import hashlib
import logging

import httpx
import pytest

from app.db.session import Database
from app.devices.models import Device
from tests.helpers.api import TenantKeys, db_get
from tests.helpers.provisioning import (
    PHONE_PASSWORD,
    YEALINK_AGENT,
    add_phone,
    enable_provisioning,
    file_path,
    key_values,
    xml_root,
)

# A display name that XML must escape, and that a key=value file must keep on one line.
AWKWARD_NAME = 'Lan & <Mai> "Q"'
DOMAIN = "acme.sip.test"
PROXY = "sip.test.example"


async def fetch(
    client: httpx.AsyncClient, url: str, auth: tuple[str, str] | httpx.Auth
) -> httpx.Response:
    return await client.get(url, auth=auth, headers={"User-Agent": YEALINK_AGENT})


async def test_yealink_gets_its_account_as_key_values(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await add_phone(client, tenant, model="yealink", display_name=AWKWARD_NAME)
    access = await enable_provisioning(client, tenant)

    response = await fetch(client, file_path(access.files_url, "001565aabbcc.cfg"), access.auth)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.text.startswith("#!version:1.0.0.1\n")
    values = key_values(response.text)
    assert values["account.1.enable"] == "1"
    assert values["account.1.user_name"] == "lan.desk"
    assert values["account.1.auth_name"] == "lan.desk"
    assert values["account.1.password"] == PHONE_PASSWORD
    assert values["account.1.display_name"] == AWKWARD_NAME
    assert values["account.1.label"] == "102"
    assert values["account.1.sip_server.1.address"] == DOMAIN
    # The edge serves TLS (the test settings' transports): the phone is told to use it.
    assert values["account.1.sip_server.1.transport_type"] == "2"
    assert values["account.1.sip_server.1.port"] == "5061"
    assert values["account.1.sip_server.1.expires"] == "3600"
    assert values["account.1.outbound_proxy_enable"] == "1"
    assert values["account.1.outbound_proxy.1.address"] == PROXY
    assert values["account.1.outbound_proxy.1.port"] == "5061"
    assert values["account.1.auto_answer"] == "1"
    assert values["account.1.codec.g722.priority"] == "1"
    assert values["account.1.codec.pcmu.priority"] == "2"
    assert values["account.1.codec.g729.enable"] == "0"


async def test_yealink_common_file_is_served_and_holds_no_account(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)

    response = await fetch(client, file_path(access.files_url, "y000000000066.cfg"), access.auth)

    assert response.status_code == 200, response.text
    assert response.text.startswith("#!version:1.0.0.1\n")
    assert not [k for k in key_values(response.text) if k.startswith("account.")]
    assert PHONE_PASSWORD not in response.text


async def test_grandstream_gets_its_p_values(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    await add_phone(client, tenant, model="grandstream", display_name=AWKWARD_NAME)
    access = await enable_provisioning(client, tenant)

    response = await fetch(client, file_path(access.files_url, "cfg001565aabbcc.xml"), access.auth)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = xml_root(response.text)
    assert root.tag == "gs_provision"
    p = {element.tag: element.text or "" for element in root.find("config") or []}
    assert p["P35"] == p["P36"] == "lan.desk"
    assert p["P34"] == PHONE_PASSWORD
    assert p["P3"] == AWKWARD_NAME
    assert p["P270"] == "102"
    assert p["P47"] == f"{DOMAIN}:5061"
    assert p["P48"] == f"{PROXY}:5061"
    assert p["P130"] == "2"
    assert p["P32"] == "60"  # minutes
    assert p["P90"] == "1"
    assert [p[k] for k in ("P57", "P58", "P59")] == ["9", "0", "8"]


async def test_polycom_gets_reg_1_attributes(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    await add_phone(client, tenant, model="polycom", display_name=AWKWARD_NAME, auto_answer=False)
    access = await enable_provisioning(client, tenant)

    response = await fetch(client, file_path(access.files_url, "001565AABBCC.cfg"), access.auth)

    assert response.status_code == 200, response.text
    root = xml_root(response.text)
    attributes: dict[str, str] = {}
    for element in root:
        attributes.update(element.attrib)
    assert attributes["reg.1.address"] == f"lan.desk@{DOMAIN}"
    assert attributes["reg.1.auth.userId"] == "lan.desk"
    assert attributes["reg.1.auth.password"] == PHONE_PASSWORD
    assert attributes["reg.1.displayName"] == AWKWARD_NAME
    assert attributes["reg.1.label"] == "102"
    assert attributes["reg.1.server.1.address"] == DOMAIN
    assert attributes["reg.1.server.1.port"] == "5061"
    assert attributes["reg.1.server.1.transport"] == "TLS"
    assert attributes["reg.1.server.1.expires"] == "3600"
    assert attributes["reg.1.outboundProxy.address"] == PROXY
    assert attributes["call.autoAnswer.SIP"] == "0"
    assert attributes["voice.codecPref.G722"] == "1"
    assert attributes["voice.codecPref.G729_AB"] == "0"


async def test_fanvil_gets_its_line(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    await add_phone(client, tenant, model="fanvil", display_name=AWKWARD_NAME)
    access = await enable_provisioning(client, tenant)

    response = await fetch(client, file_path(access.files_url, "001565aabbcc.cfg"), access.auth)

    assert response.status_code == 200, response.text
    line = xml_root(response.text).find("sip/line[@index='1']")
    assert line is not None
    values = {element.tag: element.text or "" for element in line}
    assert values["PhoneNumber"] == values["RegisterUser"] == "lan.desk"
    assert values["RegisterPswd"] == PHONE_PASSWORD
    assert values["DisplayName"] == AWKWARD_NAME
    assert values["RegisterAddr"] == DOMAIN
    assert values["ProxyAddr"] == PROXY
    assert values["RegisterPort"] == values["ProxyPort"] == "5061"
    assert values["Transport"] == "3"
    assert values["RegisterTTL"] == "3600"
    assert values["AutoAnswer"] == "1"
    assert values["VoiceCodecMap"] == "G722,PCMU,PCMA"


async def test_snom_gets_its_identity(client: httpx.AsyncClient, tenant: TenantKeys) -> None:
    await add_phone(client, tenant, model="snom", display_name=AWKWARD_NAME)
    access = await enable_provisioning(client, tenant)

    response = await fetch(client, file_path(access.files_url, "001565aabbcc.xml"), access.auth)

    assert response.status_code == 200, response.text
    settings = xml_root(response.text).find("phone-settings")
    assert settings is not None
    values = {element.tag: element.text or "" for element in settings}
    assert values["user_name"] == values["user_pname"] == "lan.desk"
    assert values["user_pass"] == PHONE_PASSWORD
    assert values["user_realname"] == AWKWARD_NAME
    assert values["user_idle_text"] == "102"
    assert values["user_host"] == DOMAIN
    assert values["user_outbound"] == f"{PROXY}:5061;transport=tls"
    assert values["user_expiry"] == "3600"
    assert values["user_auto_connect"] == "on"
    assert values["codec_priority_list"].startswith("g722,pcmu,pcma")


async def test_without_an_extension_the_label_is_the_sip_username(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await add_phone(client, tenant, model="yealink", extension=None, auto_answer=False)
    access = await enable_provisioning(client, tenant)

    response = await fetch(client, file_path(access.files_url, "001565aabbcc.cfg"), access.auth)

    values = key_values(response.text)
    assert values["account.1.label"] == "lan.desk"
    assert values["account.1.auto_answer"] == "0"


async def test_digest_authentication_is_accepted(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)
    path = file_path(access.files_url, "001565aabbcc.cfg")

    challenge = await client.get(path)
    response = await fetch(client, path, httpx.DigestAuth(*access.auth))
    wrong = await fetch(client, path, httpx.DigestAuth(access.username, "Wrong7Secret42x"))

    assert challenge.status_code == 401
    schemes = [c.split(" ", 1)[0] for c in challenge.headers.get_list("www-authenticate")]
    assert schemes == ["Digest", "Basic"]
    assert response.status_code == 200, response.text
    assert key_values(response.text)["account.1.password"] == PHONE_PASSWORD
    assert wrong.status_code == 401


async def test_a_rotated_device_password_is_in_the_next_fetch(
    client: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    phone = await add_phone(client, tenant, model="grandstream")
    access = await enable_provisioning(client, tenant)
    path = file_path(access.files_url, "cfg001565aabbcc.xml")
    before = await fetch(client, path, access.auth)

    rotated = await client.post(
        f"/v1/devices/{phone['id']}/password", json={}, headers=tenant.admin
    )
    after = await fetch(client, path, access.auth)

    new_password = rotated.json()["password"]
    assert xml_root(before.text).findtext("config/P34") == PHONE_PASSWORD
    assert xml_root(after.text).findtext("config/P34") == new_password
    row = await db_get(db, Device, phone["id"])
    assert row is not None
    assert row.ha1 == hashlib.md5(f"lan.desk:{DOMAIN}:{new_password}".encode()).hexdigest()


async def test_the_device_shows_its_file_and_last_fetches(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    phone = await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)
    await fetch(client, file_path(access.files_url, "001565aabbcc.cfg"), ("x", "y"))
    await fetch(client, file_path(access.files_url, "001565aabbcc.cfg"), access.auth)

    shown = await client.get(f"/v1/devices/{phone['id']}/provisioning", headers=tenant.admin)

    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["file_url"] == access.files_url + "001565aabbcc.cfg"
    assert (body["mac"], body["model"]) == ("001565aabbcc", "yealink")
    latest = body["last_fetches"][0]
    assert (latest["outcome"], latest["status_code"]) == ("served", 200)
    assert latest["user_agent"] == YEALINK_AGENT
    assert latest["client_address"] == "127.0.0.1"
    assert latest["device_id"] == phone["id"]
    # The refused one too: why a phone did not set itself up.
    assert [f["outcome"] for f in body["last_fetches"]] == ["served", "unauthorized"]
    assert PHONE_PASSWORD not in shown.text and access.password not in shown.text


@pytest.mark.parametrize("model", ["yealink", "grandstream", "polycom", "fanvil", "snom"])
async def test_no_secret_in_the_logs_of_a_fetch(
    client: httpx.AsyncClient, tenant: TenantKeys, caplog: pytest.LogCaptureFixture, model: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="app")
    phone = await add_phone(client, tenant, model=model)
    access = await enable_provisioning(client, tenant)
    shown = await client.get(f"/v1/devices/{phone['id']}/provisioning", headers=tenant.admin)
    url = httpx.URL(shown.json()["file_url"]).path

    served = await fetch(client, url, access.auth)
    refused = await fetch(client, url, (access.username, "Guess7Secret42x"))

    assert served.status_code == 200 and PHONE_PASSWORD in served.text
    assert refused.status_code == 401
    assert "Guess7Secret42x" not in refused.text and PHONE_PASSWORD not in refused.text
    for secret in (PHONE_PASSWORD, access.password, "Guess7Secret42x"):
        assert secret not in caplog.text
