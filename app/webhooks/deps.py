"""The webhook endpoint a route acts on (`{webhook_id}`), loaded once per request."""

import uuid
from typing import Annotated

from fastapi import Depends

from app.auth.deps import AdminAccess
from app.deps import SessionDep
from app.webhooks import service as webhooks
from app.webhooks.models import WebhookEndpoint


async def _webhook(
    webhook_id: uuid.UUID, session: SessionDep, scope: AdminAccess
) -> WebhookEndpoint:
    return await webhooks.require_endpoint(
        session, tenant_id=scope.tenant_id, endpoint_id=webhook_id
    )


# The webhook endpoint of the route's `{webhook_id}`, for the tenant's admin key.
WebhookDep = Annotated[WebhookEndpoint, Depends(_webhook)]
