"""The month a call belongs to, on the tenant's calendar."""

from datetime import datetime

import pytest

from app.quotas.periods import next_period, period_of, shift_period


@pytest.mark.parametrize(
    ("timezone", "started_at", "period"),
    [
        ("Asia/Ho_Chi_Minh", "2026-11-30T18:00:00Z", "2026-12"),
        ("UTC", "2026-11-30T18:00:00Z", "2026-11"),
        ("Asia/Ho_Chi_Minh", "2027-03-31T16:59:59Z", "2027-03"),
        ("Asia/Ho_Chi_Minh", "2027-03-31T17:00:00Z", "2027-04"),
        ("Asia/Ho_Chi_Minh", "2028-02-29T16:30:00Z", "2028-02"),
        ("Asia/Ho_Chi_Minh", "2028-02-29T17:30:00Z", "2028-03"),
        ("Europe/Berlin", "2027-03-31T21:59:00Z", "2027-03"),
        ("Europe/Berlin", "2027-03-31T22:00:00Z", "2027-04"),
    ],
)
def test_a_call_counts_in_the_month_it_started_in_the_tenant_time_zone(
    timezone: str, started_at: str, period: str
) -> None:
    assert period_of(datetime.fromisoformat(started_at), timezone) == period


def test_months_shift_across_years() -> None:
    assert next_period("2026-12") == "2027-01"
    assert shift_period("2027-01", -1) == "2026-12"
    assert shift_period("2026-03", -15) == "2024-12"
    assert shift_period("2026-11", 0) == "2026-11"
