from app.errors import FieldError, Forbidden, NotFound, ServiceUnavailable, Unauthorized


class ApiKeyNotFound(NotFound):
    code = "api-key-not-found"
    title = "API key not found"


class InvalidToken(Unauthorized):
    """An expired, not yet valid, wrongly signed or foreign token (RFC 6750's invalid_token)."""

    code = "invalid-token"
    title = "Invalid token"

    def response_headers(self) -> dict[str, str] | None:
        reason = (self.detail or self.title).replace("\\", "").replace('"', "'")
        return {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'}


class TokenNotAccepted(Forbidden):
    """A valid token whose claims name no tenant here, or none of this service's roles."""

    code = "token-not-accepted"
    title = "Token not accepted"

    def __init__(self, claim: str, detail: str) -> None:
        super().__init__(
            detail, errors=[FieldError(field=f"token.{claim}", message=detail, type="claim")]
        )


class IdentityProviderUnavailable(ServiceUnavailable):
    code = "identity-provider-unavailable"
    title = "Identity provider unavailable"
    headers = {"Retry-After": "5"}
