"""Calendar months in a tenant's time zone: the unit of the outbound-minute quota."""

from datetime import datetime
from zoneinfo import ZoneInfo


def period_of(instant: datetime, timezone: str) -> str:
    """The month ("2026-11") that an instant belongs to, on the tenant's local calendar."""
    local = instant.astimezone(ZoneInfo(timezone))
    return f"{local.year:04d}-{local.month:02d}"


def period_start(period: str, timezone: str) -> datetime:
    """Local midnight on the 1st of the month, as an aware datetime in the tenant's zone."""
    year, month = (int(part) for part in period.split("-"))
    return datetime(year, month, 1, tzinfo=ZoneInfo(timezone))


def next_period(period: str) -> str:
    return shift_period(period, 1)


def shift_period(period: str, months: int) -> str:
    """The month `months` after (or, negative, before) `period`."""
    year, month = (int(part) for part in period.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def resets_at(instant: datetime, timezone: str) -> datetime:
    """When the month containing `instant` ends: the next local month start."""
    return period_start(next_period(period_of(instant, timezone)), timezone)
