"""The event and audit entry of a change to a device, however it was made (a request, an
import, a registration report, the expiry job)."""

import uuid
from typing import Any

from app.outbox import record as outbox


def device_change(
    type: str,
    *,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
    user_id: uuid.UUID,
    name: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> outbox.Change:
    return outbox.Change(
        type=type,
        tenant_id=tenant_id,
        resource_type="device",
        resource_id=device_id,
        user_id=user_id,
        data={"user_id": str(user_id), "name": name, **(data or {})},
        before=before,
        after=after,
    )
