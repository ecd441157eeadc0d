"""Input the service refuses rather than guesses at: loose types, repeated keys, look-alike
domains, control characters, oversized requests, and keys guessed at speed."""

import asyncio
import re
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import select

from app.db.session import Database
from app.devices.schemas import DeviceName, DevicePassword, MacAddress
from app.errors import InvalidInput, PreconditionFailed
from app.etags import IF_MATCH_PATTERN, require_match
from app.main import create_app
from app.provisioning.schemas import Network
from app.registrations.schemas import SipUri
from app.schemas import DateTime
from app.tenants.models import Tenant
from app.tenants.schemas import SipDomain, TimeZoneName
from app.user_record.models import User
from app.user_record.schemas import DisplayName, Email
from app.webhooks.schemas import WebhookUrl
from tests.helpers.api import TenantKeys, assert_problem, create_user, db_rows
from tests.helpers.settings import make_settings


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/users", {"display_name": "A", "outbound_allowed": "yes"}, "body.outbound_allowed"),
        ("/v1/users", {"display_name": "A", "outbound_allowed": 1}, "body.outbound_allowed"),
        ("/v1/users", {"display_name": "A", "auto_answer": "on"}, "body.auto_answer"),
        ("/v1/users", {"display_name": "A", "limit_minutes": "60"}, "body.limit_minutes"),
        ("/v1/users", {"display_name": "A", "limit_minutes": 60.5}, "body.limit_minutes"),
        ("/v1/users", {"display_name": "A", "limit_minutes": True}, "body.limit_minutes"),
    ],
)
async def test_booleans_and_integers_must_be_json_booleans_and_integers(
    client: httpx.AsyncClient,
    db: Database,
    tenant: TenantKeys,
    path: str,
    body: dict[str, object],
    field: str,
) -> None:
    response = await client.post(path, json=body, headers=tenant.admin)

    assert_problem(response, 422, field=field)
    assert await db_rows(db, select(User.id)) == []


async def test_a_tenant_setting_must_be_an_integer_not_true(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys
) -> None:
    response = await client.patch(
        f"/v1/tenants/{tenant.id}", json={"billing_increment_seconds": True}, headers=platform
    )
    assert_problem(response, 422, field="body.billing_increment_seconds")


async def test_toggles_refuse_strings_for_booleans(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    response = await client.patch(
        f"/v1/users/{user['id']}/toggles", json={"auto_answer": "true"}, headers=tenant.admin
    )
    assert_problem(response, 422, field="body.auto_answer")
    toggles = await client.get(f"/v1/users/{user['id']}/toggles", headers=tenant.admin)
    assert toggles.json()["auto_answer"] is False


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (
            "/v1/tenants",
            '{"name": "A", "sip_domain": "a.test", "sip_domain": "b.test"}',
            "sip_domain",
        ),
        ("/v1/users", '{"display_name": "A", "display_name": "B"}', "display_name"),
    ],
)
async def test_a_key_given_twice_is_refused_naming_it(
    client: httpx.AsyncClient,
    db: Database,
    platform: dict[str, str],
    tenant: TenantKeys,
    path: str,
    raw: str,
    field: str,
) -> None:
    headers = {**(platform if path == "/v1/tenants" else tenant.admin)}
    headers["Content-Type"] = "application/json"

    response = await client.post(path, content=raw, headers=headers)

    body = assert_problem(response, 422, field=f"body.{field}")
    assert body["errors"][0]["code"] == "duplicate-key"
    assert await db_rows(db, select(User.id)) == []
    assert [t.sip_domain for t in await db_rows(db, select(Tenant.sip_domain))] == ["acme.sip.test"]


async def test_an_extension_number_given_twice_is_refused(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin)
    response = await client.post(
        f"/v1/users/{user['id']}/extensions",
        content='{"number": "101", "number": "102"}',
        headers={**tenant.admin, "Content-Type": "application/json"},
    )
    assert_problem(response, 422, field="body.number")


