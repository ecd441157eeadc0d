"""The provider the token tests sign in with gives real tokens through real flows: a person's
through the authorization code flow with PKCE (over HTTP, and typed into Chromium), a machine's
through client credentials, each a JWT signed by a key the provider publishes, carrying the
claims the service reads; its keys rotate, its tokens expire."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.helpers.idp import CONSOLE, IdentityProvider, IdentityProviderError, require_provider
from tests.helpers.ports import reserve_port


def verify(idp: IdentityProvider, token: str, **options: Any) -> dict[str, Any]:
    """The token's claims, checked as a service would: the key from the provider's JWKS by
    `kid`, the algorithm allowed, `iss`, `aud` and `exp`."""
    key = jwt.PyJWKClient(idp.jwks_uri, cache_keys=False).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["RS256", "ES256"],
        audience=idp.audience,
        issuer=idp.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        **options,
    )
    return claims


def published_kids(idp: IdentityProvider) -> list[str]:
    return [key["kid"] for key in httpx.get(idp.jwks_uri).json()["keys"]]


@pytest.fixture
def own_idp(tmp_path: Path) -> Iterator[IdentityProvider]:
    """A provider that only this test restarts, rotates or stops."""
    require_provider()
    with IdentityProvider(tmp_path / "idp") as idp:
        yield idp


def test_discovery_names_the_issuer_its_keys_and_s256_only(
    identity_provider: IdentityProvider,
) -> None:
    document = httpx.get(identity_provider.discovery_url).json()
    assert document["issuer"] == identity_provider.issuer
    assert document["issuer"].startswith("http://127.0.0.1:")
    assert document["jwks_uri"] == identity_provider.jwks_uri
    assert document["token_endpoint"] == identity_provider.token_endpoint
    assert document["authorization_endpoint"] == identity_provider.authorization_endpoint
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "client_credentials" in document["grant_types_supported"]


def test_a_persons_token_carries_their_tenant_roles_name_and_email(
    identity_provider: IdentityProvider,
) -> None:
    tenant_a, tenant_b = str(uuid.uuid4()), str(uuid.uuid4())
    identity_provider.add_account(
        "olga", tenant_id=tenant_a, roles=["operator"], name="Olga Ops", email="olga@a.example"
    )
    identity_provider.add_account(
        "bert", tenant_id=tenant_b, roles=["admin"], name="Bert Boss", email="bert@b.example"
    )

    olga = identity_provider.person_token("olga")
    bert = identity_provider.person_token("bert")

    assert jwt.get_unverified_header(olga)["typ"] == "at+jwt"
    assert jwt.get_unverified_header(olga)["alg"] == "RS256"
    claims = verify(identity_provider, olga)
    assert claims["sub"] == "olga"
    assert claims["client_id"] == CONSOLE
    assert claims["tenant_id"] == tenant_a
    assert claims["roles"] == ["operator"]
    assert claims["name"] == "Olga Ops"
    assert claims["email"] == "olga@a.example"
    assert claims["aud"] == "antring-api"
    assert claims["iss"] == identity_provider.issuer
    other = verify(identity_provider, bert)
    assert (other["sub"], other["tenant_id"], other["roles"]) == ("bert", tenant_b, ["admin"])


def test_a_machines_token_carries_its_own_claims(identity_provider: IdentityProvider) -> None:
    tenant = str(uuid.uuid4())
    identity_provider.add_client("sync-bot", tenant_id=tenant, roles=["viewer"], name="Sync")

    claims = verify(identity_provider, identity_provider.client_token("sync-bot"))

    assert claims["sub"] == "sync-bot"
    assert claims["client_id"] == "sync-bot"
    assert claims["tenant_id"] == tenant
    assert claims["roles"] == ["viewer"]
    assert claims["name"] == "Sync"
    assert "email" not in claims
    assert claims["aud"] == identity_provider.audience


def test_claims_left_out_are_absent_and_other_claim_shapes_pass_through(
    identity_provider: IdentityProvider,
) -> None:
    identity_provider.add_account(
        "kc-user",
        tenant_id=None,
        roles=None,
        realm_access={"roles": ["operator"]},
        organization="org-7",
    )

    claims = verify(identity_provider, identity_provider.person_token("kc-user"))

    assert "tenant_id" not in claims
    assert "roles" not in claims
    assert claims["realm_access"] == {"roles": ["operator"]}
    assert claims["organization"] == "org-7"


def test_an_unknown_account_cannot_sign_in(identity_provider: IdentityProvider) -> None:
    with pytest.raises(IdentityProviderError, match="No account is named"):
        identity_provider.person_token("nobody")


def test_a_wrong_client_secret_gets_no_token(identity_provider: IdentityProvider) -> None:
    identity_provider.add_client("locked-bot", tenant_id=str(uuid.uuid4()), roles=["admin"])

    response = httpx.post(
        identity_provider.token_endpoint,
        data={"grant_type": "client_credentials"},
        auth=("locked-bot", "not-its-secret"),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "pkce",
    [{}, {"code_challenge": "x" * 43, "code_challenge_method": "plain"}],
    ids=["without PKCE", "plain PKCE"],
)
def test_a_sign_in_without_s256_pkce_is_refused(
    identity_provider: IdentityProvider, pkce: dict[str, str]
) -> None:
    redirect = "http://127.0.0.1/console/signed-in"
    response = httpx.get(
        identity_provider.authorization_endpoint,
        params={
            "client_id": CONSOLE,
            "response_type": "code",
            "redirect_uri": redirect,
            "scope": "openid",
            "state": "s",
            **pkce,
        },
    )

    assert response.is_redirect
    location = response.headers["location"]
    assert location.startswith(redirect)
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["invalid_request"]
    assert "code" not in query


def test_a_token_for_another_api_names_that_audience(identity_provider: IdentityProvider) -> None:
    identity_provider.add_audience("billing-api")
    identity_provider.add_client("billing-bot", tenant_id=str(uuid.uuid4()), roles=["admin"])
    identity_provider.add_account("petra", tenant_id=str(uuid.uuid4()), roles=["operator"])

    for token in (
        identity_provider.client_token("billing-bot", audience="billing-api"),
        identity_provider.person_token("petra", audience="billing-api"),
    ):
        assert jwt.decode(token, options={"verify_signature": False})["aud"] == "billing-api"
        with pytest.raises(jwt.InvalidAudienceError):
            verify(identity_provider, token)


def test_rotation_signs_with_the_new_key_and_publishes_it(own_idp: IdentityProvider) -> None:
    own_idp.add_client("bot", tenant_id=str(uuid.uuid4()), roles=["admin"])
    issuer = own_idp.issuer
    before = own_idp.client_token("bot")
    old_kid = jwt.get_unverified_header(before)["kid"]
    assert published_kids(own_idp) == [old_kid]

    new_kid = own_idp.rotate_keys(keep_old=True)

    after = own_idp.client_token("bot")
    assert new_kid != old_kid
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert published_kids(own_idp) == [new_kid, old_kid]
    assert own_idp.issuer == issuer
    assert httpx.get(own_idp.discovery_url).json()["issuer"] == issuer
    # Both verify: the old token by the old key, still published.
    assert verify(own_idp, before)["sub"] == verify(own_idp, after)["sub"] == "bot"

    newest = own_idp.rotate_keys(keep_old=False)

    assert published_kids(own_idp) == [newest]
    assert jwt.get_unverified_header(own_idp.client_token("bot"))["kid"] == newest
    with pytest.raises(jwt.PyJWKClientError):
        verify(own_idp, after)


def test_an_es256_key_signs_es256_tokens(own_idp: IdentityProvider) -> None:
    own_idp.add_account("erin", tenant_id=str(uuid.uuid4()), roles=["viewer"])
    rsa_kid = own_idp.signing_kid

    kid = own_idp.rotate_keys(keep_old=True, alg="ES256")
    token = own_idp.person_token("erin")

    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == ("ES256", kid)
    assert verify(own_idp, token)["sub"] == "erin"
    published = {key["kid"]: key["kty"] for key in httpx.get(own_idp.jwks_uri).json()["keys"]}
    assert published == {kid: "EC", rsa_kid: "RSA"}


def test_a_token_expires_at_its_lifetime(own_idp: IdentityProvider) -> None:
    own_idp.add_client("bot", tenant_id=str(uuid.uuid4()), roles=["admin"])
    own_idp.add_client(
        "brief-bot", tenant_id=str(uuid.uuid4()), roles=["admin"], access_token_ttl=2
    )
    own_idp.add_account("olga", tenant_id=str(uuid.uuid4()), roles=["operator"])

    lasting = verify(own_idp, own_idp.client_token("bot"))
    brief_token = own_idp.client_token("brief-bot")
    brief = verify(own_idp, brief_token)
    assert lasting["exp"] - lasting["iat"] == 300
    assert brief["exp"] - brief["iat"] == 2

    own_idp.access_token_ttl = 3  # no restart: the next tokens live 3 s
    person = verify(own_idp, own_idp.person_token("olga"))
    assert person["exp"] - person["iat"] == 3

    time.sleep(max(0.0, brief["exp"] + 1 - time.time()))
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(own_idp, brief_token)


def test_stopped_and_started_again_it_keeps_its_issuer_and_keys(
    own_idp: IdentityProvider,
) -> None:
    own_idp.add_client("bot", tenant_id=str(uuid.uuid4()), roles=["admin"])
    kid = own_idp.signing_kid
    token = own_idp.client_token("bot")

    own_idp.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(own_idp.discovery_url)
    own_idp.start()

    assert published_kids(own_idp) == [kid]
    assert verify(own_idp, token)["sub"] == "bot"
    assert jwt.get_unverified_header(own_idp.client_token("bot"))["kid"] == kid


def test_a_token_signed_with_its_key_but_not_issued_verifies_as_signed(
    identity_provider: IdentityProvider,
) -> None:
    ahead = int(time.time()) + 3600
    token = identity_provider.sign(
        {"sub": "ghost", "exp": ahead + 60, "iat": int(time.time()), "nbf": ahead}
    )

    assert jwt.get_unverified_header(token)["kid"] == identity_provider.signing_kid
    with pytest.raises(jwt.ImmatureSignatureError):
        verify(identity_provider, token)


def test_its_log_holds_no_token_code_or_secret(own_idp: IdentityProvider) -> None:
    secret = own_idp.add_client("bot", tenant_id=str(uuid.uuid4()), roles=["admin"])
    own_idp.add_account("olga", tenant_id=str(uuid.uuid4()), roles=["operator"])
    tokens = [own_idp.client_token("bot"), own_idp.person_token("olga")]
    with pytest.raises(IdentityProviderError):
        own_idp.person_token("nobody")
    own_idp.stop()

    log = own_idp.log_path.read_text()
    assert "listening on" in log
    for value in (*tokens, *(token.split(".")[2] for token in tokens), secret):
        assert value not in log


# --- a person signing in with Chromium ------------------------------------------------------


class _SignedIn(BaseHTTPRequestHandler):
    """The console's page the provider sends the browser back to: it keeps the query."""

    queries: list[dict[str, list[str]]]

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/signed-in":  # not the browser's /favicon.ico
            self.queries.append(parse_qs(url.query))
        body = b"<!DOCTYPE html><title>Signed in</title><h1>Signed in</h1>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    import os
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if browser is None or driver_path is None:
        message = "chromium and chromium-driver are not installed (apt-get install chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=ChromeService(executable_path=driver_path, port=reserve_port()), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


