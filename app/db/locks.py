"""A named lock that one transaction at a time holds across every replica: PostgreSQL's
advisory transaction lock; on SQLite the write lock the transaction already holds."""

import zlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def hold_exclusively(session: AsyncSession, name: str) -> bool:
    """True when this transaction now holds the lock `name` (until it ends); False when another
    one does (try again later)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    key = zlib.crc32(name.encode())
    held = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
    return bool(held)
