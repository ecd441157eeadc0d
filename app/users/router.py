from typing import Annotated

from fastapi import Query, Response, status

from app.auth.deps import EditTenant, IdempotencyDep, ReadTenant
from app.deps import CipherDep, IfNoneMatch, SessionDep
from app.errors import (
    CREATED_VERSIONED,
    NOT_MODIFIED,
    READ_TAGGED,
    VERSIONED,
    Forbidden,
    InvalidInput,
    Stale,
    Unauthorized,
    responses,
)
from app.etags import conditional_read, set_etag, set_shown_etag
from app.idempotency.service import create_once
from app.pagination import CursorDep, Page, PageDep
from app.routing import api_router
from app.schemas import SingleLine
from app.tenants.exceptions import TenantNotFound
from app.user_record.deps import ReadUser
from app.user_record.exceptions import ExternalRefTaken, UserNotFound
from app.user_record.schemas import UserCreate, UserUpdate
from app.users import service
from app.users.deps import ChangedToggles, ChangedUser
from app.users.repository import UserSort
from app.users.schemas import Toggles, TogglesUpdate, TogglesWithUser, UserCreated, UserOut

router = api_router(
    prefix="/v1/users", tags=["users"], responses=responses(Unauthorized, Forbidden, TenantNotFound)
)


@router.get("", response_model=Page[UserOut], responses=responses(READ_TAGGED, NOT_MODIFIED))
async def list_users(
    session: SessionDep,
    tenant: ReadTenant,
    page: PageDep,
    cursor: CursorDep,
    if_none_match: IfNoneMatch = None,
    search: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Words, in any order, each the start of a word of the user's name or "
            "email, of an extension or of a device's name; case, accents and đ/d make no "
            "difference ('nguyen van' finds Nguyễn Văn An).",
        ),
        SingleLine,
    ] = None,
    sort: Annotated[
        UserSort,
        Query(
            description="Sort key; '-' for descending. Names sort in Vietnamese order: "
            "`display_name` by the full name, `given_name` by the last word first, then the rest."
        ),
    ] = UserSort.display_name,
) -> Response:
    """List users with their devices, extensions, minutes and switches. Read on by `cursor`
    (the `next` of each page, in the same `sort` and search) rather than by `offset` in a large
    tenant; the count stops at 10,000, or 1,000 for a search (`total_is_estimate`)."""
    shown = await service.list_users(
        session, tenant=tenant, search=search, sort=sort, params=page, cursor=cursor
    )
    return conditional_read(if_none_match, shown)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserCreated,
    responses=responses(ExternalRefTaken, InvalidInput, CREATED_VERSIONED),
)
async def create_user(
    body: UserCreate,
    session: SessionDep,
    cipher: CipherDep,
    tenant: EditTenant,
    once: IdempotencyDep,
) -> Response:
    """Create a user (agent) with one default web SIP account."""

    async def create() -> tuple[UserCreated, str]:
        user = await service.create_user(session, cipher, tenant=tenant, data=body)
        return user, f"/v1/users/{user.id}"

    return await create_once(session, cipher, once=once, create=create)


@router.get(
    "/{user_id}",
    response_model=UserOut,
    responses=responses(UserNotFound, READ_TAGGED, NOT_MODIFIED),
)
async def get_user(
    session: SessionDep, current: ReadUser, if_none_match: IfNoneMatch = None
) -> Response:
    """Show a user."""
    shown = await service.get_user(session, current=current)
    return conditional_read(if_none_match, shown, version=current.user.version)


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    responses=responses(UserNotFound, ExternalRefTaken, Stale(UserOut), READ_TAGGED),
)
async def update_user(
    body: UserUpdate, session: SessionDep, current: ChangedUser, response: Response
) -> UserOut:
    """Change a user's details, switches or monthly limit."""
    updated = await service.update_user(session, current=current, data=body)
    set_shown_etag(response, updated, current.user.version)
    return updated


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(UserNotFound, Stale(UserOut)),
)
async def delete_user(session: SessionDep, current: ChangedUser) -> None:
    """Delete a user with their devices and extensions."""
    await service.delete_user(session, current=current)


toggles_router = api_router(
    prefix="/v1/users/{user_id}/toggles",
    tags=["toggles"],
    responses=responses(Unauthorized, Forbidden, TenantNotFound, UserNotFound),
)


@toggles_router.get("", response_model=Toggles, responses=responses(VERSIONED))
async def get_toggles(current: ReadUser, response: Response) -> Toggles:
    """Show a user's two switches: outbound calls allowed, auto-answer."""
    set_etag(response, current.user.version)
    return service.toggles(current.user)


@toggles_router.patch(
    "", response_model=TogglesWithUser, responses=responses(Stale(Toggles), VERSIONED)
)
async def update_toggles(
    body: TogglesUpdate, session: SessionDep, current: ChangedToggles, response: Response
) -> TogglesWithUser:
    """Turn outbound calls or auto-answer on or off."""
    toggles = await service.update_toggles(session, user=current.user, data=body)
    set_etag(response, current.user.version)
    row = await service.get_user(session, current=current)
    return TogglesWithUser(**toggles.model_dump(), user=row)
