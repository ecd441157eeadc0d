"""The error types: a domain failure (AppError and the common kinds), the rule it breaks (a code
with its params) and the problem it is rendered as (RFC 9457 problem details)."""

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from app.errors.catalogue import DEFAULT_LANGUAGE, message
from app.errors.codes import Code

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:antring:problem:"


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """What is wrong with one field: the rule it breaks and that rule's params (the message is
    written when the answer is, in the language it asks for)."""

    field: str
    code: Code
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    row: int | None = None
    column: str | None = None


class FieldError(BaseModel):
    field: str = Field(description="Where the error is: location and field name, dotted.")
    code: Code = Field(
        description="The rule the value breaks: stable, the key of `message` in the catalogues.",
        examples=["digits"],
    )
    params: dict[str, Any] = Field(
        description="The rule's values, which `message` quotes.", examples=[{"min": 2, "max": 4}]
    )
    message: str = Field(
        description="A sentence in the language of the answer (Content-Language).",
        examples=["Enter 2 to 4 digits."],
    )
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
    type: str = Field(
        description="The kind of problem (urn:antring:problem:<name>), one of those listed.",
        examples=["urn:antring:problem:extension-taken"],
    )
    title: str = Field(
        description="The kind of problem in words, in the language of the answer.",
        examples=["Extension taken"],
    )
    status: int = Field(examples=[409])
    detail: str | None = Field(
        default=None,
        description="What happened, in the language of the answer (Content-Language).",
        examples=["Extension 102 is already assigned to another user."],
    )
    code: Code | None = Field(
        default=None,
        description="The rule `detail` tells of: stable, the key of `detail` in the catalogues.",
        examples=["extension-taken"],
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description="The rule's values, which `detail` quotes.",
        examples=[{"number": "102"}],
    )
    errors: list[FieldError] | None = Field(
        default=None,
        description="The fields the problem is about (every bad field of invalid input, the "
        "field whose value is taken in a conflict): one entry each.",
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
    """Base of every domain failure; subclasses set the status and the problem type (`code`),
    and may name the rule their detail tells of by default. Raised with the rule broken and its
    params; with `field`, the problem names that field in `errors` with the same rule."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    default_rule: ClassVar[Code | None] = None
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(
        self,
        rule: Code | None = None,
        /,
        *,
        field: str | None = None,
        errors: list[FieldProblem] | None = None,
        **params: Any,
    ) -> None:
        self.rule = rule or self.default_rule
        self.params = params
        if field is not None and self.rule is not None:
            errors = [FieldProblem(field, self.rule, params)]
        self.errors = errors
        super().__init__(self.text())

    def text(self, language: str = DEFAULT_LANGUAGE) -> str:
        """The detail in words (for logs and the command line: English)."""
        return message(self.rule, self.params, language) if self.rule else self.code

    def response_headers(self) -> dict[str, str] | None:
        return self.headers


class NotFound(AppError):
    status_code = 404
    code = "not-found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class InvalidInput(AppError):
    status_code = 422
    code = "validation-error"

    def __init__(self, field: str, rule: Code, /, **params: Any) -> None:
        super().__init__(rule, field=field, **params)


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported-media-type"


class PreconditionFailed(AppError):
    """A change sent with a stale If-Match: answered with the ETag now (the param `etag`) and,
    when the route can show it, the resource as it is now (`current`)."""

    status_code = 412
    code = "precondition-failed"

    def __init__(
        self, rule: Code | None = None, /, *, current: dict[str, Any] | None = None, **params: Any
    ) -> None:
        super().__init__(rule, **params)
        self.current = current

    def response_headers(self) -> dict[str, str] | None:
        etag = self.params.get("etag")
        return {"ETag": etag} if isinstance(etag, str) else None


class TooManyRequests(AppError):
    status_code = 429
    code = "too-many-failed-authentications"

    def __init__(self, rule: Code, *, retry_after: int) -> None:
        super().__init__(rule, retry_after=retry_after)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


class ServiceUnavailable(AppError):
    status_code = 503
    code = "database-unavailable"
    default_rule = Code.database_unavailable
    headers = {"Retry-After": "1"}


def problem_type(code: str) -> str:
    return code if code == "about:blank" else f"{PROBLEM_TYPE_PREFIX}{code}"


def problem_types() -> list[str]:
    """Every problem type the service answers: each AppError's, and the handlers' own."""
    codes = {"about:blank", "validation-error", "internal-error"}
    codes.update(HTTP_PROBLEMS.values())
    pending: list[type[AppError]] = [AppError]
    while pending:
        kind = pending.pop()
        codes.add(kind.code)
        pending.extend(kind.__subclasses__())
    return sorted(problem_type(code) for code in codes)


# The problem types (and the rules their detail tells of) of HTTP errors the framework answers.
HTTP_PROBLEMS = {
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
    431: "headers-too-large",
}
HTTP_RULES = {
    404: Code.route_not_found,
    405: Code.method_not_allowed,
    413: Code.body_too_large,
}
