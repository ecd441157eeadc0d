import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.auth.dependencies import AdminAccess, ReadAccess
from app.database import SessionDep
from app.deps import CipherDep
from app.errors import Forbidden, Unauthorized, responses
from app.pagination import Page, PageDep
from app.schemas import SingleLine
from app.tenants.exceptions import TenantNotFound
from app.users import service
from app.users.exceptions import ExternalRefTaken, UserNotFound
from app.users.repository import UserSort
from app.users.schemas import Toggles, TogglesUpdate, UserCreate, UserOut, UserUpdate

router = APIRouter(
    prefix="/v1/users", tags=["users"], responses=responses(Unauthorized, Forbidden, TenantNotFound)
)


@router.get("", response_model=Page[UserOut])
async def list_users(
    session: SessionDep,
    scope: ReadAccess,
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
    users, total = await service.list_users(
        session,
        tenant_id=scope.tenant_id,
        search=search,
        sort=sort,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(items=users, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=responses(ExternalRefTaken),
)
async def create_user(
    body: UserCreate, session: SessionDep, cipher: CipherDep, scope: AdminAccess
) -> UserOut:
    """Create a user (agent) with one default web SIP account."""
    return await service.create_user(session, cipher, tenant_id=scope.tenant_id, data=body)


@router.get("/{user_id}", response_model=UserOut, responses=responses(UserNotFound))
async def get_user(user_id: uuid.UUID, session: SessionDep, scope: ReadAccess) -> UserOut:
    """Show a user."""
    return await service.get_user(session, tenant_id=scope.tenant_id, user_id=user_id)


@router.patch(
    "/{user_id}", response_model=UserOut, responses=responses(UserNotFound, ExternalRefTaken)
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, scope: AdminAccess
) -> UserOut:
    """Change a user's details, switches or monthly limit."""
    return await service.update_user(session, tenant_id=scope.tenant_id, user_id=user_id, data=body)


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(UserNotFound)
)
async def delete_user(user_id: uuid.UUID, session: SessionDep, scope: AdminAccess) -> None:
    """Delete a user with their devices and extensions."""
    await service.delete_user(session, tenant_id=scope.tenant_id, user_id=user_id)


@router.get("/{user_id}/toggles", response_model=Toggles, responses=responses(UserNotFound))
async def get_toggles(user_id: uuid.UUID, session: SessionDep, scope: ReadAccess) -> Toggles:
    """Show a user's two switches: outbound calls allowed, auto-answer."""
    return await service.get_toggles(session, tenant_id=scope.tenant_id, user_id=user_id)


@router.patch("/{user_id}/toggles", response_model=Toggles, responses=responses(UserNotFound))
async def update_toggles(
    user_id: uuid.UUID, body: TogglesUpdate, session: SessionDep, scope: AdminAccess
) -> Toggles:
    """Turn outbound calls or auto-answer on or off."""
    return await service.update_toggles(
        session, tenant_id=scope.tenant_id, user_id=user_id, data=body
    )
