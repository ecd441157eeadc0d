"""One error format for the whole API: RFC 9457 problem details (application/problem+json)."""

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.db.errors import UNAVAILABLE_ERRORS, database_unavailable

DUPLICATE_KEY = "duplicate key"

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where the error is: location and field name, dotted.")
    message: str
    type: str = Field(description="Machine-readable reason.")
    row: int | None = Field(
        default=None,
        description="In a file (an import): its row, the CSV header being row 1 (JSON lines: "
        "the line).",
        examples=[812],
    )
    column: str | None = Field(
        default=None, description="In a file (an import): the column.", examples=["extensions"]
    )


class Problem(BaseModel):
    type: str = Field(examples=["urn:antring:problem:extension-taken"])
    title: str = Field(examples=["Extension taken"])
    status: int = Field(examples=[409])
    detail: str | None = Field(default=None, examples=["Extension 102 is already assigned."])
    errors: list[FieldError] | None = Field(
        default=None, description="Present on validation errors: one entry per bad field."
    )
    request_id: str | None = Field(
        default=None,
        description="The request's id (X-Request-ID), to quote when asking about it.",
        examples=["a84b4c76e66710@pc33"],
    )


class AppError(Exception):
    """Base of every domain failure; subclasses set the status, code and title."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors

    def response_headers(self) -> dict[str, str] | None:
        return self.headers


class NotFound(AppError):
    status_code = 404
    code = "not-found"
    title = "Not found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class InvalidInput(AppError):
    status_code = 422
    code = "validation-error"
    title = "Invalid input"

    def __init__(self, field: str, message: str, *, type: str = "value_error") -> None:
        super().__init__(message, errors=[FieldError(field=field, message=message, type=type)])


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    title = "Unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class PreconditionFailed(AppError):
    status_code = 412
    code = "precondition-failed"
    title = "Precondition failed"


class TooManyRequests(AppError):
    status_code = 429
    code = "too-many-failed-authentications"
    title = "Too many failed authentications"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(AppError):
    status_code = 503
    code = "database-unavailable"
    title = "Service unavailable"
    headers = {"Retry-After": "1"}


def problem_type(code: str) -> str:
    return f"urn:antring:problem:{code}"


def problem_response(
    status: int,
    title: str,
    *,
    code: str | None = None,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=problem_type(code) if code else "about:blank",
        title=title,
        status=status,
        detail=detail,
        errors=errors,
        request_id=correlation_id.get(),
    )
    return _problem_json(body, headers=headers)


def _problem_json(body: Problem, *, headers: dict[str, str] | None) -> JSONResponse:
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=body.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_of(exc: AppError) -> Problem:
    """The problem a domain failure is, whether it is answered or listed in an answer (a batch's
    refused items)."""
    return Problem(
        type=problem_type(exc.code),
        title=exc.title,
        status=exc.status_code,
        detail=exc.detail,
        errors=exc.errors,
        request_id=correlation_id.get(),
    )


def error_response(exc: AppError) -> JSONResponse:
    """The problem+json answer for a domain failure (what a raised one gets too)."""
    return _problem_json(problem_of(exc), headers=exc.response_headers())


@dataclass(frozen=True)
class ResponseHeaders:
    """Headers a route's answer with this status carries, for the OpenAPI document."""

    status: int
    headers: dict[str, str]


# A 201 says where the new resource is; a versioned resource's answer carries its ETag.
CREATED = ResponseHeaders(201, {"Location": "Where the new resource can be read."})
VERSIONED = ResponseHeaders(
    200, {"ETag": "The resource's version: send it as If-Match with a change."}
)


def responses(*items: type[AppError] | ResponseHeaders) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route, from the errors it can raise and the headers it sends."""
    out: dict[int | str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, ResponseHeaders):
            entry = out.setdefault(item.status, {})
            entry["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in item.headers.items()
            }
            continue
        entry = out.setdefault(item.status_code, {"model": Problem, "description": ""})
        entry["description"] = "; ".join(filter(None, [entry["description"], item.title]))
    return out


# What any route may answer besides its own errors, and when.
_EVERY_ROUTE = {"431": "Request header fields too large"}
_WITH_A_KEY = {
    "401": "Unauthorized",
    "429": "Too many failed authentications from this address; see Retry-After",
    "503": "The database cannot be reached or did not answer in time; retry after Retry-After",
}
_WITH_A_BODY = {
    "413": "Request body too large",
    "415": "The body is not declared JSON",
    "422": "Invalid input: `errors` names each bad field",
}


def _without_null(schema: dict[str, Any]) -> None:
    """A parameter is either sent as text or not sent: FastAPI's `anyOf [..., null]` for an
    optional one would have clients send the text `null`."""
    variants = [v for v in schema.get("anyOf", []) if v != {"type": "null"}]
    if len(variants) == 1:
        del schema["anyOf"]
        schema.update(variants[0])
    elif variants:
        schema["anyOf"] = variants


# What an operation's answer gives the operations that act on what it made or listed: its
# operationId and status, and each path parameter with where its value is (a runtime expression).
Producers = dict[tuple[str, str], dict[str, str]]


def _link(schema: dict[str, Any], producers: Producers) -> None:
    """OpenAPI links from each producer's answer to every operation whose path parameters it
    gives values for: the id a create answers reaches the routes that act on it."""
    operations = [
        (
            operation["operationId"],
            {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"},
        )
        for item in schema["paths"].values()
        for operation in item.values()
    ]
    by_id = {
        operation["operationId"]: operation
        for item in schema["paths"].values()
        for operation in item.values()
    }
    for (producer, status), given in producers.items():
        response = by_id[producer]["responses"][status]
        links = response.setdefault("links", {})
        for target, needed in operations:
            if target != producer and needed and needed <= given.keys():
                links[target] = {
                    "operationId": target,
                    "parameters": {name: given[name] for name in sorted(needed)},
                }


def problem_openapi(app: FastAPI, *, links: Producers | None = None) -> None:
    """Makes /docs tell the truth: every error response is problem+json, 422 included (FastAPI
    documents its own validation body otherwise), every route lists the statuses any route may
    answer (431; with a key 401, 429, 503; with a body 413, 415, 422), and an optional parameter
    is one that may be left out, not one that may be null."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
        for path, item in schema["paths"].items():
            for operation in item.values():
                for parameter in operation.get("parameters", []):
                    _without_null(parameter["schema"])
                answers = operation.setdefault("responses", {})
                extra = dict(_EVERY_ROUTE)
                if path.startswith("/v1/"):
                    extra.update(_WITH_A_KEY)
                if path == "/health/ready":
                    extra["503"] = "The database cannot be reached"
                if "requestBody" in operation:
                    extra.update(_WITH_A_BODY)
                for status, description in extra.items():
                    answers.setdefault(status, {"description": description})
                for status, response in answers.items():
                    own_body = path.startswith("/health") and status == "503"
                    if status.startswith(("4", "5")) and not own_body:
                        response["content"] = {PROBLEM_MEDIA_TYPE: problem}
                        response["description"] = response.get("description") or (
                            HTTPStatus(int(status)).phrase
                        )
                    if status == "422":
                        response["description"] = _WITH_A_BODY["422"]
                    if status == "503":
                        response.setdefault("headers", {})["Retry-After"] = {
                            "description": "Seconds to wait before retrying.",
                            "schema": {"type": "integer"},
                        }
        _link(schema, links or {})
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for model in (Problem, FieldError):
            components.setdefault(
                model.__name__, model.model_json_schema(ref_template="#/components/schemas/{model}")
            )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


