"""One error format for the whole API: RFC 9457 problem details (application/problem+json)."""

import logging
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.errors import UNAVAILABLE_ERRORS, database_unavailable
from app.routing import DUPLICATE_KEY

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Where the error is: location and field name, dotted.")
    message: str
    type: str = Field(description="Machine-readable reason.")


class Problem(BaseModel):
    type: str = Field(examples=["urn:antring:problem:extension-taken"])
    title: str = Field(examples=["Extension taken"])
    status: int = Field(examples=[409])
    detail: str | None = Field(default=None, examples=["Extension 102 is already assigned."])
    errors: list[FieldError] | None = Field(
        default=None, description="Present on validation errors: one entry per bad field."
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
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route, from the errors it can raise."""
    out: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        entry = out.setdefault(
            error.status_code,
            {"model": Problem, "description": ""},
        )
        entry["description"] = "; ".join(filter(None, [entry["description"], error.title]))
    return out


def problem_openapi(app: FastAPI) -> None:
    """Makes /docs tell the truth: every error response is problem+json, 422 included (FastAPI
    documents its own validation body otherwise)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            for status, response in operation.get("responses", {}).items():
                if status.startswith(("4", "5")):
                    response["content"] = {PROBLEM_MEDIA_TYPE: problem}
                if status == "422":
                    response["description"] = "Invalid input: `errors` names each bad field"
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


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid"))
        field = _field_name(tuple(err.get("loc", ())))
        if err.get("type") == "json_invalid":
            reason = str(err.get("ctx", {}).get("error", ""))
            if reason.startswith(DUPLICATE_KEY):
                field = "body." + reason.removeprefix(DUPLICATE_KEY).strip()
                message = "is given more than once"
                out.append(FieldError(field=field, message=message, type="duplicate_key"))
                continue
            message = "The body is not valid JSON: " + reason
            field = "body"
        out.append(
            FieldError(
                field=field,
                message=message,
                type=str(err.get("type", "value_error")),
            )
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            exc.status_code,
            exc.title,
            code=exc.code,
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.response_headers(),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(
            422, "Invalid input", code="validation-error", detail=detail, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        headers = dict(exc.headers) if exc.headers else None
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

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return problem_response(500, "Internal server error", code="internal-error")
