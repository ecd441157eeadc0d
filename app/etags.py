"""Optimistic concurrency: a changeable resource's ETag is its row version, and a write sent
with `If-Match` goes through only while the resource is still at that version."""

import re

from fastapi import Response

from app.errors import Code, InvalidInput, PreconditionFailed

_ENTITY_TAG = r'(W/)?"[\x21\x23-\x7e]*"'
# RFC 9110's If-Match: `*`, or a list of entity-tags separated by commas (which may be empty, and
# then lists none to match).
IF_MATCH_PATTERN = rf"^(\*|({_ENTITY_TAG}([ \t]*,[ \t]*{_ENTITY_TAG})*)?)$"
_IF_MATCH = re.compile(IF_MATCH_PATTERN)


def etag(version: int) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


def require_match(if_match: str | None, version: int) -> None:
    """PreconditionFailed unless `If-Match` is absent, `*`, or lists the current ETag (compared
    strongly: a weak `W/"..."` ETag never matches, as RFC 9110 says for If-Match); InvalidInput
    when it is none of RFC 9110's forms."""
    if if_match is None:
        return
    if not _IF_MATCH.fullmatch(if_match):
        raise InvalidInput("header.If-Match", Code.if_match_form)
    candidates = {tag.strip() for tag in if_match.split(",")}
    if "*" in candidates or etag(version) in candidates:
        return
    raise PreconditionFailed(Code.version_changed, etag=etag(version))
