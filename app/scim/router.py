"""`/scim/v2`: a tenant's directory provisions its agents by SCIM 2.0 (RFC 7643/7644). The
answers are `application/scim+json`, errors in SCIM's own shape (RFC 7644 §3.12), not the
problem+json of /v1. Kept out of the OpenAPI document: SCIM describes itself, at its discovery
endpoints (`ServiceProviderConfig`, `ResourceTypes`, `Schemas`)."""

import json
import logging
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    ETag,
    Filter,
    ListResponse,
    Meta,
    Patch,
    ResourceType,
    SchemaExtension,
    ServiceProviderConfig,
    Sort,
)
from scim2_models import Error as ScimErrorBody
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException

from app.auth.deps import ScimAccess
from app.db.errors import UNAVAILABLE_ERRORS
from app.deps import CipherDep, DatabaseDep, SessionDep
from app.errors import AppError, negotiate
from app.scim import bulk, service
from app.scim.exceptions import (
    InvalidSyntax,
    NotImplementedHere,
    PayloadTooLarge,
    ResourceNotFound,
    ScimError,
)
from app.scim.models import AGENT_SCHEMA, USER_SCHEMA, AgentExtension, AgentResource
from app.settings import Settings
from app.tenants.service import get_tenant
from app.user_record.service import TenantUser

SCIM_MEDIA_TYPE = "application/scim+json"
PREFIX = "/scim/v2"

logger = logging.getLogger(__name__)


def scim_response(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(
        json.dumps(body, default=str),
        status_code=status,
        media_type=SCIM_MEDIA_TYPE,
        headers=headers,
    )


def error_response(
    status: int, detail: str, scim_type: str | None = None, **headers: str
) -> Response:
    body = ScimErrorBody(status=status, scim_type=scim_type, detail=detail)
    return scim_response(body.model_dump(), status, **headers)


class ScimRoute(APIRoute):
    """A route of /scim/v2: whatever goes wrong, from the credential to the database, is
    answered in SCIM's error shape, once the request's session has rolled back (its
    function-scoped dependencies end here, not outside, so that they see the error)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                async with AsyncExitStack() as function_stack:
                    request.scope["fastapi_function_astack"] = function_stack
                    return await handler(request)
            except ScimError as error:
                return error_response(error.status, error.detail, error.scim_type)
            except AppError as error:
                headers = error.response_headers() or {}
                detail = error.text(negotiate(request.headers.get("accept-language")))
                scim_type = "invalidValue" if error.status_code == 400 else None
                return error_response(error.status_code, detail, scim_type, **headers)
            except RequestValidationError as error:
                first = error.errors()[0] if error.errors() else {}
                where = ".".join(str(part) for part in first.get("loc", ()))
                return error_response(
                    400, f"{where}: {first.get('msg', 'invalid')}", "invalidValue"
                )
            except StaleDataError:
                return error_response(412, "The user changed meanwhile; read it again.")
            except HTTPException as error:
                return error_response(error.status_code, str(error.detail))
            except UNAVAILABLE_ERRORS:
                return error_response(
                    503, "The database is unavailable; try again.", None, **{"Retry-After": "5"}
                )
            except Exception:
                logger.exception("unexpected error on %s", request.url.path)
                return error_response(500, "Something went wrong on our side.")

        return scim_handler


router = APIRouter(prefix=PREFIX, route_class=ScimRoute, include_in_schema=False, tags=["scim"])


def _base_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}{PREFIX}"


def body_limit(settings: Settings) -> int:
    """What the server reads of a body on /scim/v2 before it stops reading: more than the
    largest body a route takes (`max_body_bytes`, the advertised maxPayloadSize), so that a
    body over that is answered in SCIM's own shape, here."""
    return 4 * settings.max_body_bytes


async def _body(request: Request) -> Any:
    media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media_type not in (SCIM_MEDIA_TYPE, "application/json"):
        raise InvalidSyntax(f"send the body as {SCIM_MEDIA_TYPE}")
    max_bytes = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"The request is larger than maxPayloadSize ({max_bytes} bytes).")
    raw = await request.body()
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"The request is larger than maxPayloadSize ({max_bytes} bytes).")
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise InvalidSyntax("the body is not JSON") from None


