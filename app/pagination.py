"""One pagination shape and one set of query parameters for every list: `limit` and `offset`
everywhere, and on the long lists (the audit trail) an opaque `cursor` that reads the next page
from where the last one ended, as fast deep in the list as at its start."""

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from app.errors import Code, InvalidInput

# Counting stops here on the long lists: a page says so (`total_is_estimate`) rather than count
# a tenant's hundreds of thousands of rows to show fifty.
COUNT_CAP = 10_000
# And here for a search as the operator types, whose first letters may match a third of a
# tenant: "1,000+" is what a console shows then.
SEARCH_COUNT_CAP = 1_000


class PageParams(BaseModel):
    limit: int
    offset: int


async def _page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    # Bounded so that it fits the databases' 64-bit OFFSET instead of failing there.
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(_page_params)]


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Items matching the query, over all pages.")
    limit: int
    offset: int
    total_is_estimate: bool = Field(
        default=False,
        description="True when counting stopped (at 10,000; at 1,000 for a search of the Users "
        "table): `total` is then a lower bound.",
    )
    next: str | None = Field(
        default=None,
        description="Where a list read by cursor goes on: pass it as `cursor` for the next page; "
        "null on the last page (and on lists not read by cursor).",
    )

    @classmethod
    def of(
        cls,
        items: list[T],
        total: int,
        params: PageParams,
        *,
        next: str | None = None,
        capped: bool = False,
    ) -> "Page[T]":
        return cls(
            items=items,
            total=total,
            limit=params.limit,
            offset=params.offset,
            next=next,
            total_is_estimate=capped,
        )

    @classmethod
    def slice(cls, items: list[T], params: PageParams) -> "Page[T]":
        """A page of a short list read whole (a user's devices, say)."""
        page = items[params.offset : params.offset + params.limit]
        return cls(items=page, total=len(items), limit=params.limit, offset=params.offset)


_CURSOR_DESCRIPTION = (
    "Read on from where a page ended: the `next` of the page before (instead of `offset`, "
    "which must then be 0)."
)


async def _cursor_param(
    cursor: Annotated[
        str | None,
        Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$", description=_CURSOR_DESCRIPTION),
    ] = None,
) -> str | None:
    return cursor


CursorDep = Annotated[str | None, Depends(_cursor_param)]


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor over a row's sort key (JSON values)."""
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, *, params: PageParams, arity: int) -> list[Any]:
    """The sort key a cursor carries; 422 naming `query.cursor` when it is not one of ours."""
    if params.offset:
        raise InvalidInput("query.offset", Code.offset_with_cursor)
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidInput("query.cursor", Code.cursor_invalid)
    return values
