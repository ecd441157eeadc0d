"""The device a route acts on (`{device_id}`), loaded once per request with its tenant."""

import uuid
from typing import Annotated

from fastapi import Depends

from app.auth.deps import EditAccess, ReadAccess
from app.deps import IfMatch, SessionDep
from app.devices import service as devices
from app.devices.schemas import DeviceOut
from app.devices.service import TenantDevice
from app.etags import require_match


async def _read_device(
    device_id: uuid.UUID, session: SessionDep, scope: ReadAccess
) -> TenantDevice:
    return await devices.require_device(session, tenant_id=scope.tenant_id, device_id=device_id)


async def _edit_device(
    device_id: uuid.UUID, session: SessionDep, scope: EditAccess
) -> TenantDevice:
    return await devices.require_device(session, tenant_id=scope.tenant_id, device_id=device_id)


# The device of the route's `{device_id}`, with its tenant.
ReadDevice = Annotated[TenantDevice, Depends(_read_device)]
EditDevice = Annotated[TenantDevice, Depends(_edit_device)]


async def _changed_device(
    device_id: uuid.UUID, session: SessionDep, scope: EditAccess, if_match: IfMatch = None
) -> TenantDevice:
    current = await devices.require_device(
        session, tenant_id=scope.tenant_id, device_id=device_id, for_update=True
    )

    async def shown() -> DeviceOut:
        [device] = await devices.device_views(
            session, tenant_id=current.tenant.id, devices=[current.device]
        )
        return device

    await require_match(if_match, current.device.version, current=shown, tagged=True)
    return current


# A device an admin changes or deletes: still at the version `If-Match` names, if it names one.
ChangedDevice = Annotated[TenantDevice, Depends(_changed_device)]
