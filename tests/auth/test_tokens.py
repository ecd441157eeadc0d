"""People sign in at the platform's identity provider (a real oidc-provider, tests/idp) and call
the API with its access tokens: roles and tenants from the token's claims, every bad token
refused with a reason, the provider's key rotation followed without a restart, the keys already
read kept while the provider is down, and the person named in the audit trail."""

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from sqlalchemy import select

from app.auth.models import Role
from app.db.session import Database
from app.main import create_app
from app.models import Base
from app.outbox.models import AuditEntry, Event
from tests.auth.test_access import (
    TENANT_ROUTES,
    World,
    call,
    check_roles,
    make_world,
    snapshot,
)
from tests.helpers.api import (
    TenantKeys,
    assert_problem,
    create_user,
    db_rows,
    new_platform_key,
    new_tenant,
)
from tests.helpers.idp import IdentityProvider, new_signing_key, require_provider
from tests.helpers.settings import make_settings


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityProvider]:
    """A provider of this module's own: some tests stop it or rotate its keys."""
    require_provider()
    provider = IdentityProvider(tmp_path_factory.mktemp("idp"))
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


def oidc_settings(url: str, idp: IdentityProvider, **overrides: Any) -> Any:
    values = {
        "oidc_issuer": idp.issuer,
        "oidc_audience": idp.audience,
        # The tests make tokens expire and rotate keys within seconds.
        "oidc_leeway_seconds": 0,
        "oidc_keys_min_refresh_seconds": 0,
    }
    return make_settings(url, **{**values, **overrides})


@pytest.fixture(scope="module")
async def signed_in_app(migrated_url: str, idp: IdentityProvider) -> AsyncIterator[FastAPI]:
    application = create_app(oidc_settings(migrated_url, idp))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def db(signed_in_app: FastAPI) -> AsyncIterator[Database]:
    database: Database = signed_in_app.state.db
    yield database
    async with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture
async def client(signed_in_app: FastAPI, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=signed_in_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        yield c


@pytest.fixture
async def people(
    idp: IdentityProvider, tenant: TenantKeys, other_tenant: TenantKeys
) -> dict[str, str]:
    """Each role's person in the tenant (and an operator in the other), signed in."""
    accounts = {
        "an.admin": (tenant, ["admin"], "Nguyễn Văn An"),
        "lan.operator": (tenant, ["operator"], "Trần Thị Lan"),
        "minh.viewer": (tenant, ["viewer"], "Lê Văn Minh"),
        "globex.operator": (other_tenant, ["operator"], "Phạm Thu Hà"),
    }
    tokens = {}
    for account, (owner, roles, name) in accounts.items():
        # Unique per test: a tenant's id changes from one test to the next.
        account_id = f"{account}-{owner.id.hex[:8]}"
        idp.add_account(
            account_id,
            tenant_id=str(owner.id),
            roles=roles,
            name=name,
            email=f"{account}@callcenter.example",
        )
        tokens[account] = idp.person_token(account_id)
    return tokens


async def test_each_person_calls_what_their_role_allows(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    people: dict[str, str],
    db: Database,
) -> None:
    for number, (account, role) in zip(
        ("301", "302", "303"),
        (("minh.viewer", Role.viewer), ("lan.operator", Role.operator), ("an.admin", Role.admin)),
        strict=True,
    ):
        world = await make_world(client, platform, tenant, number, db)
        await check_roles(client, world, db, {role: bearer(people[account])})


async def test_a_machine_client_with_call_control_uses_call_control_only(
    client: httpx.AsyncClient,
    idp: IdentityProvider,
    platform: dict[str, str],
    tenant: TenantKeys,
    db: Database,
) -> None:
    world = await make_world(client, platform, tenant, "401", db)
    client_id = f"edge-{tenant.id.hex[:8]}"
    idp.add_client(client_id, tenant_id=str(tenant.id), roles=["call_control"])
    edge = bearer(idp.client_token(client_id))
    before = await snapshot(db)

    for route in TENANT_ROUTES:
        assert_problem(await call(client, route, world.ids, edge), 403, code="forbidden")
    assert await snapshot(db) == before
    account = world.device["name"]
    looked_up = await client.get(
        f"/v1/call-control/sip-accounts/{account}",
        params={"domain": tenant.sip_domain},
        headers=edge,
    )
    assert looked_up.status_code == 200, looked_up.text


async def test_a_directory_client_provisions_by_scim_and_nothing_else(
    client: httpx.AsyncClient, idp: IdentityProvider, tenant: TenantKeys, db: Database
) -> None:
    client_id = f"directory-{tenant.id.hex[:8]}"
    idp.add_client(client_id, tenant_id=str(tenant.id), roles=["scim"], name="Okta")
    directory = bearer(idp.client_token(client_id))
    made = await client.post(
        "/scim/v2/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "lan@acme.vn",
            "externalId": "00u1",
            "displayName": "Lan Nguyen",
        },
        headers={**directory, "Content-Type": "application/scim+json"},
    )
    assert made.status_code == 201, made.text
    # The agent's events name the directory's client.
    events = await db_rows(db, select(AuditEntry).where(AuditEntry.action == "user.created"))
    assert [(e.actor_kind, e.actor_client_id, e.actor_role) for e in events] == [
        ("token", client_id, "scim")
    ]
    for path in ("/v1/users", f"/v1/users/{made.json()['id']}", f"/v1/tenants/{tenant.id}"):
        assert (await client.get(path, headers=directory)).status_code == 403


