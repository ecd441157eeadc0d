"""How every route reads its request: a JSON body in UTF-8 whose objects name each key once, a
query in UTF-8, and a concrete path that is never taken for a templated one."""

import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute, iter_route_contexts
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.errors import DUPLICATE_KEY, Code, InvalidInput, UnsupportedMediaType


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


def _json_text(body: bytes) -> str:
    try:
        # RFC 8259: JSON exchanged between systems is UTF-8 (a byte order mark may be ignored).
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # A JSON error, which FastAPI answers 422 like any other.
        raise json.JSONDecodeError("it is not UTF-8", "", error.start) from None


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            text = _json_text(await self.body())
            try:
                self._json = json.loads(text, object_pairs_hook=refuse_duplicate_keys)
            except RecursionError:
                raise json.JSONDecodeError("it nests too deeply", "", 0) from None
        return self._json


def _query_problem(query: bytes) -> InvalidInput | None:
    """What is wrong with a query string that is not UTF-8 once its %-escapes are decoded (the
    parser would read it with U+FFFD in place of each bad byte)."""
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        try:
            field = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return InvalidInput("query", Code.query_name_not_utf8)
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return InvalidInput(f"query.{field}", Code.not_utf8)
    return None


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class StrictJSONRoute(APIRoute):
    """A route whose body must be declared JSON (415 otherwise) and may not repeat a key (which
    value would win is a guess), and whose query must be UTF-8. Its summary in the OpenAPI
    document is its docstring."""

    # The concrete paths this templated route's pattern also matches (see concrete_paths_first).
    shadowed: frozenset[str] = frozenset()

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if kwargs.get("summary") is None and endpoint.__doc__:
            kwargs["summary"] = endpoint.__doc__.strip().splitlines()[0].rstrip(".")
        super().__init__(path, endpoint, **kwargs)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE and self.shadowed and get_route_path(scope) in self.shadowed:
            return Match.NONE, {}
        return match, child_scope

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            request = _StrictJSONRequest(request.scope, request.receive)
            query: bytes = request.scope.get("query_string", b"")
            if (b"%" in query or not query.isascii()) and (problem := _query_problem(query)):
                raise problem
            content_type = request.headers.get("content-type")
            if takes_body and not _is_json(content_type) and await request.body():
                raise UnsupportedMediaType(Code.body_not_json)
            return await handler(request)

        return strict_handler


def concrete_paths_first(routes: Sequence[BaseRoute]) -> None:
    """OpenAPI's rule for the app's routes: a concrete path is matched before a templated one, and
    for every method. `PATCH /v1/users/export` is then a method the export does not allow (405),
    not a user whose id is `export` (which would be 422)."""
    contexts = [c for c in iter_route_contexts(routes) if isinstance(c.original_route, APIRoute)]
    concrete = {c.path for c in contexts if c.path and not c.param_convertors}
    for context in contexts:
        route = context.original_route
        if isinstance(route, StrictJSONRoute) and context.param_convertors:
            route.shadowed = frozenset(p for p in concrete if context.path_regex.match(p))


def api_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes read strict JSON bodies."""
    return APIRouter(route_class=StrictJSONRoute, **options)
