"""What the document and /docs say of access: each route's roles, and the identity provider's
sign-in (OpenID Connect, authorization code with PKCE) beside the API key."""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts

from app.auth.models import Role
from app.auth.tokens import TokenVerifier
from app.settings import Settings

OIDC_SCHEME = "OpenIdConnect"
_BEARER_SCHEME = "HTTPBearer"
# Where fastapi-offline serves Swagger UI's files.
_STATIC = "/static-offline-docs"


def _marks(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        if dependency.call is not None and hasattr(dependency.call, "roles"):
            yield dependency.call
        yield from _marks(dependency)


def _route_roles(app: FastAPI) -> dict[tuple[str, str], tuple[list[str], bool]]:
    """(path, method) -> the roles that may call it, and whether only platform keys may."""
    found: dict[tuple[str, str], tuple[list[str], bool]] = {}
    for context in iter_route_contexts(app.routes):
        route = context.route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        marks = list(_marks(route.dependant))
        if not marks:
            continue
        # Every check a route makes must pass: the roles all of them let in.
        allowed = set(Role)
        for mark in marks:
            allowed &= set(mark.roles)
        names = [role.value for role in Role if role in allowed]
        platform = any(getattr(mark, "platform", False) for mark in marks)
        for method in route.methods or ():
            found[(route.path_format, method.lower())] = (names, platform)
    return found


def describe_roles(app: FastAPI) -> None:
    """Writes into each operation's description the roles that may call it (`x-roles` too)."""
    build = app.openapi
    described: list[bool] = []

    def openapi() -> dict[str, Any]:
        schema = build()
        if described:
            return schema
        for (path, method), (names, platform) in _route_roles(app).items():
            operation = schema.get("paths", {}).get(path, {}).get(method)
            if operation is None:
                continue
            who = " (platform keys only)" if platform else ""
            roles = f"**Roles**: {', '.join(names)}{who}."
            operation["description"] = f"{operation.get('description', '')}\n\n{roles}".strip()
            operation["x-roles"] = names
        described.append(True)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# What /docs asks the provider for: who the person is, their name and e-mail.
SIGN_IN_SCOPES = {
    "openid": "Sign in with OpenID Connect.",
    "profile": "Your name, for the audit trail.",
    "email": "Your e-mail address, for the audit trail.",
}


def _sign_in_scheme(app: FastAPI, discovery: str) -> dict[str, Any]:
    """The provider's sign-in as the document offers it: once its discovery document has
    been read, OAuth 2 with the authorization code flow alone (the flow a person signs in
    with; Swagger UI adds PKCE), rather than every grant the provider supports, which an
    `openIdConnect` scheme would let Swagger UI offer (implicit, client credentials, refresh
    tokens); until then, the `openIdConnect` scheme."""
    description = (
        "A person signed in at the platform's identity provider: its access token as "
        "`Authorization: Bearer <token>`."
    )
    verifier: TokenVerifier | None = getattr(app.state, "token_verifier", None)
    endpoints = verifier.keys.endpoints if verifier is not None else None
    if endpoints is None:
        return {"type": "openIdConnect", "openIdConnectUrl": discovery, "description": description}
    return {
        "type": "oauth2",
        "description": f"{description} Provider: `{discovery}`.",
        "flows": {
            "authorizationCode": {
                "authorizationUrl": endpoints.authorization,
                "tokenUrl": endpoints.token,
                "scopes": SIGN_IN_SCOPES,
            }
        },
    }


def offer_sign_in(app: FastAPI, settings: Settings) -> None:
    """With an identity provider configured: its sign-in in the document, as an alternative to
    the key on every route that takes a bearer credential."""
    if not settings.oidc_issuer:
        return
    discovery = f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration"
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        offered = schemes.get(OIDC_SCHEME)
        if offered is not None:
            if offered["type"] == "openIdConnect":
                # Built before the provider could be read: the flow alone once it can.
                schemes[OIDC_SCHEME] = _sign_in_scheme(app, discovery)
            return schema
        schemes[OIDC_SCHEME] = _sign_in_scheme(app, discovery)
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                security = operation.get("security") if isinstance(operation, dict) else None
                if security and any(_BEARER_SCHEME in entry for entry in security):
                    security.append({OIDC_SCHEME: []})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def swagger_ui(app: FastAPI, settings: Settings, *, path: str = "/docs") -> None:
    """/docs from the files fastapi-offline ships, signing in with the identity provider's
    public client (authorization code with PKCE) when one is configured."""
    redirect = f"{path}/oauth2-redirect"
    init_oauth = (
        {
            "clientId": settings.oidc_docs_client_id,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": " ".join(SIGN_IN_SCOPES),
        }
        if settings.oidc_issuer and settings.oidc_docs_client_id
        else None
    )

    @app.get(path, include_in_schema=False)
    async def docs_page(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect}",
            swagger_js_url=f"{root}{_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{_STATIC}/favicon.png",
            init_oauth=init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(redirect, include_in_schema=False)
    async def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
