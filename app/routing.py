"""How every route reads its request: a JSON body whose objects name each key once."""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

DUPLICATE_KEY = "duplicate key"


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                # A JSON error FastAPI answers 422; app.errors names the key as the field.
                raise json.JSONDecodeError(f"{DUPLICATE_KEY} {key}", "", 0)
            seen.add(key)
    return body


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), object_pairs_hook=_refuse_duplicates)
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body may not repeat a key (which value would win is a guess)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def api_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes read strict JSON bodies."""
    return APIRouter(route_class=StrictJSONRoute, **options)
