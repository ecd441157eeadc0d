"""What the SIP edges must forget once a change commits.

The reference Kamailio edge keeps each account it authenticated (its HA1) in an `htable` for a
while, so that a REGISTER needs no HTTP at all. A change that must take effect at once (a
rotated password, a device or user disabled or deleted, a renamed device, a tenant's SIP domain
changed or the tenant deleted) names the accounts here, in the session of the change. When that
transaction commits, and only then, every edge listed in `ANTRING_EDGE_RPC_URLS` is told through
Kamailio's JSON-RPC over HTTP to drop them (`htable.delete`, or `htable.flush` past
`FLUSH_ABOVE` accounts) and to end their registrations (`ul.rm` of the account's AOR in its
`location` table, one call per account). An operator who only ends a device's registrations
(`unregister`) leaves the cache alone. A push that fails is retried for about a second and then
given up: the edge's own expiry bounds what a missed push can cost.

The served app's database hands the pusher to every session it opens (requests, import jobs,
scheduled jobs). The command line's carries none: its changes reach the edges when the entries
expire.
"""

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

TABLE = "acc"
# The edge's usrloc table of registered contacts.
LOCATION = "location"
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
    """The edge's key for an account, as deploy/kamailio/edge/accounts.cfg builds it from the digest
    user and realm."""
    return f"{username.lower()}@{domain.lower()}"


# What a change asks of the edges: each account's key (also its AOR), and whether its cached
# HA1 goes too (True) or only its registrations (False).
Accounts = dict[str, bool]


def forget(session: AsyncSession, *, domain: str, usernames: Iterable[str]) -> None:
    """Have the edges drop these accounts of `domain`, and end their registrations, once this
    session's transaction commits (nothing if it rolls back)."""
    _pend(session, domain=domain, usernames=usernames, cached=True)


def unregister(session: AsyncSession, *, domain: str, usernames: Iterable[str]) -> None:
    """Have the edges end these accounts' registrations once this session's transaction commits;
    what they cached of the accounts stays."""
    _pend(session, domain=domain, usernames=usernames, cached=False)


def _pend(session: AsyncSession, *, domain: str, usernames: Iterable[str], cached: bool) -> None:
    if session.info.get(PUSHER) is None:
        return
    pending: Accounts = session.info.setdefault(_PENDING, {})
    for username in usernames:
        key = cache_key(username, domain)
        pending[key] = pending.get(key, False) or cached


def _merge(into: Accounts, other: Accounts) -> None:
    for key, cached in other.items():
        into[key] = into.get(key, False) or cached


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    accounts = session.info.pop(_PENDING, None)
    pusher = session.info.get(PUSHER)
    if accounts and pusher is not None:
        pusher.submit(accounts)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)


class EdgePusher:
    """Sends the removals to every edge, one change after another, from one task."""

    def __init__(self, urls: Sequence[str], *, token: str | None, timeout: float = 0.5) -> None:
        # Imported by a process that has edges to tell, only.
        import httpx

        self.urls = list(urls)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout)
        self._queue: asyncio.Queue[Accounts] = asyncio.Queue()
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, accounts: Accounts) -> None:
        self._queue.put_nowait(accounts)

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
            accounts = dict(await self._queue.get())
            # Changes that came together go together.
            while not self._queue.empty():
                _merge(accounts, self._queue.get_nowait())
                self._queue.task_done()
            try:
                calls = self._calls(accounts)
                await asyncio.gather(*(self._push(url, calls) for url in self.urls))
            finally:
                self._queue.task_done()

    def _calls(self, accounts: Accounts) -> list[dict[str, object]]:
        """The cache first, then the registrations: a phone that registers again at once is
        challenged with what the account is now."""
        cached = sorted(key for key, drop in accounts.items() if drop)
        if len(cached) > FLUSH_ABOVE:
            calls = [self._call("htable.flush", [TABLE])]
        else:
            calls = [self._call("htable.delete", [TABLE, key]) for key in cached]
        # usrloc has no flush: one call per account.
        calls.extend(self._call("ul.rm", [LOCATION, key]) for key in sorted(accounts))
        return calls

    def _call(self, method: str, params: list[str]) -> dict[str, object]:
        return {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}

    async def _push(self, url: str, calls: list[dict[str, object]]) -> None:
        import httpx

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


def _done(answer: "httpx.Response") -> bool:
    """The edge took the call: a result, or "not found" (it had nothing cached to drop, or no
    contact of the account)."""
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