def _service_provider_config(base_url: str, max_payload_size: int) -> dict[str, Any]:
    config = ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(
            supported=True,
            max_operations=bulk.MAX_OPERATIONS,
            max_payload_size=max_payload_size,
        ),
        filter=Filter(supported=True, max_results=service.MAX_COUNT),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer credential",
                description="An API key with the scim role, or a token of the identity "
                "provider whose roles include scim.",
                primary=True,
            )
        ],
        meta=Meta(
            resource_type="ServiceProviderConfig", location=f"{base_url}/ServiceProviderConfig"
        ),
    )
    return config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def _resource_type(base_url: str) -> dict[str, Any]:
    resource_type = ResourceType(
        id="User",
        name="User",
        description="An agent of the call center",
        endpoint="/Users",
        schema_=USER_SCHEMA,
        schema_extensions=[SchemaExtension(schema_=AGENT_SCHEMA, required=True)],
        meta=Meta(resource_type="ResourceType", location=f"{base_url}/ResourceTypes/User"),
    )
    return resource_type.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


def _schemas(base_url: str) -> list[dict[str, Any]]:
    user = AgentResource.to_schema()
    user.name = "User"
    user.description = "An agent of the call center"
    extension = AgentExtension.to_schema()
    extension.name = "Agent"
    extension.description = "The agent's phone settings in AntRing"
    shown = []
    for schema in (user, extension):
        schema.meta = Meta(resource_type="Schema", location=f"{base_url}/Schemas/{schema.id}")
        shown.append(schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    return shown


def _list(resources: list[dict[str, Any]], total: int, start_index: int = 1) -> dict[str, Any]:
    return {
        "schemas": [ListResponse.__schema__],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


@router.get("/ServiceProviderConfig")
async def service_provider_config(request: Request, _scope: ScimAccess) -> Response:
    """What this SCIM service supports."""
    settings: Settings = request.app.state.settings
    return scim_response(_service_provider_config(_base_url(request), settings.max_body_bytes))


@router.get("/ResourceTypes")
async def resource_types(request: Request, _scope: ScimAccess) -> Response:
    """The resource types: User."""
    return scim_response(_list([_resource_type(_base_url(request))], 1))


@router.get("/ResourceTypes/{name}")
async def resource_type(name: str, request: Request, _scope: ScimAccess) -> Response:
    """One resource type."""
    if name != "User":
        raise ResourceNotFound(f"There is no resource type {name}.")
    return scim_response(_resource_type(_base_url(request)))


@router.get("/Schemas")
async def schemas(request: Request, _scope: ScimAccess) -> Response:
    """The User schema as kept here, and the AntRing Agent extension."""
    found = _schemas(_base_url(request))
    return scim_response(_list(found, len(found)))


@router.get("/Schemas/{schema_id}")
async def schema(schema_id: str, request: Request, _scope: ScimAccess) -> Response:
    """One schema."""
    for found in _schemas(_base_url(request)):
        if found["id"] == schema_id:
            return scim_response(found)
    raise ResourceNotFound(f"There is no schema {schema_id}.")


@router.get("/Users")
async def list_users(
    request: Request,
    session: SessionDep,
    scope: ScimAccess,
    filter: Annotated[str | None, Query(max_length=2000)] = None,
    start_index: Annotated[int, Query(alias="startIndex")] = 1,
    count: Annotated[int, Query()] = 100,
    attributes: Annotated[str | None, Query(max_length=2000)] = None,
    excluded: Annotated[str | None, Query(alias="excludedAttributes", max_length=2000)] = None,
) -> Response:
    """The tenant's agents, filtered and paged."""
    start_index = max(start_index, 1)
    count = min(max(count, 0), service.MAX_COUNT)
    resources, total = await service.list_users(
        session,
        tenant_id=scope.tenant_id,
        filter=filter,
        start_index=start_index,
        count=count,
        base_url=_base_url(request),
        shape=service.parameters(attributes, excluded),
    )
    return scim_response(_list(resources, total, start_index))


@router.post("/Users")
async def create_user(
    request: Request, session: SessionDep, cipher: CipherDep, scope: ScimAccess
) -> Response:
    """A new agent with its default web device (a retry with the same externalId: that agent)."""
    tenant = await get_tenant(session, tenant_id=scope.tenant_id)
    user = service.read_user(await _body(request), Context.RESOURCE_CREATION_REQUEST)
    shown, new = await service.create(
        session, cipher, tenant=tenant, user=user, base_url=_base_url(request)
    )
    return scim_response(
        shown.resource,
        201 if new else 200,
        Location=shown.location,
        ETag=service.version_tag(shown.version),
    )


@router.get("/Users/{user_id}")
async def get_user(
    user_id: str,
    request: Request,
    session: SessionDep,
    scope: ScimAccess,
    attributes: Annotated[str | None, Query(max_length=2000)] = None,
    excluded: Annotated[str | None, Query(alias="excludedAttributes", max_length=2000)] = None,
) -> Response:
    """One agent."""
    current = await service.require(session, tenant_id=scope.tenant_id, user_id=user_id)
    shown = await service.show(
        session,
        user=current.user,
        base_url=_base_url(request),
        shape=service.parameters(attributes, excluded),
    )
    return scim_response(shown.resource, ETag=service.version_tag(shown.version))


IfMatch = Annotated[str | None, Header(alias="If-Match")]


async def _changed_user(
    user_id: str, session: SessionDep, scope: ScimAccess, if_match: IfMatch = None
) -> TenantUser:
    """The agent a replace, PATCH or delete acts on: locked, at the version the directory read."""
    current = await service.require(
        session, tenant_id=scope.tenant_id, user_id=user_id, for_update=True
    )
    service.check_version(if_match, current.user.version)
    return current


ChangedUser = Annotated[TenantUser, Depends(_changed_user)]


@router.put("/Users/{user_id}")
async def replace_user(request: Request, session: SessionDep, current: ChangedUser) -> Response:
    """Replace an agent."""
    user = service.read_user(await _body(request), Context.RESOURCE_REPLACEMENT_REQUEST)
    shown = await service.replace(session, current=current, user=user, base_url=_base_url(request))
    return scim_response(shown.resource, ETag=service.version_tag(shown.version))


@router.patch("/Users/{user_id}")
async def patch_user(request: Request, session: SessionDep, current: ChangedUser) -> Response:
    """Change an agent by PATCH operations (`active: false` disables it at once)."""
    operations = service.read_patch(await _body(request))
    shown = await service.patch(
        session, current=current, operations=operations, base_url=_base_url(request)
    )
    return scim_response(shown.resource, ETag=service.version_tag(shown.version))


@router.delete("/Users/{user_id}")
async def delete_user(session: SessionDep, current: ChangedUser) -> Response:
    """Delete an agent as `DELETE /v1/users/{id}` does."""
    await service.delete(session, current=current)
    return Response(status_code=204)


@router.post("/Bulk")
async def bulk_operations(
    request: Request,
    db: DatabaseDep,
    cipher: CipherDep,
    scope: ScimAccess,
) -> Response:
    """Many operations on /Users in one request (RFC 7644 §3.7), each answered on its own."""
    body = await _body(request)
    operations = body.get("Operations") if isinstance(body, dict) else None
    if isinstance(operations, list) and len(operations) > bulk.MAX_OPERATIONS:
        raise PayloadTooLarge(
            f"The request has {len(operations)} operations; maxOperations is {bulk.MAX_OPERATIONS}."
        )
    answer = await bulk.run(
        db,
        cipher,
        tenant_id=scope.tenant_id,
        request=bulk.read(body),
        base_url=_base_url(request),
        language=negotiate(request.headers.get("accept-language")),
    )
    # The operations may have written events: the delivery worker looks now.
    request.app.state.dispatcher.wake()
    return scim_response(answer)


# What each endpoint allows, for the 405 of another method.
_ALLOWED = {
    "Bulk": "POST",
    "ServiceProviderConfig": "GET",
    "ResourceTypes": "GET",
    "Schemas": "GET",
    "Users": "GET, POST",
}


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def unknown(rest: str, request: Request) -> Response:
    """Anything else under /scim/v2: a method an endpoint does not allow, or no endpoint."""
    if rest == ".search" and request.method == "POST":
        raise NotImplementedHere("Searching every resource type at once is not supported.")
    parts = rest.split("/")
    allowed = _ALLOWED.get(parts[0])
    one_resource = len(parts) == 2 and parts[0] != "Bulk"
    if allowed is not None and (len(parts) == 1 or one_resource) and parts[-1]:
        if parts[0] == "Users" and len(parts) == 2:
            allowed = "GET, PUT, PATCH, DELETE"
        elif len(parts) == 2:
            allowed = "GET"
        return error_response(405, f"{request.method} is not allowed here.", Allow=allowed)
    raise ResourceNotFound(f"There is no endpoint /{rest}.")
