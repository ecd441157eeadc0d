"""A real OpenID Connect provider for the tests: oidc-provider (tests/idp/provider.mjs) on
127.0.0.1, with the accounts, clients, audience and signing keys a test gives it.

Tokens come through the provider's real flows over HTTP: a person's through the authorization
code flow with PKCE (the sign-in and consent forms filled in as a browser would), a machine's
through client credentials. Access tokens are JWTs (`typ: at+jwt`) signed by the provider's
keys, published at `jwks_uri`:

    with IdentityProvider(tmp_path) as idp:
        idp.add_account("olga", tenant_id=tenant, roles=["operator"], name="Olga", email="o@x.org")
        token = idp.person_token("olga")

The provider's output goes to `log_path`; nothing here or there prints a token, a code or a
secret. Without node or the npm packages (`npm ci --prefix tests/idp`) the tests that need the
provider skip, and fail in CI.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.helpers.ports import LOCALHOST, reserve_port

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = ROOT / "tests" / "idp"
PROVIDER_SCRIPT = PROVIDER_DIR / "provider.mjs"
DEFAULT_AUDIENCE = "antring-api"
# The public client people sign in with, and where it says the provider sends them back (a
# test reads the code off the redirect; nothing listens there).
CONSOLE = "console"
CONSOLE_REDIRECT = "http://127.0.0.1/console/signed-in"
SIGNING_ALGORITHMS = ("RS256", "ES256")


class IdentityProviderError(RuntimeError):
    """The provider refused a sign-in or a token request (the message says why, never with a
    token, code or secret in it)."""


def missing() -> str | None:
    """Why the provider cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed; the OpenID Connect provider tests need Node.js 20.19+"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        return (
            "the OpenID Connect provider's packages are not installed; run "
            "`npm ci --ignore-scripts --no-audit --no-fund --prefix tests/idp`"
        )
    return None


def require_provider() -> None:
    """Skips the test when the provider cannot run here; fails it in CI, where that is a broken
    setup."""
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def indicator_for(audience: str) -> str:
    """The resource indicator (RFC 8707, an absolute URI) a client asks for `audience` with; the
    provider maps it back the same way."""
    parts = urlsplit(audience)
    if parts.scheme and (parts.netloc or parts.path):
        return audience
    # As JavaScript's encodeURIComponent, which the provider uses.
    return "urn:audience:" + quote(audience, safe="-_.!~*'()")


def new_signing_key(alg: str = "RS256") -> dict[str, Any]:
    """A fresh private JWK for `alg` (RS256: RSA 2048; ES256: EC P-256) with a new `kid`."""
    jwk: dict[str, Any]
    if alg == "RS256":
        jwk = dict(RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048), as_dict=True))
    elif alg == "ES256":
        jwk = dict(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True))
    else:
        raise ValueError(f"alg must be one of {', '.join(SIGNING_ALGORITHMS)}, not {alg!r}")
    jwk.update(kid=f"{alg.lower()}-{uuid.uuid4().hex[:12]}", use="sig", alg=alg)
    return jwk


def public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    private = {"d", "p", "q", "dp", "dq", "qi"}
    return {name: value for name, value in jwk.items() if name not in private}


