from typing import Annotated

from fastapi import Path, Query, Response, status

from app.auth.deps import IdempotencyDep, ReadAccess, ReadTenant
from app.deps import CipherDep, SessionDep
from app.errors import CREATED, Forbidden, InvalidInput, Unauthorized, responses
from app.extensions import service
from app.extensions.exceptions import ExtensionNotFound, ExtensionTaken
from app.extensions.schemas import (
    AvailableExtensions,
    ExtensionCreate,
    ExtensionHolder,
    ExtensionOut,
)
from app.idempotency.service import create_once
from app.pagination import Page, PageDep
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.user_record.deps import EditUser, ReadUser
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


@router.post(
    "/v1/users/{user_id}/extensions",
    status_code=status.HTTP_201_CREATED,
    response_model=ExtensionOut,
    responses=responses(UserNotFound, ExtensionTaken, InvalidInput, CREATED),
)
async def add_user_extension(
    body: ExtensionCreate,
    session: SessionDep,
    cipher: CipherDep,
    current: EditUser,
    once: IdempotencyDep,
) -> Response:
    """Give a user an extension (2 to 4 digits, unique in the company)."""

    async def create() -> tuple[ExtensionOut, str]:
        extension = await service.add_extension(
            session, tenant=current.tenant, user_id=current.user.id, number=body.number
        )
        return ExtensionOut.model_validate(extension), f"/v1/extensions/{extension.number}"

    return await create_once(session, cipher, once=once, create=create)


@router.delete(
    "/v1/users/{user_id}/extensions/{number}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(UserNotFound, ExtensionNotFound),
)
async def remove_user_extension(number: NumberPath, session: SessionDep, current: EditUser) -> None:
    """Take an extension away from a user."""
    await service.remove_extension(
        session, tenant_id=current.tenant.id, user_id=current.user.id, number=number
    )


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
