"""One error format for the whole API: RFC 9457 problem details (application/problem+json).

The error types (types), the answers they become (problems), what the OpenAPI document says of
them (openapi) and pydantic's messages made readable (messages) are imported from here; the
handlers that answer every failure (handlers) know the database's failures too, so they are
imported from their module by the app alone and this package stays below app.db."""

from app.errors.messages import DUPLICATE_KEY, field_message
from app.errors.openapi import (
    CREATED,
    CREATED_VERSIONED,
    VERSIONED,
    ResponseHeaders,
    Stale,
    problem_openapi,
    responses,
)
from app.errors.problems import error_response, problem_of, problem_response
from app.errors.types import (
    PROBLEM_MEDIA_TYPE,
    AppError,
    Conflict,
    FieldError,
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
    "DUPLICATE_KEY",
    "PROBLEM_MEDIA_TYPE",
    "VERSIONED",
    "AppError",
    "Conflict",
    "FieldError",
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
    "field_message",
    "problem_of",
    "problem_openapi",
    "problem_response",
    "problem_type",
    "responses",
]
