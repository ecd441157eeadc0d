"""Registrations whose time ran out: contacts past their expiry are no longer live, a device
left with none is unregistered (once), and contacts ended a day ago are forgotten."""

import logging
from datetime import datetime, timedelta

from app.clock import utcnow
from app.db.session import Database
from app.devices import repository
from app.registrations import service as registrations

logger = logging.getLogger(__name__)

# Devices per transaction: each one's row stays locked until its transaction ends.
CHUNK = 500
# How long a contact that ended is kept: its `seen_at` keeps late reports from reviving it.
KEPT = timedelta(days=1)


async def expire_registrations(db: Database, *, now: datetime | None = None) -> int:
    """Returns how many devices went offline."""
    now = now or utcnow()
    offline = 0
    while True:
        async with db.session_scope() as session:
            device_ids = await repository.devices_with_expired_contacts(
                session, now=now, limit=CHUNK
            )
            if device_ids:
                offline += await registrations.expire(session, device_ids=device_ids, now=now)
        if len(device_ids) < CHUNK:
            break
    async with db.session_scope() as session:
        await repository.delete_registrations_before(session, before=now - KEPT, now=now)
    if offline:
        logger.info("%d devices went offline: their registrations expired", offline)
    return offline
