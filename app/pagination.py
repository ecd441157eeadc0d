"""One pagination shape and one set of query parameters for every list."""

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field


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

    @classmethod
    def of(cls, items: list[T], total: int, params: PageParams) -> "Page[T]":
        return cls(items=items, total=total, limit=params.limit, offset=params.offset)

    @classmethod
    def slice(cls, items: list[T], params: PageParams) -> "Page[T]":
        """A page of a short list read whole (a user's devices, say)."""
        page = items[params.offset : params.offset + params.limit]
        return cls(items=page, total=len(items), limit=params.limit, offset=params.offset)
