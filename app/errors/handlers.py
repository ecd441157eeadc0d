"""Every failure a request can meet, answered as problem+json: a domain failure, invalid input,
an HTTP error, an unreachable database, a lost concurrent change, anything unexpected."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.db.errors import UNAVAILABLE_ERRORS, database_unavailable
from app.errors.messages import validation_errors
from app.errors.problems import error_response, problem_response
from app.errors.types import AppError, PreconditionFailed, ServiceUnavailable

# The name the logs have always carried, which operators filter on.
logger = logging.getLogger("app.errors")


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
        errors = validation_errors(exc)
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
