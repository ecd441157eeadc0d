"""The error types: a domain failure (AppError and the common kinds) and the problem it is
rendered as (RFC 9457 problem details)."""

from typing import Any, ClassVar

from pydantic import BaseModel, Field

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
    current: dict[str, Any] | None = Field(
        default=None,
        description="On a 412: the resource as it is now (its ETag in the ETag header), so a "
        "form can show what changed and send its change again with that ETag.",
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

    def __init__(
        self,
        detail: str | None = None,
        *,
        etag: str | None = None,
        current: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.etag = etag
        self.current = current

    def response_headers(self) -> dict[str, str] | None:
        return {"ETag": self.etag} if self.etag else None


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
