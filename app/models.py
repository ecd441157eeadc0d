"""Every table, imported in one place for Alembic and the tests."""

from app.auth.models import ApiKey
from app.callcontrol.models import CallAuthorization, CallRecord
from app.database import Base
from app.devices.models import Device
from app.extensions.models import Extension
from app.quotas.models import MonthlyUsage, MonthRollover, QuotaHistory
from app.tenants.models import Tenant
from app.users.models import User

__all__ = [
    "ApiKey",
    "Base",
    "CallAuthorization",
    "CallRecord",
    "Device",
    "Extension",
    "MonthRollover",
    "MonthlyUsage",
    "QuotaHistory",
    "Tenant",
    "User",
]
