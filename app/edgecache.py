"""What the SIP edges must forget once a change commits.

The reference Kamailio edge keeps each account it authenticated (its HA1) in an `htable` for a
while, so that a REGISTER needs no HTTP at all. A change that must take effect at once (a
rotated password, a device or user disabled or deleted, a renamed device, a tenant's SIP domain
changed or the tenant deleted) names the accounts here, in the session of the change. When that
transaction commits, and only then, every edge listed in `ANTRING_EDGE_RPC_URLS` is told to drop
them through Kamailio's JSON-RPC over HTTP (`htable.delete`, or `htable.flush` past
`FLUSH_ABOVE` accounts). A push that fails is retried for about a second and then given up: the
edge's own expiry bounds what a missed push can cost.

The served app's database hands the pusher to every session it opens (requests, import jobs,
scheduled jobs). The command line's carries none: its changes reach the edges when the entries
expire.
"""

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterable, Sequence

import httpx
from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

TABLE = "acc"
# Past this many accounts in one change (a tenant's domain), the edge drops its whole table.
FLUSH_ABOVE = 100
_RETRY_DELAYS = (0.0, 0.1, 0.3, 0.6)

PUSHER = "edge_cache_pusher"
_PENDING = "edge_cache_forget"

PUSHES = Counter(
    "antring_edge_cache_pushes_total",
    "Cache removals sent to the SIP edges, by outcome (a failed one was given up).",
    ["outcome"],
)


def cache_key(username: str, domain: str) -> str:
    """The edge's key for an account: what kamailio.cfg builds from the digest user and realm."""
    return f"{username.lower()}@{domain.lower()}"


def forget(session: AsyncSession, *, domain: str, usernames: Iterable[str]) -> None:
    """Have the edges drop these accounts of `domain` once this session's transaction commits
    (nothing if it rolls back)."""
    if session.info.get(PUSHER) is None:
        return
    pending: set[str] = session.info.setdefault(_PENDING, set())
    pending.update(cache_key(username, domain) for username in usernames)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    keys = session.info.pop(_PENDING, None)
    pusher = session.info.get(PUSHER)
    if keys and pusher is not None:
        pusher.submit(keys)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


class EdgePusher:
    """Sends the removals to every edge, one change after another, from one task."""

    def __init__(self, urls: Sequence[str], *, token: str | None, timeout: float = 0.5) -> None:
        self.urls = list(urls)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout)
        self._queue: asyncio.Queue[set[str]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, keys: set[str]) -> None:
        self._queue.put_nowait(keys)

    async def idle(self) -> None:
        """Returns once every submitted change was pushed or given up."""
        await self._queue.join()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    async def _run(self) -> None:
        while True:
            keys = await self._queue.get()
            # Changes that came together go together.
            while not self._queue.empty():
                keys |= self._queue.get_nowait()
                self._queue.task_done()
            try:
                calls = self._calls(keys)
                await asyncio.gather(*(self._push(url, calls) for url in self.urls))
            finally:
                self._queue.task_done()

    def _calls(self, keys: set[str]) -> list[dict[str, object]]:
        if len(keys) > FLUSH_ABOVE:
            return [self._call("htable.flush", [TABLE])]
        return [self._call("htable.delete", [TABLE, key]) for key in sorted(keys)]

    def _call(self, method: str, params: list[str]) -> dict[str, object]:
        return {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}

    async def _push(self, url: str, calls: list[dict[str, object]]) -> None:
        for call in calls:
            for delay in _RETRY_DELAYS:
                await asyncio.sleep(delay)
                try:
                    answer = await self._client.post(url, json=call)
                except httpx.HTTPError as exc:
                    failure = f"{type(exc).__name__}"
                    continue
                if _done(answer):
                    PUSHES.labels("sent").inc()
                    break
                failure = f"HTTP {answer.status_code}"
            else:
                PUSHES.labels("failed").inc()
                logger.warning(
                    "Edge %s did not take %s %s (%s); its cache expiry bounds it.",
                    url,
                    call["method"],
                    call["params"][-1],  # type: ignore[index]
                    failure,
                )


def _done(answer: httpx.Response) -> bool:
    """The edge took the call: a result, or "not found" (it had nothing cached to drop)."""
    try:
        body = answer.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if "result" in body:
        return True
    error = body.get("error")
    return isinstance(error, dict) and error.get("code") == 404