# Pydantic's messages name regular expressions and types; an SPA shows these to an operator.
_PATTERN_MESSAGES = {
    r"^[0-9]{2,4}$": "must be 2 to 4 digits",
    r"^[0-9]{2,6}$": "must be 2 to 6 digits",
    r"^[A-Za-z0-9._-]{3,64}$": "must be 3 to 64 letters, digits, '.', '_' or '-'",
    r"^[A-Za-z0-9._:-]{1,64}$": "must be 1 to 64 letters, digits, '.', '_', ':' or '-'",
    r"^\+?[0-9*#]+$": "must be a dialled number: digits, '*' or '#', with an optional '+'",
}
_TYPE_MESSAGES = {
    "missing": "is required",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "extra_forbidden": "is not a field of this request",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "list_type": "must be a list",
    "timezone_aware": "must include its offset (Z or +07:00)",
    "datetime_parsing": "must be an RFC 3339 date-time such as 2026-11-25T09:30:00+07:00",
    "datetime_from_date_parsing": "must be an RFC 3339 date-time such as 2026-11-25T09:30:00Z",
    "datetime_type": "must be an RFC 3339 date-time such as 2026-11-25T09:30:00+07:00",
}


def field_message(err: Any) -> str:
    """What is wrong with a field, as an operator can read it."""
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _PATTERN_MESSAGES.get(str(ctx.get("pattern")), "is not in the expected form")
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} characters"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} items"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items"
    if kind == "greater_than_equal":
        return f"must be {ctx.get('ge')} or more"
    if kind == "less_than_equal":
        return f"must be {ctx.get('le')} or less"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected')}"
    message = str(err.get("msg", "is not valid"))
    return message.removeprefix("Value error, ")


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        field = _field_name(tuple(err.get("loc", ())))
        kind = str(err.get("type", "value_error"))
        if kind == "json_invalid":
            reason = str(err.get("ctx", {}).get("error", ""))
            if reason.startswith(DUPLICATE_KEY):
                field = "body." + reason.removeprefix(DUPLICATE_KEY).strip()
                out.append(
                    FieldError(field=field, message="is given more than once", type="duplicate_key")
                )
                continue
            out.append(FieldError(field="body", message=f"is not valid JSON: {reason}", type=kind))
            continue
        out.append(FieldError(field=field, message=field_message(err), type=kind))
    return out


def _allowed_methods(request: Request) -> list[str]:
    """The methods the document lists for the request's path: a concrete path's own, else those
    of the templated paths it matches (OpenAPI matches concrete paths first, as the app does)."""
    paths: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    path = get_route_path(request.scope)
    if path in paths:
        return sorted(method.upper() for method in paths[path])
    methods: set[str] = set()
    for template, item in paths.items():
        if "{" in template and compile_path(template)[0].match(path):
            methods.update(method.upper() for method in item)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(
            422, "Invalid input", code="validation-error", detail=detail, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path; a path's methods
            # may be spread over several routes.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return problem_response(exc.status_code, title, detail=detail, headers=headers)

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # an unexpected error: the 500 handler below answers it
        # The type only: a driver's message may name hosts or statements.
        logger.error("database unavailable: %s", type(exc).__name__)
        return await _app_error(
            request, ServiceUnavailable("The database cannot be reached; try again shortly.")
        )

    for error_class in (*UNAVAILABLE_ERRORS, DBAPIError):
        app.add_exception_handler(error_class, _unavailable)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, _exc: StaleDataError) -> JSONResponse:
        # An UPDATE or DELETE found another version than the request read: a concurrent
        # change won, and this one changed nothing.
        return await _app_error(
            request,
            PreconditionFailed("The resource was changed by another request; read it again."),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return problem_response(500, "Internal server error", code="internal-error")