@pytest.mark.parametrize(
    "domain", ["\u212aelvin.test", "Acme.sip.test", " acme2.sip.test", "acme2.sip.test\n"]
)
async def test_domains_are_refused_unless_in_their_stored_form(
    client: httpx.AsyncClient, db: Database, platform: dict[str, str], domain: str
) -> None:
    response = await client.post(
        "/v1/tenants", json={"name": "Look-alike", "sip_domain": domain}, headers=platform
    )
    assert_problem(response, 422, field="body.sip_domain")
    assert await db_rows(db, select(Tenant.id)) == []


async def test_a_tenant_keeps_at_least_one_emergency_number(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys
) -> None:
    response = await client.patch(
        f"/v1/tenants/{tenant.id}", json={"emergency_numbers": []}, headers=platform
    )
    assert_problem(response, 422, field="body.emergency_numbers")
    shown = await client.get(f"/v1/tenants/{tenant.id}", headers=platform)
    assert shown.json()["emergency_numbers"] == ["113", "114", "115"]


async def test_oversized_headers_are_431_and_bodies_413(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    huge = {**tenant.admin, "X-Padding": "x" * 20_000}
    assert_problem(await client.get("/v1/users", headers=huge), 431)

    response = await client.post(
        "/v1/users",
        json={"display_name": "A", "email": "a" * 2_000_000 + "@b.test"},
        headers=tenant.admin,
    )
    assert response.status_code == 413
    assert await db_rows(db, select(User.id)) == []


@pytest.fixture
async def strict_app(migrated_url: str, db: Database) -> FastAPI:
    return create_app(make_settings(migrated_url, auth_failure_limit="5/minute"))


async def test_wrong_keys_from_one_address_are_limited_with_429(
    strict_app: FastAPI, tenant: TenantKeys
) -> None:
    async with strict_app.router.lifespan_context(strict_app):
        transport = httpx.ASGITransport(app=strict_app, client=("198.51.100.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            wrong = {"Authorization": "Bearer ark_wrong"}
            statuses = [(await c.get("/v1/users", headers=wrong)).status_code for _ in range(5)]
            limited = await c.get("/v1/users", headers=wrong)
            # Past the limit, even the right key waits: guessing cannot go on.
            right = await c.get("/v1/users", headers=tenant.admin)
        other = httpx.ASGITransport(app=strict_app, client=("198.51.100.8", 4000))
        async with httpx.AsyncClient(transport=other, base_url="http://antring.test") as c:
            elsewhere = await c.get("/v1/users", headers=tenant.admin)

    assert statuses == [401] * 5
    assert_problem(limited, 429, code="too-many-failed-authentications")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert right.status_code == 429
    assert elsewhere.status_code == 200


@pytest.mark.parametrize(
    "until", ["0.5", "1700000000", "2026-11-25T09:30+07:00", "2026-11-25", "2026-11-25 09:30:00Z"]
)
async def test_a_date_time_is_an_rfc_3339_text_not_a_number(
    client: httpx.AsyncClient, tenant: TenantKeys, until: str
) -> None:
    """The document says date-time: a number is not read as Unix time, nor a shorter text as a
    guess."""
    response = await client.get("/v1/audit-events", params={"until": until}, headers=tenant.admin)

    body = assert_problem(response, 422, field="query.until")
    assert body["errors"][0]["code"] == "not-a-date-time"
    assert "RFC 3339" in body["errors"][0]["message"]
    written = await client.get(
        "/v1/audit-events", params={"until": "2026-11-25T09:30:00+07:00"}, headers=tenant.admin
    )
    assert written.status_code == 200


async def test_values_at_the_edge_of_a_declared_rule_are_taken_as_the_document_says(
    client: httpx.AsyncClient, db: Database, platform: dict[str, str], tenant: TenantKeys
) -> None:
    """What the document declares valid is accepted, and what it declares invalid is refused:
    lengths count what was sent, surrounding spaces are dropped, 60.0 is the integer 60."""
    spaced = await client.post(
        "/v1/users",
        json={"display_name": "  Lan  ", "limit_minutes": 60.0},
        headers=tenant.admin,
    )
    assert spaced.status_code == 201, spaced.text
    assert (spaced.json()["display_name"], spaced.json()["limit_minutes"]) == ("Lan", 60)
    for display_name in (" \u3000 ", "a" * 199 + "\u2028\n", "x" * 201):
        refused = await client.post(
            "/v1/users", json={"display_name": display_name}, headers=tenant.admin
        )
        assert_problem(refused, 422, field="body.display_name")
    phone = await client.post(
        f"/v1/users/{spaced.json()['id']}/devices",
        json={"name": "lan.desk", "kind": "ip_phone", "mac": "0015.65AA.BBCC"},
        headers=tenant.admin,
    )
    assert phone.status_code == 201 and phone.json()["mac"] == "001565aabbcc"
    for mac in ("01:00:5e:00:00:fb", "00:00:00:00:00:00", " 001565aabbcd"):
        refused = await client.post(
            f"/v1/users/{spaced.json()['id']}/devices",
            json={"name": "lan.desk2", "kind": "ip_phone", "mac": mac},
            headers=tenant.admin,
        )
        assert_problem(refused, 422, field="body.mac")
    await client.post("/v1/provisioning/credentials", headers=tenant.admin)
    networks = await client.patch(
        "/v1/provisioning",
        json={"allowed_networks": ["::ffff:10.0.0.0/104", "203.0.113.7"]},
        headers=tenant.admin,
    )
    assert networks.json()["allowed_networks"] == ["::ffff:a00:0/104", "203.0.113.7/32"], (
        networks.text
    )
    netmask = await client.patch(
        "/v1/provisioning", json={"allowed_networks": ["10.0.0.0/255.0.0.0"]}, headers=tenant.admin
    )
    assert_problem(netmask, 422, field="body.allowed_networks.0")
    assert [u.display_name for u in await db_rows(db, select(User))] == ["Lan"]


def _document_and_model_agree(adapter: TypeAdapter[Any], value: object) -> None:
    """The value is valid by the field's JSON Schema (as a client or schemathesis reads it) if
    and only if the service's model accepts it."""
    schema = adapter.json_schema()
    valid_by_document = jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(value)
    try:
        adapter.validate_python(value)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == valid_by_document, (value, schema)


# Fields whose rules the document states as `pattern`, lengths, formats or enums.
DECLARED = {
    "display name": DisplayName,
    "email": Email,
    "SIP domain": SipDomain,
    "time zone": TimeZoneName,
    "device name": DeviceName,
    "device password": DevicePassword,
    "MAC address": MacAddress,
    "SIP URI": SipUri,
    "network": Network,
    "webhook URL": WebhookUrl,
    "date-time": DateTime,
}


@pytest.mark.parametrize("field", DECLARED)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_field_takes_exactly_what_the_document_declares(field: str, data: st.DataObject) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(DECLARED[field])
    schema = adapter.json_schema()
    samples = [st.text(max_size=80), st.text(alphabet="aA0.:-/@ \t\u00a0\ufeff\x01", max_size=30)]
    if "pattern" in schema:
        samples.append(st.from_regex(schema["pattern"], fullmatch=True))
    if "enum" in schema:
        samples.append(st.sampled_from(schema["enum"]))
    value = data.draw(st.one_of(samples))
    _document_and_model_agree(adapter, value)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.from_regex(IF_MATCH_PATTERN, fullmatch=True), st.text(max_size=40)))
def test_an_if_match_is_refused_as_the_document_declares(value: str) -> None:
    declared = re.fullmatch(IF_MATCH_PATTERN, value) is not None

    class Shown(BaseModel):
        version: int = 3

    async def shown() -> BaseModel:
        return Shown()

    try:
        asyncio.run(require_match(value, 3, current=shown))
    except PreconditionFailed:
        assert declared  # a list of ETags, none of them the current one
    except InvalidInput:
        assert not declared
    else:
        assert declared
