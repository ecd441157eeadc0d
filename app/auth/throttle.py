"""Failed authentications are limited per client address: past the limit, the address gets
429 (with Retry-After) for every request until its window has room again, so keys cannot be
guessed at speed. The count is per process (an in-memory moving window)."""

import math
import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter


class FailedAuthThrottle:
    def __init__(self, limit: str) -> None:
        self._limit = parse(limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        # Addresses that failed lately: every other request skips the limiter altogether.
        self._suspects: dict[str, float] = {}

    async def retry_after(self, address: str) -> int | None:
        """Seconds until `address` may try again, or None when it may now."""
        since = self._suspects.get(address)
        if since is None:
            return None
        if await self._limiter.test(self._limit, address):
            if time.monotonic() - since > self._limit.get_expiry():
                del self._suspects[address]
            return None
        stats = await self._limiter.get_window_stats(self._limit, address)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def failed(self, address: str) -> None:
        if len(self._suspects) > 100_000:
            self._suspects.clear()
        self._suspects[address] = time.monotonic()
        await self._limiter.hit(self._limit, address)
