"""The event and audit entry of a change to a device, however it was made (a request, an
import, a registration report, the expiry job)."""

import uuid
from collections.abc import Sequence
from typing import Any

from app.devices.repository import DeviceRef
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


def transition(
    device: DeviceRef, *, before: int, after: int, edge: str | None = None, reason: str
) -> outbox.Change | None:
    """The event of a device that got its first live contact or lost its last one."""
    if (before == 0) == (after == 0):
        return None
    return device_change(
        "device.registered" if after else "device.unregistered",
        tenant_id=device.tenant_id,
        device_id=device.id,
        user_id=device.user_id,
        name=device.name,
        data={"contact_count": after, "edge": edge, "reason": reason},
    )


def gone(devices: Sequence[DeviceRef], *, reason: str) -> list[outbox.Change]:
    """The events of devices that lost their last live contact."""
    return [
        change
        for device in devices
        if (change := transition(device, before=1, after=0, reason=reason)) is not None
    ]