def test_a_person_signs_in_with_chromium_by_typing_their_account(
    identity_provider: IdentityProvider, chromium: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    class Handler(_SignedIn):
        queries: list[dict[str, list[str]]] = []

    server = ThreadingHTTPServer(("127.0.0.1", reserve_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        redirect = f"http://127.0.0.1:{server.server_address[1]}/signed-in"
        identity_provider.add_public_client("web-console", [redirect])
        tenant = str(uuid.uuid4())
        identity_provider.add_account(
            "vera", tenant_id=tenant, roles=["viewer"], name="Vera", email="vera@a.example"
        )
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        start = httpx.URL(
            identity_provider.authorization_endpoint,
            params={
                "client_id": "web-console",
                "response_type": "code",
                "redirect_uri": redirect,
                "scope": "openid profile email",
                "state": "chromium-state",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        wait = WebDriverWait(chromium, 15)

        chromium.get(str(start))
        wait.until(lambda d: d.find_elements(By.NAME, "login"))
        assert chromium.title == "Sign in"
        chromium.find_element(By.NAME, "login").send_keys("vera")
        chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.title == "Allow access")
        chromium.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: d.title == "Signed in")

        [query] = Handler.queries
        assert query["state"] == ["chromium-state"]
        # The page exchanges the code itself, across origins, as a single-page app (Swagger
        # UI's /docs) does: the provider allows its public client's redirect origin.
        exchanged = chromium.execute_async_script(
            """
            const [endpoint, form, done] = arguments;
            fetch(endpoint, {method: "POST", body: new URLSearchParams(form)})
              .then(async (r) => done({status: r.status, body: await r.json()}))
              .catch((e) => done({status: 0, body: String(e)}));
            """,
            identity_provider.token_endpoint,
            {
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": redirect,
                "client_id": "web-console",
                "code_verifier": verifier,
            },
        )
    finally:
        server.shutdown()
        server.server_close()

    assert exchanged["status"] == 200, exchanged
    claims = verify(identity_provider, exchanged["body"]["access_token"])
    assert (claims["sub"], claims["tenant_id"], claims["roles"]) == ("vera", tenant, ["viewer"])
    assert claims["client_id"] == "web-console"
