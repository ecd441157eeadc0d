"""A tenant's webhook endpoints: registered, changed, rotated, and what was delivered to them."""

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.outbox import record as outbox
from app.webhooks import repository, signing
from app.webhooks.exceptions import DeliveryNotFound, WebhookNotFound, WebhookUrlRefused
from app.webhooks.models import WebhookEndpoint
from app.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    SecretRotated,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)
from app.webhooks.urls import address_problem

# How long the old secret still signs after a rotation.
PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)
SHOWN = ("url", "description", "event_types", "enabled")


async def _record(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    type: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await outbox.record(
        session,
        type=type,
        tenant_id=endpoint.tenant_id,
        resource_type="webhook_endpoint",
        resource_id=endpoint.id,
        data={"url": endpoint.url},
        before=before,
        after=after,
    )


async def _check_address(url: str, *, allow_private: bool) -> None:
    problem = await address_problem(url, allow_private=allow_private)
    if problem:
        raise WebhookUrlRefused("body.url", problem.rule, **problem.params)


async def require_endpoint(
    session: AsyncSession, *, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await repository.find_endpoint(session, tenant_id=tenant_id, endpoint_id=endpoint_id)
    if endpoint is None:
        raise WebhookNotFound(webhook_id=str(endpoint_id))
    return endpoint


async def create_endpoint(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant_id: uuid.UUID,
    data: WebhookCreate,
    allow_private: bool,
) -> WebhookCreated:
    await _check_address(data.url, allow_private=allow_private)
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id, secret_encrypted=cipher.encrypt(secret), **data.model_dump()
    )
    session.add(endpoint)
    await session.flush()
    await _record(
        session, endpoint, "webhook_endpoint.created", after=outbox.snapshot(endpoint, SHOWN)
    )
    return WebhookCreated(**WebhookOut.model_validate(endpoint).model_dump(), secret=secret)


async def list_endpoints(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[WebhookEndpoint], int]:
    return await repository.list_endpoints(session, tenant_id=tenant_id, limit=limit, offset=offset)


async def update_endpoint(
    session: AsyncSession, *, endpoint: WebhookEndpoint, data: WebhookUpdate, allow_private: bool
) -> WebhookEndpoint:
    changes = data.changes()
    if "url" in changes:
        await _check_address(changes["url"], allow_private=allow_private)
    before = outbox.snapshot(endpoint, SHOWN)
    data.apply_to(endpoint)
    if changes.get("enabled"):
        endpoint.disabled_reason = None
        endpoint.failing_since = None
    await session.flush()
    old, new = outbox.changes(before, outbox.snapshot(endpoint, SHOWN))
    await _record(session, endpoint, "webhook_endpoint.updated", before=old, after=new)
    return endpoint


async def delete_endpoint(session: AsyncSession, *, endpoint: WebhookEndpoint) -> None:
    await _record(
        session, endpoint, "webhook_endpoint.deleted", before=outbox.snapshot(endpoint, SHOWN)
    )
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, cipher: PasswordCipher, *, endpoint: WebhookEndpoint
) -> SecretRotated:
    secret = signing.new_secret()
    expires = utcnow() + PREVIOUS_SECRET_LIFETIME
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = expires
    endpoint.secret_encrypted = cipher.encrypt(secret)
    await session.flush()
    await _record(session, endpoint, "webhook_endpoint.secret_rotated")
    return SecretRotated(secret=secret, previous_secret_expires_at=expires)


async def list_deliveries(
    session: AsyncSession, *, endpoint: WebhookEndpoint, limit: int, offset: int
) -> tuple[list[DeliveryOut], int]:
    """The endpoint's deliveries, newest first, with every attempt."""
    rows, total = await repository.list_deliveries(
        session, endpoint_id=endpoint.id, limit=limit, offset=offset
    )
    attempts = await repository.attempts_of(session, [row.delivery.id for row in rows])
    return [
        DeliveryOut(
            id=delivery.id,
            event_id=event_id,
            event_type=event_type,
            status=delivery.status,
            attempts=[AttemptOut.model_validate(a) for a in attempts.get(delivery.id, [])],
            next_attempt_at=delivery.next_attempt_at,
            delivered_at=delivery.delivered_at,
            created_at=delivery.created_at,
        )
        for delivery, event_id, event_type in rows
    ], total


async def redeliver(
    session: AsyncSession, *, endpoint: WebhookEndpoint, delivery_id: uuid.UUID
) -> None:
    """Schedules a delivery again, now (after it failed, or to send it once more)."""
    if not await repository.reschedule(
        session, endpoint_id=endpoint.id, delivery_id=delivery_id, at=utcnow()
    ):
        raise DeliveryNotFound(delivery_id=str(delivery_id))
