"""Every failure a request can meet, answered as problem+json in the language the request asks
for: a domain failure, invalid input, an HTTP error, an unreachable database, a lost concurrent
change, anything unexpected."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.errors import UNAVAILABLE_ERRORS, database_unavailable
from app.errors.catalogue import negotiate
from app.errors.codes import Code
from app.errors.messages import validation_errors
from app.errors.problems import error_response, problem_response
from app.errors.types import (
    HTTP_PROBLEMS,
    HTTP_RULES,
    AppError,
    PreconditionFailed,
    ServiceUnavailable,
)

# The name the logs have always carried, which operators filter on.
logger = logging.getLogger("app.errors")


def language_of(request: Request) -> str:
    """The language the request's `Accept-Language` prefers among the service's."""
    return negotiate(request.headers.get("accept-language"))


def _allowed_methods(request: Request) -> list[str]:
    """The methods the document lists for the request's path: a concrete path's own, else those
    of the templated paths it matches (OpenAPI matches concrete paths first, as the app does).
    Read from the documented routes, not from the document: a 405 does not build the OpenAPI
    document, which the process would then hold for good (several MB)."""
    path = get_route_path(request.scope)
    concrete: set[str] = set()
    templated: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema or not context.path:
            continue
        if not context.param_convertors:
            if context.path == path:
                concrete.update(context.methods or ())
        elif context.path_regex.match(path):
            templated.update(context.methods or ())
    return sorted(concrete or templated)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc, language_of(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        return problem_response(
            422,
            "validation-error",
            language=language_of(request),
            rule=Code.invalid_fields,
            params={"fields": list(dict.fromkeys(e.field for e in errors))},
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path; a path's methods
            # may be spread over several routes.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return problem_response(
            exc.status_code,
            HTTP_PROBLEMS.get(exc.status_code, "about:blank"),
            language=language_of(request),
            rule=HTTP_RULES.get(exc.status_code, Code.http_error),
            headers=headers,
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # an unexpected error: the 500 handler below answers it
        # The type only: a driver's message may name hosts or statements.
        logger.error("database unavailable: %s", type(exc).__name__)
        return await _app_error(request, ServiceUnavailable())

    for error_class in (*UNAVAILABLE_ERRORS, DBAPIError):
        app.add_exception_handler(error_class, _unavailable)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, _exc: StaleDataError) -> JSONResponse:
        # An UPDATE or DELETE found another version than the request read: a concurrent
        # change won, and this one changed nothing.
        return await _app_error(request, PreconditionFailed(Code.changed_concurrently))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return problem_response(
            500, "internal-error", language=language_of(request), rule=Code.internal_error
        )
