"""Setting up phones and provisioning credentials, and reading back what phones fetch."""

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import httpx

from tests.helpers.api import TenantKeys, add_device, add_extension, create_user

PHONE_PASSWORD = "Blue7Harbor42x"
YEALINK_AGENT = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"


@dataclass
class Provisioning:
    username: str
    password: str
    files_url: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)


async def enable_provisioning(client: httpx.AsyncClient, keys: TenantKeys) -> Provisioning:
    response = await client.post("/v1/provisioning/credentials", headers=keys.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    return Provisioning(body["username"], body["password"], body["files_url"])


async def add_phone(
    client: httpx.AsyncClient,
    keys: TenantKeys,
    *,
    model: str = "yealink",
    mac: str = "00:15:65:AA:BB:CC",
    name: str = "lan.desk",
    display_name: str = "Lan Nguyen",
    auto_answer: bool = True,
    extension: str | None = "102",
) -> dict[str, Any]:
    """A user (with an extension) and their IP phone; the device as created."""
    user = await create_user(client, keys.admin, display_name=display_name, auto_answer=auto_answer)
    if extension is not None:
        await add_extension(client, keys.admin, user["id"], extension)
    return await add_device(
        client,
        keys.admin,
        user["id"],
        name=name,
        kind="ip_phone",
        password=PHONE_PASSWORD,
        mac=mac,
        model=model,
    )


def key_values(text: str) -> dict[str, str]:
    """A Yealink file's settings (comments and blank lines skipped)."""
    values = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, line
        values[key.strip()] = value.strip()
    return values


def xml_root(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


def file_path(files_url: str, filename: str) -> str:
    return httpx.URL(files_url).path + filename
