"""Access tokens from the platform's OpenID Connect provider.

The provider's signing keys come from its discovery document and JWKS. They are kept for
`oidc_keys_cache_seconds`, read again at once for a token signed by a key not yet known (at most
once per `oidc_keys_min_refresh_seconds`, however many such tokens arrive), and kept when the
provider cannot be reached, so tokens signed by known keys go on working. A token's signature is
checked with its header's algorithm only if that is on the allow-list (asymmetric algorithms
only: never `none`, never an HMAC whose key would be the provider's public key) and the key is
of that algorithm's kind; then `exp`, `nbf`, `iat`, `iss` and `aud`, with a small leeway. The
tenant and the role come from the claims the settings name.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from app.auth.models import Role
from app.auth.principal import ROLE_PRECEDENCE, ActorKind, Principal, token_principal_id
from app.errors import Code
from app.settings import Settings

logger = logging.getLogger(__name__)

# A JWT's three parts; an API key has none of these dots.
_JWT_DOTS = 2
_MAX_TOKEN_BYTES = 8192
_CACHE_LIMIT = 10_000
_ROLE_NAMES = {role.value: role for role in Role}


class TokenRejected(Exception):
    """The token is not valid (the rule it breaks): 401, with `error="invalid_token"`."""

    def __init__(self, rule: Code, **params: Any) -> None:
        super().__init__(rule.value)
        self.rule = rule
        self.params = params


class ClaimRejected(Exception):
    """A valid token whose claims give no tenant or no role here: 403, naming the claim."""

    def __init__(self, rule: Code, *, claim: str, **params: Any) -> None:
        super().__init__(rule.value)
        self.rule = rule
        self.claim = claim
        self.params = params


class ProviderUnavailable(Exception):
    """The token names a key this process does not know and the provider cannot be read."""


def looks_like_token(credential: str) -> bool:
    return credential.count(".") == _JWT_DOTS


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by its name, else by a dotted path into nested objects."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class SignInEndpoints:
    """Where a person signs in at the provider (its discovery document's endpoints)."""

    authorization: str
    token: str


def _endpoint(discovery: dict[str, Any], name: str) -> str | None:
    value = discovery.get(name)
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


class ProviderKeys:
    """The provider's signing keys by `kid`, read from its JWKS, and (from its discovery
    document) where people sign in."""

    def __init__(
        self,
        issuer: str,
        *,
        cache_seconds: float,
        min_refresh_seconds: float,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        # Imported by a process that has an identity provider to ask, only.
        import httpx

        self._http = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False)
        self._jwks_uri: str | None = None
        self.endpoints: SignInEndpoints | None = None
        self._keys: dict[str, dict[str, Any]] = {}
        self._prepared: dict[tuple[str, str], jwt.PyJWK] = {}
        self._read_at = -float("inf")
        self._tried_at = -float("inf")
        # The last reading failed (the provider could not be reached or answered nonsense).
        self._unreadable = False
        self._reading: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        await self._http.aclose()

    async def read(self) -> None:
        """Reads the discovery document and the keys now (at start, so the first tokens do not
        wait); a provider that cannot be reached leaves them to the first token."""
        await asyncio.shield(self._start_reading())

    async def key(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        """The key that signed a token, prepared for `algorithm`."""
        now = time.monotonic()
        stale = now - self._read_at > self._cache_seconds
        known = kid in self._keys if kid is not None else len(self._keys) == 1
        if (stale or not known) and now - self._tried_at >= self._min_refresh_seconds:
            # Stale but known: the key is used while the keys are read again.
            self._start_reading()
        if not known and self._reading is not None and not self._reading.done():
            # A reading under way, started by this request or another, may bring the key: the
            # requests that arrive while it runs (the first ones after a start) wait for it too.
            await asyncio.shield(self._reading)
        if kid is None:
            if len(self._keys) != 1 and self._unreadable:
                raise ProviderUnavailable()
            if len(self._keys) != 1:
                raise TokenRejected(Code.token_no_kid)
            kid = next(iter(self._keys))
        jwk = self._keys.get(kid)
        if jwk is None:
            if self._unreadable:
                raise ProviderUnavailable()
            raise TokenRejected(Code.token_key_unknown)
        prepared = self._prepared.get((kid, algorithm))
        if prepared is None:
            if jwk.get("alg") not in (None, algorithm):
                raise TokenRejected(Code.token_key_algorithm, algorithm=algorithm)
            try:
                prepared = jwt.PyJWK(jwk, algorithm=algorithm)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                raise TokenRejected(Code.token_key_algorithm, algorithm=algorithm) from None
            self._prepared[(kid, algorithm)] = prepared
        return prepared

    def _start_reading(self) -> "asyncio.Task[None]":
        # One reading at a time: every request that needs the keys waits for the same one.
        if self._reading is None or self._reading.done():
            self._tried_at = time.monotonic()
            self._reading = asyncio.get_running_loop().create_task(self._read())
        return self._reading

    async def _read(self) -> None:
        import httpx

        try:
            if self._jwks_uri is None:
                discovery = await self._get_json(f"{self._issuer}/.well-known/openid-configuration")
                if str(discovery.get("issuer", "")).rstrip("/") != self._issuer:
                    raise ValueError("the discovery document names another issuer")
                jwks_uri = discovery.get("jwks_uri")
                if not isinstance(jwks_uri, str) or not jwks_uri.startswith(
                    ("https://", "http://")
                ):
                    raise ValueError("the discovery document has no jwks_uri")
                self._jwks_uri = jwks_uri
                authorization = _endpoint(discovery, "authorization_endpoint")
                token = _endpoint(discovery, "token_endpoint")
                if authorization and token:
                    self.endpoints = SignInEndpoints(authorization=authorization, token=token)
            jwks = await self._get_json(self._jwks_uri)
            keys = {
                str(key["kid"]): key
                for key in jwks.get("keys", [])
                if isinstance(key, dict) and key.get("use", "sig") == "sig" and "kid" in key
            }
            if not keys:
                raise ValueError("the JWKS has no signing key")
        except (httpx.HTTPError, ValueError) as exc:
            # The keys already known go on being used.
            logger.warning("Could not read the identity provider's keys: %s", exc)
            self._unreadable = True
            return
        self._unreadable = False
        if keys != self._keys:
            self._prepared.clear()
        self._keys = keys
        self._read_at = time.monotonic()

    async def _get_json(self, url: str) -> dict[str, Any]:
        response = await self._http.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return body


class TokenVerifier:
    """Turns a bearer token into a Principal, or says why it cannot."""

    def __init__(
        self,
        settings: Settings,
        *,
        tenant_exists: Callable[[uuid.UUID], Awaitable[bool]],
        cache_seconds: float,
    ) -> None:
        assert settings.oidc_issuer and settings.oidc_audience
        self._issuer = settings.oidc_issuer
        self._audience = settings.oidc_audience
        self._algorithms = list(settings.oidc_algorithms)
        self._leeway = settings.oidc_leeway_seconds
        self._tenant_claim = settings.oidc_tenant_claim
        self._roles_claim = settings.oidc_roles_claim
        self._role_prefix = settings.oidc_role_prefix
        self.keys = ProviderKeys(
            settings.oidc_issuer,
            cache_seconds=settings.oidc_keys_cache_seconds,
            min_refresh_seconds=settings.oidc_keys_min_refresh_seconds,
        )
        self._tenant_exists = tenant_exists
        self._cache_seconds = cache_seconds
        # A token checked lately, and its principal, until the sooner of its expiry and the
        # cache's; so is a tenant found.
        self._checked: dict[str, tuple[float, Principal]] = {}
        self._tenants: dict[uuid.UUID, float] = {}

    async def close(self) -> None:
        await self.keys.close()

    async def verify(self, token: str) -> Principal:
        now = time.monotonic()
        cached = self._checked.get(token)
        if cached is not None and cached[0] > now:
            principal = cached[1]
            if principal.expires_at is None or principal.expires_at > datetime.now(UTC):
                return principal
        principal = await self._verify(token)
        if len(self._checked) > _CACHE_LIMIT:
            self._checked.clear()
        self._checked[token] = (now + self._cache_seconds, principal)
        return principal

    async def _verify(self, token: str) -> Principal:
        if len(token) > _MAX_TOKEN_BYTES:
            raise TokenRejected(Code.token_too_long)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenRejected(Code.credential_not_recognised) from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise TokenRejected(
                Code.token_algorithm, algorithm=str(algorithm)[:20], allowed=self._algorithms
            )
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None, algorithm)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected(Code.token_expired) from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected(Code.token_not_yet_valid) from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(Code.token_audience, audience=self._audience) from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(Code.token_issuer, issuer=self._issuer) from None
        except jwt.InvalidSignatureError:
            raise TokenRejected(Code.token_signature) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(Code.token_claim_missing, claim=exc.claim) from None
        except jwt.InvalidTokenError:
            raise TokenRejected(Code.token_invalid) from None
        return await self._principal(claims)

    async def _principal(self, claims: dict[str, Any]) -> Principal:
        subject = _text(claims.get("sub"), 255)
        if subject is None:
            raise TokenRejected(Code.token_claim_missing, claim="sub")
        tenant_id = await self._tenant(claims)
        return Principal(
            id=token_principal_id(self._issuer, subject),
            tenant_id=tenant_id,
            role=self._role(claims),
            name=_text(claims.get("name"), 200)
            or _text(claims.get("preferred_username"), 200)
            or "",
            kind=ActorKind.token,
            subject=subject,
            email=_text(claims.get("email"), 320),
            client_id=_text(claims.get("client_id"), 255) or _text(claims.get("azp"), 255),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )

    async def _tenant(self, claims: dict[str, Any]) -> uuid.UUID:
        name = self._tenant_claim
        value = _claim(claims, name)
        if value is None or value == "":
            raise ClaimRejected(Code.token_tenant_missing, claim=name)
        try:
            tenant_id = uuid.UUID(str(value))
        except ValueError:
            raise ClaimRejected(Code.token_tenant_invalid, claim=name) from None
        now = time.monotonic()
        if self._tenants.get(tenant_id, 0.0) <= now:
            if not await self._tenant_exists(tenant_id):
                raise ClaimRejected(Code.token_tenant_unknown, claim=name)
            if len(self._tenants) > _CACHE_LIMIT:
                self._tenants.clear()
            self._tenants[tenant_id] = now + self._cache_seconds
        return tenant_id

    def _role(self, claims: dict[str, Any]) -> Role:
        name = self._roles_claim
        value = _claim(claims, name)
        listed = value.split() if isinstance(value, str) else value
        held: set[Role] = set()
        if isinstance(listed, list):
            for entry in listed:
                if isinstance(entry, str) and entry.startswith(self._role_prefix):
                    role = _ROLE_NAMES.get(entry[len(self._role_prefix) :])
                    if role is not None:
                        held.add(role)
        for role in ROLE_PRECEDENCE:
            if role in held:
                return role
        roles = [f"{self._role_prefix}{role.value}" for role in ROLE_PRECEDENCE]
        raise ClaimRejected(Code.token_role_missing, claim=name, roles=roles)
