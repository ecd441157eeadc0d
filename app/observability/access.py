"""The outermost layer, in one pure ASGI pass per request: the head's size limit
(app.request_limits), and, each if on, the request id (kept from a valid X-Request-ID, or from
a `request_id` query parameter for clients that cannot set headers, such as Kamailio's kept
HTTP connections; else made; echoed on the answer and set for every log line), the request
metrics, and one access line (method, route template, status, duration, tenant, key id,
request id; the key's identity is what the auth dependency left in the request's state, never
the key itself).

One middleware rather than four: each ASGI layer costs a share of a registrar lookup, so turning
the observation on adds work to a layer every request already passes, not a layer."""

import logging
import random
import time
from collections.abc import Awaitable
from typing import Any
from urllib.parse import unquote_to_bytes

from asgi_correlation_id import correlation_id
from prometheus_client.metrics import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logs import ACCESS_LOGGER, AccessLine, access_lines, valid_request_id
from app.observability.metrics import LATENCY, REQUESTS
from app.request_limits import HeaderSizeLimit

logger = logging.getLogger(ACCESS_LOGGER)

_HEADER = b"x-request-id"
_QUERY = b"request_id="


class RequestObserver:
    def __init__(
        self,
        app: ASGIApp,
        *,
        header_limit: HeaderSizeLimit,
        request_ids: bool,
        log: bool,
        metrics: bool,
    ) -> None:
        self.app = app
        self.header_limit = header_limit
        self.observing = request_ids or log or metrics
        self.request_ids = request_ids
        self.log = log
        self.metrics = metrics
        # prometheus_client's labels() lookup costs more than the increment: children kept.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        # Built with the app's first request, after `antring serve` configured logging.
        gathered = access_lines()
        self._write = gathered.add if gathered is not None else _log_record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.observing:
            await (self.header_limit.refusal(scope) or self.app)(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id: bytes | None = None
        if self.request_ids:
            request_id = _request_id(scope)
            correlation_id.set(request_id.decode())
        # After the id is set: a 431's problem carries it.
        app = self.header_limit.refusal(scope) or self.app

        # Not a coroutine itself: it hands back `send`'s, which saves one a message.
        def observed_send(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if request_id is not None:
                    message["headers"] = [*message.get("headers", ()), (_HEADER, request_id)]
            return send(message)

        try:
            await app(scope, receive, observed_send)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        if self.metrics:
            key = (method, template, status)
            children = self._children.get(key)
            if children is None:
                children = (
                    REQUESTS.labels(method, template, str(status)),
                    LATENCY.labels(method, template),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(elapsed)
        if self.log:
            state: dict[str, Any] = scope.get("state") or {}
            self._write(
                (
                    time.time(),
                    correlation_id.get() or "-",
                    method,
                    template,
                    status,
                    elapsed,
                    state.get("tenant_id"),
                    state.get("key_id"),
                )
            )


def _log_record(line: AccessLine) -> None:
    """An access line as a record of the `antring.access` logger, for an app whose logging
    the service did not configure (embedded, or under test)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    _, _, method, template, status, seconds, tenant_id, key_id = line
    milliseconds = round(seconds * 1000, 2)
    logger.info(
        "%s %s %s %.2f ms",
        method,
        template,
        status,
        milliseconds,
        extra={
            "method": method,
            "route": template,
            "status": status,
            "duration_ms": milliseconds,
            "tenant_id": tenant_id,
            "key_id": key_id,
        },
    )


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == _HEADER:
            if _valid(value):
                return bytes(value)
            break
    else:
        query: bytes = scope.get("query_string", b"")
        if _QUERY in query:
            for pair in query.split(b"&"):
                if pair.startswith(_QUERY):
                    value = unquote_to_bytes(pair[len(_QUERY) :])
                    if _valid(value):
                        return value
                    break
    # Only unique, not secret: os.urandom's system call costs more than the rest of this.
    return random.getrandbits(128).to_bytes(16).hex().encode()


def _valid(value: bytes) -> bool:
    try:
        return valid_request_id(value.decode("ascii"))
    except UnicodeDecodeError:
        return False
