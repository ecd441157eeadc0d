"""Talking to the app as its clients do, and reading what the database now holds."""

import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from app.auth.models import Role
from app.auth.service import create_api_key
from app.db.session import Database

T = TypeVar("T")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class TenantKeys:
    id: uuid.UUID
    sip_domain: str
    admin: dict[str, str]
    operator: dict[str, str]
    viewer: dict[str, str]
    call_control: dict[str, str]
    scim: dict[str, str]


async def new_platform_key(db: Database, role: Role = Role.admin) -> dict[str, str]:
    async with db.session_scope() as session:
        _, secret = await create_api_key(session, tenant_id=None, role=role, name="test platform")
    return bearer(secret)


async def new_tenant(
    client: httpx.AsyncClient, platform: dict[str, str], name: str, **fields: Any
) -> TenantKeys:
    body = {"name": name, "sip_domain": f"{name.lower()}.sip.test", **fields}
    response = await client.post("/v1/tenants", json=body, headers=platform)
    assert response.status_code == 201, response.text
    tenant = response.json()
    keys = {}
    for role in Role:
        r = await client.post(
            f"/v1/tenants/{tenant['id']}/api-keys",
            json={"name": role.value, "role": role.value},
            headers=platform,
        )
        assert r.status_code == 201, r.text
        keys[role.value] = bearer(r.json()["key"])
    return TenantKeys(
        id=uuid.UUID(tenant["id"]),
        sip_domain=tenant["sip_domain"],
        admin=keys["admin"],
        operator=keys["operator"],
        viewer=keys["viewer"],
        call_control=keys["call_control"],
        scim=keys["scim"],
    )


async def create_user(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    body = {"display_name": "Lan Nguyen", **fields}
    response = await client.post("/v1/users", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def add_device(
    client: httpx.AsyncClient, headers: dict[str, str], user_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"kind": "softphone", **fields}
    response = await client.post(f"/v1/users/{user_id}/devices", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def add_extension(
    client: httpx.AsyncClient, headers: dict[str, str], user_id: str, number: str
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/users/{user_id}/extensions", json={"number": number}, headers=headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def version_of(etag: str) -> str:
    """The version an ETag names: a read's `"3.<digest>"` and a write's `"3"` both name 3."""
    return etag.strip('"').split(".", 1)[0]


def assert_problem(
    response: httpx.Response, status: int, *, field: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (naming `field` when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert response.headers["content-language"] in ("en", "vi")
    if code is not None:
        assert body["type"] == f"urn:antring:problem:{code}", body
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
        assert all(e["message"] and e["code"] and "params" in e for e in body["errors"]), body
    return body


async def db_get(db: Database, model: type[T], id: str | uuid.UUID) -> T | None:
    """A row as it is now committed in the database, not as any response describes it."""
    async with db.sessionmaker() as session:
        return await session.get(model, uuid.UUID(str(id)))


async def db_rows(db: Database, statement: Any) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(statement)).all())
