"""Call control's access: the key (Bearer, or the password of HTTP Basic) and the process's
store, for the routes the SIP edges call."""

from typing import Annotated

from fastapi import Depends, Request

from app.auth.deps import BasicCredentials, BearerCredentials, authenticate, require_role
from app.auth.models import Role
from app.callcontrol.access import CallControl

_CALL_CONTROL_ROLES = (Role.call_control, Role.admin)


# A plain dependency, not a yielding one: FastAPI's work per dependency, and more per yielding
# one, is a large share of a registrar lookup.
async def _call_control(
    request: Request, credentials: BearerCredentials, basic: BasicCredentials
) -> CallControl:
    sent = credentials.credentials if credentials else basic.password if basic else None
    principal = await authenticate(request, sent)
    require_role(principal, _CALL_CONTROL_ROLES)
    return CallControl(
        principal=principal,
        store=request.app.state.callcontrol_store,
        settings=request.app.state.settings,
        minutes=request.app.state.minutes,
    )


_call_control.roles = _CALL_CONTROL_ROLES  # type: ignore[attr-defined]
CallControlAccess = Annotated[CallControl, Depends(_call_control)]
