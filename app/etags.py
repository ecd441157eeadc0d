"""Optimistic concurrency: a changeable resource's ETag is its row version, and a write sent
with `If-Match` goes through only while the resource is still at that version."""

from fastapi import Response

from app.errors import PreconditionFailed


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def require_match(if_match: str | None, version: int) -> None:
    """PreconditionFailed unless `If-Match` is absent, `*`, or lists the current ETag (compared
    strongly: a weak `W/"..."` ETag never matches, as RFC 9110 says for If-Match)."""
    if if_match is None:
        return
    candidates = {tag.strip() for tag in if_match.split(",")}
    if "*" in candidates or etag(version) in candidates:
        return
    raise PreconditionFailed(
        f"The resource has changed since: its ETag is now {etag(version)}. "
        "Read it again, then send your change with the new ETag."
    )
