"""A problem+json answer: for a domain failure, or for a status and title of its own."""

from asgi_correlation_id import correlation_id
from fastapi.responses import JSONResponse

from app.errors.types import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    FieldError,
    PreconditionFailed,
    Problem,
    problem_type,
)


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
        current=exc.current if isinstance(exc, PreconditionFailed) else None,
    )


def error_response(exc: AppError) -> JSONResponse:
    """The problem+json answer for a domain failure (what a raised one gets too)."""
    return _problem_json(problem_of(exc), headers=exc.response_headers())
