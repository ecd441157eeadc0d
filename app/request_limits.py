"""Requests too large to be honest are refused before any route runs: a head (all headers)
over the limit answers 431. (Bodies over their limit answer 413: FastAPI's `max_body_size`.)

Pure ASGI: it only measures the headers the server already parsed."""

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import problem_response


class HeaderSizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                response = problem_response(
                    431,
                    "Request header fields too large",
                    code="headers-too-large",
                    detail=f"The request's headers take {size} bytes; at most "
                    f"{self.max_bytes} are accepted.",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
