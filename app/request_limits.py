"""Requests too large to be honest are refused before any route runs: a head (all headers)
over the limit answers 431. (Bodies over their limit answer 413: FastAPI's `max_body_size`.)

Not a layer of its own: the outermost layer, `RequestObserver`, asks `refusal()` first, so the
check costs no ASGI layer. It only measures the headers the server already parsed. The 431
carries the CORS headers every other answer carries."""

from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Scope

from app.errors import Code, negotiate, problem_response


class HeaderSizeLimit:
    def __init__(self, max_bytes: int, *, cors: dict[str, Any] | None = None) -> None:
        self.max_bytes = max_bytes
        # CORSMiddleware's arguments when the service answers browsers on other origins.
        self.cors = cors

    def refusal(self, scope: Scope) -> ASGIApp | None:
        """The 431 answer to a request whose head is over the limit; None for the others."""
        size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if size <= self.max_bytes:
            return None
        accept_language = next(
            (value for name, value in scope["headers"] if name == b"accept-language"), b""
        )
        response: ASGIApp = problem_response(
            431,
            "headers-too-large",
            language=negotiate(accept_language.decode("latin-1")),
            rule=Code.headers_too_large,
            params={"size": size, "max_bytes": self.max_bytes},
        )
        return response if self.cors is None else CORSMiddleware(response, **self.cors)
