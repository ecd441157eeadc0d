"""Extensions as they are read: a user's, the free ones, who holds one. A user's extension
added or taken away answers the user's row too (app/users/parts_router.py)."""

from typing import Annotated

from fastapi import Path, Query

from app.auth.deps import ReadAccess, ReadTenant
from app.deps import SessionDep
from app.errors import Forbidden, Unauthorized, responses
from app.extensions import service
from app.extensions.exceptions import ExtensionNotFound
from app.extensions.schemas import (
    AvailableExtensions,
    ExtensionHolder,
    ExtensionOut,
)
from app.pagination import Page, PageDep
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.user_record.deps import ReadUser
from app.user_record.exceptions import UserNotFound

router = api_router(
    tags=["extensions"], responses=responses(Unauthorized, Forbidden, TenantNotFound)
)

NumberPath = Annotated[str, Path(pattern=r"^[0-9]{2,4}$", examples=["102"])]


@router.get(
    "/v1/users/{user_id}/extensions",
    response_model=Page[ExtensionOut],
    responses=responses(UserNotFound),
)
async def list_user_extensions(
    session: SessionDep, current: ReadUser, page: PageDep
) -> Page[ExtensionOut]:
    """List a user's extensions."""
    extensions = await service.list_extensions(
        session, tenant_id=current.tenant.id, user_id=current.user.id
    )
    return Page.slice([ExtensionOut.model_validate(e) for e in extensions], page)


@router.get("/v1/extensions/available", response_model=AvailableExtensions)
async def list_available_extensions(
    session: SessionDep,
    tenant: ReadTenant,
    digits: Annotated[int, Query(ge=2, le=4, description="Length of the numbers.")] = 3,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> AvailableExtensions:
    """Suggest the next free extensions of a given length."""
    numbers = await service.available_numbers(session, tenant=tenant, digits=digits, limit=limit)
    return AvailableExtensions(digits=digits, numbers=numbers)


@router.get(
    "/v1/extensions/{number}",
    response_model=ExtensionHolder,
    responses=responses(ExtensionNotFound),
)
async def get_extension(
    number: NumberPath, session: SessionDep, scope: ReadAccess
) -> ExtensionHolder:
    """Who holds an extension (404 when it is free)."""
    return await service.find_holder(session, tenant_id=scope.tenant_id, number=number)
