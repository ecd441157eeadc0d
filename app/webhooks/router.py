import uuid

from fastapi import Response, status

from app.auth.deps import AdminAccess, IdempotencyDep
from app.deps import CipherDep, SessionDep, SettingsDep
from app.errors import CREATED, Forbidden, InvalidInput, Unauthorized, responses
from app.idempotency.service import create_once
from app.outbox.catalogue import EVENT_TYPES
from app.pagination import Page, PageDep
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.webhooks import service
from app.webhooks.deps import WebhookDep
from app.webhooks.exceptions import DeliveryNotFound, WebhookNotFound, WebhookUrlRefused
from app.webhooks.schemas import (
    DeliveryOut,
    EventTypeOut,
    SecretRotated,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)

router = api_router(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    responses=responses(Unauthorized, Forbidden, TenantNotFound),
)


@router.get("/event-types", response_model=Page[EventTypeOut])
async def list_event_types(_scope: AdminAccess, page: PageDep) -> Page[EventTypeOut]:
    """The event types a webhook can receive, with what each means"""
    items = [EventTypeOut(type=t, description=d) for t, d in EVENT_TYPES.items()]
    return Page.slice(items, page)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=responses(InvalidInput, WebhookUrlRefused, CREATED),
)
async def create_webhook(
    body: WebhookCreate,
    session: SessionDep,
    cipher: CipherDep,
    settings: SettingsDep,
    scope: AdminAccess,
    once: IdempotencyDep,
) -> Response:
    """Register a URL to receive the tenant's events; its signing secret is shown once"""

    async def create() -> tuple[WebhookCreated, str]:
        endpoint = await service.create_endpoint(
            session,
            cipher,
            tenant_id=scope.tenant_id,
            data=body,
            allow_private=settings.webhooks_allow_private_urls,
        )
        return endpoint, f"/v1/webhooks/{endpoint.id}"

    return await create_once(session, cipher, once=once, create=create)


@router.get("", response_model=Page[WebhookOut])
async def list_webhooks(session: SessionDep, scope: AdminAccess, page: PageDep) -> Page[WebhookOut]:
    """List the tenant's webhook endpoints"""
    endpoints, total = await service.list_endpoints(
        session, tenant_id=scope.tenant_id, limit=page.limit, offset=page.offset
    )
    return Page.of([WebhookOut.model_validate(e) for e in endpoints], total, page)


@router.get("/{webhook_id}", response_model=WebhookOut, responses=responses(WebhookNotFound))
async def get_webhook(endpoint: WebhookDep) -> WebhookOut:
    """Show a webhook endpoint"""
    return WebhookOut.model_validate(endpoint)


@router.patch(
    "/{webhook_id}",
    response_model=WebhookOut,
    responses=responses(WebhookNotFound, WebhookUrlRefused),
)
async def update_webhook(
    body: WebhookUpdate, session: SessionDep, settings: SettingsDep, endpoint: WebhookDep
) -> WebhookOut:
    """Change a webhook endpoint's URL, event types, description, or enable it again"""
    updated = await service.update_endpoint(
        session, endpoint=endpoint, data=body, allow_private=settings.webhooks_allow_private_urls
    )
    return WebhookOut.model_validate(updated)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(WebhookNotFound),
)
async def delete_webhook(session: SessionDep, endpoint: WebhookDep) -> None:
    """Delete a webhook endpoint and its deliveries"""
    await service.delete_endpoint(session, endpoint=endpoint)


@router.post(
    "/{webhook_id}/secret", response_model=SecretRotated, responses=responses(WebhookNotFound)
)
async def rotate_webhook_secret(
    session: SessionDep, cipher: CipherDep, endpoint: WebhookDep
) -> SecretRotated:
    """Rotate the signing secret; the old one signs too for a day"""
    return await service.rotate_secret(session, cipher, endpoint=endpoint)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryOut],
    responses=responses(WebhookNotFound),
)
async def list_webhook_deliveries(
    session: SessionDep, endpoint: WebhookDep, page: PageDep
) -> Page[DeliveryOut]:
    """The events sent to an endpoint, newest first, with every attempt"""
    deliveries, total = await service.list_deliveries(
        session, endpoint=endpoint, limit=page.limit, offset=page.offset
    )
    return Page.of(deliveries, total, page)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    responses={
        202: {"description": "Scheduled: the worker sends it again now."},
        **responses(WebhookNotFound, DeliveryNotFound),
    },
)
async def redeliver_webhook_delivery(
    delivery_id: uuid.UUID, session: SessionDep, endpoint: WebhookDep
) -> Response:
    """Send a delivery again"""
    await service.redeliver(session, endpoint=endpoint, delivery_id=delivery_id)
    return Response(status_code=status.HTTP_202_ACCEPTED)
