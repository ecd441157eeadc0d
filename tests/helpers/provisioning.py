"""Setting up phones and provisioning credentials, and reading back what phones fetch."""

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx

from app.provisioning.httpauth import parse_params
from app.provisioning.service import COUNTED_OUTCOMES
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


async def fetches(client: httpx.AsyncClient, keys: TenantKeys) -> list[dict[str, Any]]:
    """The tenant's recorded fetches, newest first."""
    response = await client.get("/v1/provisioning/fetches", headers=keys.admin)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class Tally(NamedTuple):
    outcome: str
    status_code: int
    mac: str | None
    client_address: str
    count: int


def tally(items: list[dict[str, Any]]) -> list[Tally]:
    """Fetches as the operator reads them, oldest first; the counted refusals of two minutes in
    a row are added up, so that a test does not depend on when a minute turns."""
    tallied: list[Tally] = []
    for item in reversed(items):
        row = Tally(
            item["outcome"], item["status_code"], item["mac"], item["client_address"], item["count"]
        )
        counted = row.outcome in COUNTED_OUTCOMES
        if counted and tallied and tallied[-1]._replace(count=0) == row._replace(count=0):
            tallied[-1] = tallied[-1]._replace(count=tallied[-1].count + row.count)
        else:
            tallied.append(row)
    return tallied


def digest_challenge(response: httpx.Response) -> dict[str, str]:
    """The Digest challenge of a 401, as parameters."""
    for challenge in response.headers.get_list("www-authenticate"):
        scheme, _, params = challenge.partition(" ")
        if scheme == "Digest":
            parsed = parse_params(params)
            assert parsed is not None, challenge
            return parsed
    raise AssertionError(f"no Digest challenge in {response.headers}")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_authorization(
    challenge: dict[str, str],
    auth: tuple[str, str],
    *,
    uri: str,
    nc: int = 1,
    cnonce: str = "0a4f113b",
    qop: bool = True,
) -> str:
    """The Authorization header a phone answers a challenge with (RFC 7616, MD5)."""
    username, password = auth
    ha1 = _md5(f"{username}:{challenge['realm']}:{password}")
    ha2 = _md5(f"GET:{uri}")
    nonce = challenge["nonce"]
    header = (
        f'Digest username="{username}", realm="{challenge["realm"]}", nonce="{nonce}", '
        f'uri="{uri}", algorithm=MD5'
    )
    if not qop:
        return header + f', response="{_md5(f"{ha1}:{nonce}:{ha2}")}"'
    count = f"{nc:08x}"
    response = _md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
    return header + f', qop=auth, nc={count}, cnonce="{cnonce}", response="{response}"'
