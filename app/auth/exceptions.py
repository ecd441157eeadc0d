from typing import Any

from app.errors import Code, FieldProblem, Forbidden, NotFound, ServiceUnavailable, Unauthorized


class ApiKeyNotFound(NotFound):
    code = "api-key-not-found"
    default_rule = Code.api_key_not_found


class InvalidToken(Unauthorized):
    """An expired, not yet valid, wrongly signed or foreign token (RFC 6750's invalid_token)."""

    code = "invalid-token"
    default_rule = Code.token_invalid

    def response_headers(self) -> dict[str, str] | None:
        reason = self.text().replace("\\", "").replace('"', "'")
        return {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'}


class TokenNotAccepted(Forbidden):
    """A valid token whose claims name no tenant here, or none of this service's roles; the
    problem names the claim (`token.<claim>`)."""

    code = "token-not-accepted"

    def __init__(self, rule: Code, *, claim: str, **params: Any) -> None:
        super().__init__(
            rule,
            errors=[FieldProblem(f"token.{claim}", rule, {"claim": claim, **params})],
            claim=claim,
            **params,
        )


class IdentityProviderUnavailable(ServiceUnavailable):
    code = "identity-provider-unavailable"
    default_rule = Code.identity_provider_unavailable
    headers = {"Retry-After": "5"}