class _Forms(HTMLParser):
    """The forms of a page: action, method and the inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.alerts: list[str] = []
        self._in_alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "action": attributes.get("action", ""),
                    "method": attributes.get("method", "get").lower(),
                    "fields": {},
                }
            )
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")
        elif attributes.get("role") == "alert":
            self._in_alert = True

    def handle_endtag(self, tag: str) -> None:
        self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._in_alert and data.strip():
            self.alerts.append(data.strip())


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _token_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"HTTP {response.status_code} {body.get('error')}: {body.get('error_description')}"


class IdentityProvider:
    """oidc-provider in a process of its own on a reserved port of 127.0.0.1.

    `issuer` is `http://127.0.0.1:<port>`; the port stays the same across `stop()`/`start()`,
    `restart()` and `rotate_keys()`, so a service keeps its issuer URL. Accounts, clients, the
    audiences and the tokens' lifetime may change while it runs (the provider reads its file
    again); the keys change by `rotate_keys()`, which restarts it.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        audience: str = DEFAULT_AUDIENCE,
        access_token_ttl: int = 300,
        alg: str = "RS256",
        console_redirect_uris: Sequence[str] = (CONSOLE_REDIRECT,),
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = reserve_port()
        self.issuer = f"http://{LOCALHOST}:{self.port}"
        self.log_path = self.workdir / "idp.log"
        self._config_path = self.workdir / "idp.json"
        self._config: dict[str, Any] = {
            "port": self.port,
            "audience": audience,
            "other_audiences": [],
            "access_token_alg": alg,
            "access_token_ttl": access_token_ttl,
            "keys": {"keys": [new_signing_key(alg)]},
            "accounts": {},
            "clients": {CONSOLE: {"redirect_uris": list(console_redirect_uris)}},
        }
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._write()

    # --- what a service is configured with ----------------------------------------------

    @property
    def audience(self) -> str:
        return str(self._config["audience"])

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    # --- accounts and clients -------------------------------------------------------------

    def add_account(
        self,
        account_id: str,
        *,
        tenant_id: str | None,
        roles: Sequence[str] | None,
        name: str | None = None,
        email: str | None = None,
        **claims: Any,
    ) -> None:
        """A person who signs in by typing `account_id`. Their access tokens carry `sub` =
        `account_id` and these claims (`tenant_id`, `roles`, `name`, `email` and any other,
        e.g. `realm_access={"roles": [...]}`); a claim given as None is left out."""
        values = {"tenant_id": tenant_id, "roles": roles, "name": name, "email": email, **claims}
        self._config["accounts"][account_id] = _present(values)
        self._write()

    def add_client(
        self,
        client_id: str,
        *,
        tenant_id: str | None,
        roles: Sequence[str] | None,
        name: str | None = None,
        secret: str | None = None,
        access_token_ttl: int | None = None,
        **claims: Any,
    ) -> str:
        """A machine client (client credentials grant) whose access tokens carry `sub` =
        `client_id`, `client_id` and these claims; returns its secret."""
        secret = secret or secrets.token_urlsafe(32)
        values = {"tenant_id": tenant_id, "roles": roles, "name": name, **claims}
        entry: dict[str, Any] = {"client_secret": secret, "claims": _present(values)}
        if access_token_ttl is not None:
            entry["access_token_ttl"] = access_token_ttl
        self._config["clients"][client_id] = entry
        self._write()
        return secret

    def add_public_client(
        self, client_id: str, redirect_uris: Sequence[str], *, access_token_ttl: int | None = None
    ) -> None:
        """A public client people sign in with (authorization code, PKCE S256 required, no
        secret), e.g. a second console whose tokens live `access_token_ttl` seconds."""
        entry: dict[str, Any] = {"redirect_uris": list(redirect_uris)}
        if access_token_ttl is not None:
            entry["access_token_ttl"] = access_token_ttl
        self._config["clients"][client_id] = entry
        self._write()

    def add_redirect_uri(self, uri: str, client_id: str = CONSOLE) -> None:
        """Lets a public client (the console unless named) send people back to `uri`, such as
        Swagger UI's `http://127.0.0.1:<port>/docs/oauth2-redirect`."""
        uris = self._config["clients"][client_id]["redirect_uris"]
        if uri not in uris:
            uris.append(uri)
        self._write()

    def add_audience(self, audience: str) -> None:
        """Another API a client may ask a token for (`audience=` below): a token the service
        under test must refuse for its audience."""
        if audience not in self._config["other_audiences"]:
            self._config["other_audiences"].append(audience)
        self._write()

    @property
    def access_token_ttl(self) -> int:
        """The access tokens' lifetime in seconds (a client's own `access_token_ttl` wins); a
        change applies to the next token, without a restart."""
        return int(self._config["access_token_ttl"])

    @access_token_ttl.setter
    def access_token_ttl(self, seconds: int) -> None:
        self._config["access_token_ttl"] = int(seconds)
        self._write()

    # --- tokens through the provider's flows ---------------------------------------------

    def person_token(
        self, account_id: str, *, client_id: str = CONSOLE, audience: str | None = None
    ) -> str:
        """An access token for the person `account_id`, through the authorization code flow
        with PKCE: the sign-in form (the account id typed in), the consent form, the redirect
        with the code, and the code exchanged with its verifier. `audience` asks for another of
        the provider's audiences (`add_audience`) instead of the default."""
        redirect_uri = self._config["clients"][client_id]["redirect_uris"][0]
        verifier, challenge = _pkce_pair()
        state = secrets.token_urlsafe(16)
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if audience is not None:
            params["resource"] = indicator_for(audience)
        with httpx.Client(timeout=10.0, follow_redirects=False) as browser:
            response = browser.get(self.authorization_endpoint, params=params)
            location = self._sign_in(browser, response, account_id, redirect_uri)
            query = parse_qs(urlsplit(location).query)
            if "error" in query:
                raise IdentityProviderError(
                    f"sign-in as {account_id!r} refused: {query['error'][0]}: "
                    f"{query.get('error_description', [''])[0]}"
                )
            if query.get("state") != [state]:
                raise IdentityProviderError("the redirect back carried another state")
            token = browser.post(
                self.token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": query["code"][0],
                    "redirect_uri": redirect_uri,
                    "client_id": client_id,
                    "code_verifier": verifier,
                },
            )
        if token.status_code != 200:
            raise IdentityProviderError(f"code exchange for {account_id!r}: {_token_error(token)}")
        return str(token.json()["access_token"])

    def _sign_in(
        self, browser: httpx.Client, response: httpx.Response, account_id: str, redirect_uri: str
    ) -> str:
        """Follows the provider's pages as a browser would, filling each form in, until it
        sends the browser back to `redirect_uri`; returns that URL."""
        for _ in range(12):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_uri):
                    return location
                response = browser.get(location)
                continue
            page = _Forms()
            page.feed(response.text)
            if response.status_code != 200 or not page.forms:
                why = "; ".join(page.alerts) or response.reason_phrase
                raise IdentityProviderError(
                    f"sign-in as {account_id!r} stopped at {response.url.path}: "
                    f"HTTP {response.status_code} {why}"
                )
            form = page.forms[0]
            fields = dict(form["fields"])
            if "login" in fields:
                fields["login"] = account_id
            action = urljoin(str(response.url), form["action"])
            if form["method"] == "post":
                response = browser.post(action, data=fields)
            else:
                response = browser.get(action, params=fields)
        raise IdentityProviderError(f"sign-in as {account_id!r} never came back")

    def client_token(self, client_id: str, *, audience: str | None = None) -> str:
        """An access token for the machine client `client_id` (client credentials)."""
        entry = self._config["clients"][client_id]
        data = {"grant_type": "client_credentials"}
        if audience is not None:
            data["resource"] = indicator_for(audience)
        response = httpx.post(
            self.token_endpoint,
            data=data,
            auth=(client_id, entry["client_secret"]),
            timeout=10.0,
        )
        if response.status_code != 200:
            raise IdentityProviderError(
                f"client credentials for {client_id!r}: {_token_error(response)}"
            )
        return str(response.json()["access_token"])

    # --- keys --------------------------------------------------------------------------------

    @property
    def keys(self) -> list[dict[str, Any]]:
        """The private JWKs, the signing one first (for a test that signs a token itself)."""
        return [dict(key) for key in self._config["keys"]["keys"]]

    @property
    def signing_kid(self) -> str:
        alg = self._config["access_token_alg"]
        return str(next(key["kid"] for key in self._config["keys"]["keys"] if key["alg"] == alg))

    def public_jwks(self) -> dict[str, Any]:
        """The JWKS the provider publishes, as it should be (the private parts left out)."""
        return {"keys": [public_jwk(key) for key in self._config["keys"]["keys"]]}

    def sign(self, claims: dict[str, Any], *, headers: dict[str, Any] | None = None) -> str:
        """A JWT over `claims` signed by the provider's signing key and `kid`, but not issued
        by it: for claims no flow gives (an `nbf` ahead, a missing claim). `iss` and `aud`
        are this provider's unless `claims` names them."""
        key = next(k for k in self.keys if k["kid"] == self.signing_kid)
        alg = key["alg"]
        private = (RSAAlgorithm if alg.startswith("RS") else ECAlgorithm).from_jwk(key)
        payload = {"iss": self.issuer, "aud": self.audience, **claims}
        header = {"kid": key["kid"], "typ": "at+jwt", **(headers or {})}
        return jwt.encode(payload, private, algorithm=alg, headers=header)  # type: ignore[arg-type]

    def rotate_keys(self, *, keep_old: bool = True, alg: str | None = None) -> str:
        """Restarts the provider on the same port with a new signing key (of `alg`, the current
        algorithm unless given) first; with `keep_old`, the old keys stay published (but no
        longer sign). Returns the new key's `kid`."""
        alg = alg or str(self._config["access_token_alg"])
        new = new_signing_key(alg)
        old = self._config["keys"]["keys"] if keep_old else []
        self._config["keys"] = {"keys": [new, *old]}
        self._config["access_token_alg"] = alg
        self._write()
        if self.running:
            self.restart()
        return str(new["kid"])

    # --- the process ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        """Starts the provider and waits until it serves its discovery document."""
        if self.running:
            return
        reason = missing()
        if reason is not None:
            raise RuntimeError(reason)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            ["node", str(PROVIDER_SCRIPT), str(self._config_path)],
            cwd=PROVIDER_DIR,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "NODE_ENV": "test", "NO_COLOR": "1"},
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._close()
                raise RuntimeError(f"the OpenID Connect provider exited {code}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.discovery_url, timeout=2.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the OpenID Connect provider did not answer at {self.discovery_url} "
                    f"within {timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stops the provider (tokens already issued stay valid until they expire)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=5.0)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """Stops the process without ending it: connections are accepted but never answered
        (a provider that hangs rather than one that is down)."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _close(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _write(self) -> None:
        # A new file in place of the old (the provider sees a whole file, never half of one);
        # it holds the private keys and the clients' secrets, so it is the user's alone.
        temporary = self._config_path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self._config, out, indent=2)
        os.replace(temporary, self._config_path)

    def __enter__(self) -> IdentityProvider:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


@pytest.fixture(scope="session")
def identity_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityProvider]:
    """One provider for the session (import this fixture into a conftest). A test that rotates
    keys or stops the provider should start its own `IdentityProvider` instead."""
    require_provider()
    idp = IdentityProvider(tmp_path_factory.mktemp("idp"))
    idp.start()
    try:
        yield idp
    finally:
        idp.stop()
