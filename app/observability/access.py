"""One access line and the request metrics per request, in pure ASGI: method, route template,
status, duration, tenant, key id and request id (the key's identity is what the auth dependency
left in the request's state; never the key itself)."""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.metrics import LATENCY, REQUESTS

logger = logging.getLogger("antring.access")


class AccessLog:
    def __init__(self, app: ASGIApp, *, log: bool, metrics: bool) -> None:
        self.app = app
        self.log = log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            if self.metrics:
                REQUESTS.labels(method, template, str(status)).inc()
                LATENCY.labels(method, template).observe(elapsed)
            if self.log:
                state = scope.get("state") or {}
                logger.info(
                    "%s %s %s %.1f ms",
                    method,
                    template,
                    status,
                    elapsed * 1000,
                    extra={
                        "method": method,
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "tenant_id": state.get("tenant_id"),
                        "key_id": state.get("key_id"),
                    },
                )
