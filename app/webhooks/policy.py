"""When a failed delivery goes again, and when an endpoint is given up on: retries on a schedule
of about a day (Svix's), and an endpoint disabled when it answers 410 or has failed for days."""

from datetime import datetime, timedelta

from app.webhooks.models import DeliveryStatus

# After the first try: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27 h in all).
RETRY_DELAYS = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=5)


def after_failure(
    *, attempts: int, status_code: int | None, failing_since: datetime | None, now: datetime
) -> tuple[dict[str, object], dict[str, object]]:
    """What a failed attempt (the `attempts`th, at `now`) changes: of the delivery (failed for
    good, or its next try) and of its endpoint (failing since when, or disabled and why)."""
    delivery: dict[str, object] = {}
    endpoint: dict[str, object] = {}
    if status_code == 410:
        delivery["status"] = DeliveryStatus.failed
        endpoint |= {"enabled": False, "disabled_reason": "The receiver answered 410 Gone."}
        return delivery, endpoint
    failing_since = failing_since or now
    endpoint["failing_since"] = failing_since
    if attempts >= len(RETRY_DELAYS):
        delivery["status"] = DeliveryStatus.failed
    else:
        delivery["next_attempt_at"] = now + RETRY_DELAYS[attempts]
    if now - failing_since >= DISABLE_AFTER:
        endpoint |= {
            "enabled": False,
            "disabled_reason": f"Every delivery failed for {DISABLE_AFTER.days} days.",
        }
    return delivery, endpoint
