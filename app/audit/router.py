import uuid
from typing import Annotated

from fastapi import Query

from app.audit import service
from app.audit.schemas import AuditEntryOut
from app.auth.deps import AdminAccess
from app.deps import SessionDep
from app.errors import Forbidden, Unauthorized, responses
from app.pagination import CursorDep, Page, PageDep
from app.routing import api_router
from app.schemas import DateTime
from app.tenants.exceptions import TenantNotFound

router = api_router(
    prefix="/v1/audit-events",
    tags=["audit"],
    responses=responses(Unauthorized, Forbidden, TenantNotFound),
)


@router.get("", response_model=Page[AuditEntryOut])
async def list_audit_events(
    session: SessionDep,
    scope: AdminAccess,
    page: PageDep,
    cursor: CursorDep,
    resource_type: Annotated[
        str | None, Query(max_length=32, pattern=r"^[a-z_]+$", examples=["user"])
    ] = None,
    resource_id: Annotated[str | None, Query(max_length=64, pattern=r"^[!-~]+$")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Changes concerning this user.")] = None,
    actor_key_id: Annotated[
        uuid.UUID | None, Query(description="Changes made with this key.")
    ] = None,
    actor_id: Annotated[
        str | None,
        Query(
            max_length=255,
            pattern=r"^[!-~]+$",
            description="Changes made by this actor: a key's id, or a person's subject (`sub`) "
            "at the identity provider.",
        ),
    ] = None,
    since: Annotated[DateTime | None, Query(description="From this time on.")] = None,
    until: Annotated[DateTime | None, Query(description="Before this time.")] = None,
) -> Page[AuditEntryOut]:
    """Who changed what and when, newest first. Deep in a long trail, read on by `cursor` (the
    `next` of each page) rather than by `offset`; the count stops at 10,000
    (`total_is_estimate`)."""
    found = await service.list_entries(
        session,
        tenant_id=scope.tenant_id,
        resource_type=resource_type,
        resource_id=resource_id,
        user_id=user_id,
        actor_key_id=actor_key_id,
        actor_id=actor_id,
        since=since,
        until=until,
        limit=page.limit,
        offset=page.offset,
        after=service.cursor_after(cursor, page),
    )
    return Page.of(
        [AuditEntryOut.of(e) for e in found.entries],
        found.total,
        page,
        next=service.next_cursor(found),
        capped=found.capped,
    )
