"""How every route reads its request: a JSON body whose objects name each key once."""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from app.errors import DUPLICATE_KEY, UnsupportedMediaType


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
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
            self._json = json.loads(await self.body(), object_pairs_hook=refuse_duplicate_keys)
        return self._json


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class StrictJSONRoute(APIRoute):
    """A route whose body must be declared JSON (415 otherwise) and may not repeat a key (which
    value would win is a guess). Its summary in the OpenAPI document is its docstring."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if kwargs.get("summary") is None and endpoint.__doc__:
            kwargs["summary"] = endpoint.__doc__.strip().splitlines()[0].rstrip(".")
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            request = _StrictJSONRequest(request.scope, request.receive)
            content_type = request.headers.get("content-type")
            if takes_body and not _is_json(content_type) and await request.body():
                raise UnsupportedMediaType(
                    "Send the body as JSON, with `Content-Type: application/json`."
                )
            return await handler(request)

        return strict_handler


def api_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes read strict JSON bodies."""
    return APIRouter(route_class=StrictJSONRoute, **options)
