"""Who a request acts as: an API key (machines), or a person or client signed in at the
platform's identity provider with a token."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from app.auth.models import Role


class ActorKind(StrEnum):
    api_key = "api_key"
    token = "token"


# Roles by precedence, for a token that lists several: the first it holds is its role.
ROLE_PRECEDENCE = (Role.admin, Role.operator, Role.viewer, Role.call_control, Role.scim)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `id` is the key's id, or (a token) a stable id made from the
    issuer and the subject; idempotency keys belong to it."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: Role
    name: str = ""
    kind: ActorKind = ActorKind.api_key
    # A token's subject, e-mail and client; None for a key.
    subject: str | None = None
    email: str | None = None
    client_id: str | None = None
    # When it stops being valid (a key's expiry, a token's `exp`); None: never.
    expires_at: datetime | None = None

    @property
    def actor_id(self) -> str:
        """What the audit trail and events call it: the key's id, or the token's subject."""
        return self.subject if self.subject is not None else str(self.id)


def token_principal_id(issuer: str, subject: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{issuer}#{subject}")
