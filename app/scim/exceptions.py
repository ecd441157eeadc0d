"""SCIM's errors (RFC 7644 §3.12): a status and, for a 400 or 409, a `scimType` that tells a
directory what to do about it."""

from typing import ClassVar


class ScimError(Exception):
    status: ClassVar[int] = 400
    default_type: ClassVar[str | None] = None

    def __init__(self, detail: str, *, scim_type: str | None = None) -> None:
        self.detail = detail
        self.scim_type = scim_type or self.default_type
        super().__init__(detail)


class InvalidFilter(ScimError):
    default_type = "invalidFilter"


class InvalidSyntax(ScimError):
    default_type = "invalidSyntax"


class InvalidValue(ScimError):
    default_type = "invalidValue"


class InvalidPath(ScimError):
    default_type = "invalidPath"


class Mutability(ScimError):
    default_type = "mutability"


class Uniqueness(ScimError):
    status = 409
    default_type = "uniqueness"


class ResourceNotFound(ScimError):
    status = 404


class VersionChanged(ScimError):
    status = 412


class PayloadTooLarge(ScimError):
    """A Bulk request over maxOperations or maxPayloadSize (RFC 7644 §3.7.4)."""

    status = 413


class NotImplementedHere(ScimError):
    status = 501
