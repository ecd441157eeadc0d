"""Every table, imported in one place: Alembic, the entry points and the tests load them all, so
that every mapper resolves whatever a command touches first."""

from app.auth.models import ApiKey
from app.db.base import Base
from app.devices.models import Device, Registration
from app.extensions.models import Extension
from app.idempotency.models import IdempotencyKey
from app.imports.models import ImportJob
from app.outbox.models import AuditEntry, Event
from app.provisioning.models import (
    ProvisioningAccess,
    ProvisioningFetch,
    ProvisioningLink,
    ProvisioningNonce,
)
from app.quotas.models import (
    CallAuthorization,
    CallRecord,
    MonthlyUsage,
    MonthRollover,
    QuotaHistory,
)
from app.tenants.models import Tenant
from app.user_record.models import User
from app.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "CallAuthorization",
    "CallRecord",
    "Device",
    "Event",
    "Extension",
    "IdempotencyKey",
    "ImportJob",
    "MonthRollover",
    "MonthlyUsage",
    "ProvisioningAccess",
    "ProvisioningFetch",
    "ProvisioningLink",
    "ProvisioningNonce",
    "QuotaHistory",
    "Registration",
    "Tenant",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