async def test_a_person_sees_only_their_own_tenant(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    people: dict[str, str],
    db: Database,
) -> None:
    mine: World = await make_world(client, platform, tenant, "501", db)
    theirs = await make_world(client, platform, other_tenant, "502", db)
    globex = bearer(people["globex.operator"])
    before = await snapshot(db, tenant.id)

    listed = await client.get("/v1/users", headers=globex)
    foreign = await client.get(f"/v1/users/{mine.user['id']}", headers=globex)
    changed = await client.patch(
        f"/v1/users/{mine.user['id']}", json={"display_name": "Mallory"}, headers=globex
    )
    planted = await client.post(
        "/v1/users",
        json={"display_name": "Planted"},
        headers={**globex, "X-Tenant-ID": str(tenant.id)},
    )

    assert [u["id"] for u in listed.json()["items"]] == [theirs.user["id"]]
    assert_problem(foreign, 404, code="user-not-found")
    assert_problem(changed, 404, code="user-not-found")
    assert planted.status_code == 201
    assert await snapshot(db, tenant.id) == before
    keys = await client.get(f"/v1/tenants/{tenant.id}/api-keys", headers=globex)
    assert_problem(keys, 403, code="forbidden")


async def test_changes_and_reveals_name_the_person_who_made_them(
    client: httpx.AsyncClient,
    idp: IdentityProvider,
    tenant: TenantKeys,
    people: dict[str, str],
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    lan = bearer(people["lan.operator"])
    subject = f"lan.operator-{tenant.id.hex[:8]}"
    user = await create_user(client, lan, display_name="Đặng Thị Hiếu")
    device_id = user["devices"][0]["id"]
    await client.put(f"/v1/users/{user['id']}/quota", json={"limit_minutes": 500}, headers=lan)
    shown = await client.get(f"/v1/devices/{device_id}/config?reveal=password", headers=lan)
    assert shown.status_code == 200 and shown.json()["web"]["password"]

    trail = await client.get(
        "/v1/audit-events", params={"actor_id": subject}, headers=bearer(people["an.admin"])
    )

    assert trail.status_code == 200, trail.text
    actions = sorted(e["action"] for e in trail.json()["items"])
    assert "user.created" in actions and "quota.updated" in actions
    assert "device.password_revealed" in actions
    for entry in trail.json()["items"]:
        assert entry["actor"] == {
            "kind": "token",
            "id": subject,
            "name": "Trần Thị Lan",
            "email": "lan.operator@callcenter.example",
            "client_id": "console",
            "role": "operator",
            "address": "127.0.0.1",
        }
        assert entry["actor_key_id"] is None
    events = await db_rows(db, select(Event.type, Event.data))
    lans = [e for e in events if e.data.get("actor", {}).get("kind") == "token"]
    assert {e.type for e in lans} == {"user.created", "device.created", "quota.updated"}, [
        (e.type, e.data.get("actor")) for e in events
    ]
    for event in lans:
        assert event.data["actor"] == {"kind": "token", "id": subject}, event.type
    # No token in any log line, answer or event.
    for token in people.values():
        assert token not in caplog.text
        assert token not in trail.text
        assert all(token not in json.dumps(e.data) for e in events)


def _segment(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def _claims(idp: IdentityProvider, tenant: TenantKeys, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": "mallory",
        "tenant_id": str(tenant.id),
        "roles": ["admin"],
        "iat": now,
        "exp": now + 300,
        **extra,
    }


def forged(idp: IdentityProvider, tenant: TenantKeys) -> dict[str, str]:
    """Tokens a careful service refuses, each for its own reason."""
    now = int(time.time())
    claims = _claims(idp, tenant)
    public = next(k for k in idp.public_jwks()["keys"] if k["kid"] == idp.signing_kid)
    # The provider's public key, as PEM, used as an HMAC secret.
    public_pem = jwt.PyJWK(public).key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": idp.signing_kid}
    hs_body = {**claims, "iss": idp.issuer, "aud": idp.audience}
    hs_input = f"{_segment(hs_header)}.{_segment(hs_body)}"
    hs_signature = hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest()
    stranger = new_signing_key("RS256")
    stranger_key = jwt.PyJWK(stranger).key
    valid = idp.sign(claims)
    head, body, signature = valid.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    tampered["roles"] = ["admin"]
    tampered["tenant_id"] = str(uuid.uuid4())
    return {
        "expired": idp.sign({**claims, "iat": now - 600, "exp": now - 300}),
        "not yet valid": idp.sign({**claims, "nbf": now + 300}),
        "another audience": idp.sign({**claims, "aud": "another-api"}),
        "another issuer": idp.sign({**claims, "iss": "http://127.0.0.1:9/evil"}),
        "no expiry": idp.sign({k: v for k, v in claims.items() if k != "exp"}),
        "alg none": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(hs_body)}.",
        "HS256 with the public key": (
            f"{hs_input}.{base64.urlsafe_b64encode(hs_signature).rstrip(b'=').decode()}"
        ),
        "unknown kid": jwt.encode(
            {**claims, "iss": idp.issuer, "aud": idp.audience},
            stranger_key,
            algorithm="RS256",
            headers={"kid": "not-the-providers"},
        ),
        "signed by a stranger with the provider's kid": jwt.encode(
            {**claims, "iss": idp.issuer, "aud": idp.audience},
            stranger_key,
            algorithm="RS256",
            headers={"kid": idp.signing_kid},
        ),
        "tampered claims": f"{head}.{_segment(tampered)}.{signature}",
        "not a JWT": "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
    }


async def test_bad_tokens_answer_401_invalid_token_with_the_reason(
    client: httpx.AsyncClient, idp: IdentityProvider, tenant: TenantKeys, db: Database
) -> None:
    before = await snapshot(db)
    for reason, token in forged(idp, tenant).items():
        response = await client.post(
            "/v1/users", json={"display_name": "Mallory"}, headers=bearer(token)
        )

        body = assert_problem(response, 401, code="invalid-token")
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token", error_description="'), reason
        assert body["detail"], reason
        assert token not in response.text, reason
    assert await snapshot(db) == before


async def test_each_reason_is_said(
    client: httpx.AsyncClient, idp: IdentityProvider, tenant: TenantKeys
) -> None:
    tokens = forged(idp, tenant)
    expected = {
        "expired": "token-expired",
        "not yet valid": "token-not-yet-valid",
        "another audience": "token-audience",
        "another issuer": "token-issuer",
        "no expiry": "token-claim-missing",
        "alg none": "token-algorithm",
        "HS256 with the public key": "token-algorithm",
        "unknown kid": "token-key-unknown",
        "signed by a stranger with the provider's kid": "token-signature",
        "tampered claims": "token-signature",
    }
    for reason, code in expected.items():
        english = await client.get("/v1/users", headers=bearer(tokens[reason]))
        vietnamese = await client.get(
            "/v1/users", headers={**bearer(tokens[reason]), "Accept-Language": "vi"}
        )
        assert english.json()["code"] == code, (reason, english.json())
        assert vietnamese.headers["content-language"] == "vi"
        assert vietnamese.json()["detail"] != english.json()["detail"], reason
    said = await client.get("/v1/users", headers=bearer(tokens["HS256 with the public key"]))
    assert said.json()["params"] == {
        "algorithm": "HS256",
        "allowed": ["RS256", "PS256", "ES256", "EdDSA"],
    }


async def test_a_token_without_a_known_tenant_or_role_gets_403_naming_the_claim(
    client: httpx.AsyncClient, idp: IdentityProvider, tenant: TenantKeys
) -> None:
    cases = {
        "token.tenant_id": {"tenant_id": None},
        "token.roles": {"roles": ["supervisor"]},
    }
    for field, change in cases.items():
        claims = {k: v for k, v in _claims(idp, tenant, **change).items() if v is not None}
        response = await client.get("/v1/users", headers=bearer(idp.sign(claims)))
        assert_problem(response, 403, field=field, code="token-not-accepted")
    unknown = idp.sign(_claims(idp, tenant, tenant_id=str(uuid.uuid4())))
    body = assert_problem(
        await client.get("/v1/users", headers=bearer(unknown)), 403, field="token.tenant_id"
    )
    assert body["code"] == "token-tenant-unknown"


async def test_bad_tokens_count_toward_the_failed_authentication_limit(
    migrated_url: str, idp: IdentityProvider, tenant: TenantKeys
) -> None:
    strict = create_app(oidc_settings(migrated_url, idp, auth_failure_limit="3/minute"))
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            expired = forged(idp, tenant)["expired"]
            for _ in range(3):
                assert_problem(await c.get("/v1/users", headers=bearer(expired)), 401)
            limited = await c.get("/v1/users", headers=tenant.admin)
    assert_problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1


async def test_the_document_offers_the_provider_s_sign_in_and_says_each_route_s_roles(
    migrated_url: str, signed_in_app: FastAPI, idp: IdentityProvider
) -> None:
    document = signed_in_app.openapi()

    schemes = document["components"]["securitySchemes"]
    # The authorization code flow alone, where the provider's discovery document says it is:
    # not the implicit, refresh-token or client-credentials grants the provider also offers.
    assert schemes["OpenIdConnect"]["type"] == "oauth2"
    assert schemes["OpenIdConnect"]["flows"] == {
        "authorizationCode": {
            "authorizationUrl": idp.authorization_endpoint,
            "tokenUrl": idp.token_endpoint,
            "scopes": {
                "openid": "Sign in with OpenID Connect.",
                "profile": "Your name, for the audit trail.",
                "email": "Your e-mail address, for the audit trail.",
            },
        }
    }
    assert idp.discovery_url in schemes["OpenIdConnect"]["description"]
    assert schemes["CallControlBasic"]["scheme"] == "basic"
    assert not any(name.startswith("_") for name in schemes)
    users = document["paths"]["/v1/users"]
    assert {"OpenIdConnect": []} in users["post"]["security"]
    assert users["post"]["x-roles"] == ["admin", "operator"]
    assert users["post"]["description"].endswith("**Roles**: admin, operator.")
    assert users["get"]["x-roles"] == ["admin", "operator", "viewer"]
    assert document["paths"]["/v1/webhooks"]["post"]["x-roles"] == ["admin"]
    assert document["paths"]["/v1/tenants"]["post"]["x-roles"] == ["admin"]
    assert "(platform keys only)" in document["paths"]["/v1/tenants"]["post"]["description"]


async def test_the_provider_s_new_keys_are_taken_without_a_restart(
    migrated_url: str, tmp_path: Path, platform: dict[str, str]
) -> None:
    require_provider()
    with IdentityProvider(tmp_path / "rotating") as own:
        rotating = create_app(oidc_settings(migrated_url, own))
        async with rotating.router.lifespan_context(rotating):
            transport = httpx.ASGITransport(app=rotating)
            async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as c:
                acme = await new_tenant(c, platform, "Rotating")
                own.add_account("ops", tenant_id=str(acme.id), roles=["operator"], name="Ops")
                before = own.person_token("ops")
                assert (await c.get("/v1/users", headers=bearer(before))).status_code == 200

                own.rotate_keys(keep_old=False)
                after = own.person_token("ops")

                assert (
                    jwt.get_unverified_header(after)["kid"]
                    != jwt.get_unverified_header(before)["kid"]
                )
                assert (await c.get("/v1/users", headers=bearer(after))).status_code == 200
                # The old key is gone from the provider's JWKS: its tokens stop.
                assert_problem(
                    await c.get("/v1/users", headers=bearer(before)), 401, code="invalid-token"
                )


async def test_keys_already_read_keep_working_while_the_provider_is_down(
    migrated_url: str, tmp_path: Path, platform: dict[str, str]
) -> None:
    require_provider()
    with IdentityProvider(tmp_path / "stopping") as own:
        app = create_app(oidc_settings(migrated_url, own))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as c:
                acme = await new_tenant(c, platform, "Stopping")
                own.add_account("ops", tenant_id=str(acme.id), roles=["operator"], name="Ops")
                first, second = own.person_token("ops"), own.person_token("ops")
                assert (await c.get("/v1/users", headers=bearer(first))).status_code == 200
                rotated_kid = own.rotate_keys(keep_old=True)
                unseen = own.sign(
                    {
                        "sub": "ops",
                        "tenant_id": str(acme.id),
                        "roles": ["operator"],
                        "exp": int(time.time()) + 300,
                    }
                )
                assert jwt.get_unverified_header(unseen)["kid"] == rotated_kid

                own.stop()

                assert (await c.get("/v1/users", headers=bearer(second))).status_code == 200
                down = await c.get("/v1/users", headers=bearer(unseen))
                assert_problem(down, 503, code="identity-provider-unavailable")
                assert down.headers["retry-after"]

                own.start()

                assert (await c.get("/v1/users", headers=bearer(unseen))).status_code == 200


async def test_requests_that_arrive_while_the_keys_are_read_wait_for_them(
    migrated_url: str, idp: IdentityProvider, platform: dict[str, str]
) -> None:
    """Just after a start, under load: every request with a good token waits for the one
    reading of the provider's keys, however soon after it they come; none is refused."""
    app = create_app(oidc_settings(migrated_url, idp, oidc_keys_min_refresh_seconds=60))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://d.test") as c:
            acme = await new_tenant(c, platform, "Starting")
            account = f"ops-{acme.id.hex[:8]}"
            idp.add_account(account, tenant_id=str(acme.id), roles=["viewer"], name="Ops")
            token = idp.person_token(account)

            answers = await asyncio.gather(
                *(c.get("/v1/users", headers=bearer(token)) for _ in range(8))
            )

    assert [answer.status_code for answer in answers] == [200] * 8


async def test_a_token_expires_at_its_exp(
    migrated_url: str, tmp_path: Path, platform: dict[str, str]
) -> None:
    require_provider()
    with IdentityProvider(tmp_path / "short", access_token_ttl=2) as own:
        app = create_app(oidc_settings(migrated_url, own))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://c.test") as c:
                acme = await new_tenant(c, platform, "Short")
                own.add_account("ops", tenant_id=str(acme.id), roles=["viewer"], name="Ops")
                token = own.person_token("ops")
                assert (await c.get("/v1/users", headers=bearer(token))).status_code == 200
                exp = jwt.decode(token, options={"verify_signature": False})["exp"]

                await asyncio.sleep(max(0.0, exp - time.time()) + 1.1)

                expired = await c.get("/v1/users", headers=bearer(token))
                assert assert_problem(expired, 401, code="invalid-token")["code"] == "token-expired"


async def test_platform_routes_refuse_people(
    client: httpx.AsyncClient, people: dict[str, str], db: Database
) -> None:
    platform_viewer = await new_platform_key(db, Role.viewer)
    assert (await client.get("/v1/tenants", headers=platform_viewer)).status_code == 200
    refused = await client.get("/v1/tenants", headers=bearer(people["an.admin"]))
    assert_problem(refused, 403, code="forbidden")
