"""A problem+json answer in the language the request asks for: for a domain failure, or for a
problem type and rule of its own."""

from collections.abc import Sequence
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi.responses import JSONResponse

from app.errors.catalogue import message, title
from app.errors.codes import Code
from app.errors.types import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    FieldError,
    FieldProblem,
    PreconditionFailed,
    Problem,
    problem_type,
)


def message_of(code: Code, params: dict[str, Any], language: str) -> str:
    """A field's message: the rule's sentence, after the item of a list it is about (an
    import's device or extension: the param `item`)."""
    sentence = message(code, params, language)
    item = params.get("item")
    return sentence if item is None else f"“{item}”: {sentence}"


def field_error(problem: FieldProblem, language: str) -> FieldError:
    return FieldError(
        field=problem.field,
        code=problem.code,
        params=problem.params,
        message=message_of(problem.code, problem.params, language),
        row=problem.row,
        column=problem.column,
    )


def render_problem(
    status: int,
    code: str,
    *,
    language: str,
    rule: Code | None = None,
    params: dict[str, Any] | None = None,
    errors: Sequence[FieldProblem] | None = None,
) -> Problem:
    params = params or {}
    return Problem(
        type=problem_type(code),
        title=title(code, language),
        status=status,
        detail=message(rule, params, language) if rule else None,
        code=rule,
        params=params if rule else None,
        errors=[field_error(e, language) for e in errors] if errors else None,
        request_id=correlation_id.get(),
    )


def problem_of(exc: AppError, language: str) -> Problem:
    """The problem a domain failure is, whether it is answered or listed in an answer (a batch's
    refused items)."""
    problem = render_problem(
        exc.status_code,
        exc.code,
        language=language,
        rule=exc.rule,
        params=exc.params,
        errors=exc.errors,
    )
    if isinstance(exc, PreconditionFailed):
        problem.current = exc.current
    return problem


def problem_json(
    body: Problem, *, language: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=body.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={**(headers or {}), "Content-Language": language, "Vary": "Accept-Language"},
    )


def problem_response(
    status: int,
    code: str,
    *,
    language: str,
    rule: Code | None = None,
    params: dict[str, Any] | None = None,
    errors: Sequence[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = render_problem(status, code, language=language, rule=rule, params=params, errors=errors)
    return problem_json(body, language=language, headers=headers)


def error_response(exc: AppError, language: str) -> JSONResponse:
    """The problem+json answer for a domain failure (what a raised one gets too)."""
    return problem_json(
        problem_of(exc, language), language=language, headers=exc.response_headers()
    )
