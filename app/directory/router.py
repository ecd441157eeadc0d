from typing import Annotated

from fastapi import Query, Response, status

from app.deps import (
    AdminTenant,
    ChangedUser,
    CipherDep,
    IdempotencyDep,
    ReadTenant,
    ReadUser,
    SessionDep,
)
from app.directory import service
from app.directory.repository import UserSort
from app.directory.schemas import UserCreated, UserOut
from app.errors import (
    CREATED,
    VERSIONED,
    Forbidden,
    InvalidInput,
    PreconditionFailed,
    Unauthorized,
    responses,
)
from app.etags import set_etag
from app.idempotency.service import create_once
from app.pagination import Page, PageDep
from app.routing import api_router
from app.schemas import SingleLine
from app.tenants.exceptions import TenantNotFound
from app.users.exceptions import ExternalRefTaken, UserNotFound
from app.users.schemas import UserCreate, UserUpdate

router = api_router(
    prefix="/v1/users", tags=["users"], responses=responses(Unauthorized, Forbidden, TenantNotFound)
)


@router.get("", response_model=Page[UserOut])
async def list_users(
    session: SessionDep,
    tenant: ReadTenant,
    page: PageDep,
    search: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Matches name, email, extension or device name (case-insensitive).",
        ),
        SingleLine,
    ] = None,
    sort: Annotated[UserSort, Query(description="Sort key; '-' for descending.")] = "display_name",
) -> Page[UserOut]:
    """List users with their devices, extensions, minutes and switches."""
    users_page, total = await service.list_users(
        session, tenant=tenant, search=search, sort=sort, limit=page.limit, offset=page.offset
    )
    return Page.of(users_page, total, page)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserCreated,
    responses=responses(ExternalRefTaken, InvalidInput, CREATED),
)
async def create_user(
    body: UserCreate,
    session: SessionDep,
    cipher: CipherDep,
    tenant: AdminTenant,
    once: IdempotencyDep,
) -> Response:
    """Create a user (agent) with one default web SIP account."""

    async def create() -> tuple[UserCreated, str]:
        user = await service.create_user(session, cipher, tenant=tenant, data=body)
        return user, f"/v1/users/{user.id}"

    return await create_once(session, cipher, once=once, create=create)


@router.get("/{user_id}", response_model=UserOut, responses=responses(UserNotFound, VERSIONED))
async def get_user(session: SessionDep, current: ReadUser, response: Response) -> UserOut:
    """Show a user."""
    set_etag(response, current.user.version)
    return await service.get_user(session, current=current)


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    responses=responses(UserNotFound, ExternalRefTaken, PreconditionFailed, VERSIONED),
)
async def update_user(
    body: UserUpdate, session: SessionDep, current: ChangedUser, response: Response
) -> UserOut:
    """Change a user's details, switches or monthly limit."""
    updated = await service.update_user(session, current=current, data=body)
    set_etag(response, current.user.version)
    return updated


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(UserNotFound, PreconditionFailed),
)
async def delete_user(session: SessionDep, current: ChangedUser) -> None:
    """Delete a user with their devices and extensions."""
    await service.delete_user(session, current=current)
