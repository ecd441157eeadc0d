"""One error format for the whole API: RFC 9457 problem details (application/problem+json), in
the language the request asks for.

The error types (types), the rules' codes (codes) and their messages (catalogue), the answers
they become (problems), what the OpenAPI document says of them (openapi) and pydantic's errors
as rules of ours (messages) are imported from here; the handlers that answer every failure
(handlers) know the database's failures too, so they are imported from their module by the app
alone and this package stays below app.db."""

from app.errors.catalogue import DEFAULT_LANGUAGE, LANGUAGES, negotiate
from app.errors.codes import Code
from app.errors.messages import DUPLICATE_KEY, field_problem, field_rule
from app.errors.openapi import (
    CREATED,
    CREATED_VERSIONED,
    NOT_MODIFIED,
    READ_TAGGED,
    VERSIONED,
    ResponseHeaders,
    Stale,
    problem_openapi,
    responses,
)
from app.errors.problems import error_response, field_error, problem_of, problem_response
from app.errors.types import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    Conflict,
    FieldError,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Problem,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    problem_type,
)

__all__ = [
    "CREATED",
    "CREATED_VERSIONED",
    "DEFAULT_LANGUAGE",
    "DUPLICATE_KEY",
    "LANGUAGES",
    "NOT_MODIFIED",
    "PROBLEM_MEDIA_TYPE",
    "READ_TAGGED",
    "VERSIONED",
    "AppError",
    "Code",
    "Conflict",
    "FieldError",
    "FieldProblem",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "PreconditionFailed",
    "Problem",
    "ResponseHeaders",
    "ServiceUnavailable",
    "Stale",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "error_response",
    "field_error",
    "field_problem",
    "field_rule",
    "negotiate",
    "problem_of",
    "problem_openapi",
    "problem_response",
    "problem_type",
    "responses",
]
