"""Optimistic concurrency and conditional reads. A changeable resource's version is its row
version, and a write sent with `If-Match` goes through only while the resource is still at that
version. A read of a user, a device or a page of users answers a tag of what it shows (the
version, if any, and a digest of the body): `If-None-Match` with it gets 304 while nothing shown
changed, and `If-Match` with it compares its version."""

import hashlib
import re
from collections.abc import Awaitable, Callable

from fastapi import Response
from pydantic import BaseModel

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


def representation_etag(body: bytes, version: int | None = None) -> str:
    """A strong tag of a body: the same bytes, the same tag. With a version, `"<version>.
    <digest>"`, which If-Match compares by its version."""
    digest = hashlib.blake2b(body, digest_size=10).hexdigest()
    return f'"{version}.{digest}"' if version is not None else f'"{digest}"'


def shown_etag(shown: BaseModel, version: int | None = None) -> str:
    """The tag of a resource as an answer shows it: what a read of it answers too."""
    return representation_etag(shown.model_dump_json().encode(), version)


def set_shown_etag(response: Response, shown: BaseModel, version: int) -> None:
    response.headers["ETag"] = shown_etag(shown, version)


def _version_of(tag: str) -> str:
    """The version a strong tag names: `"3"` and `"3.<digest>"` both name 3."""
    return tag[1:-1].split(".", 1)[0] if tag.startswith('"') else tag


def _matches(if_match: str | None, version: int) -> bool:
    if if_match is None:
        return True
    if not _IF_MATCH.fullmatch(if_match):
        raise InvalidInput("header.If-Match", Code.if_match_form)
    candidates = {tag.strip() for tag in if_match.split(",")}
    return "*" in candidates or str(version) in {
        _version_of(tag) for tag in candidates if tag.startswith('"')
    }


def _unchanged(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110's If-None-Match on a read: `*`, or a listed tag equal to `tag` (compared weakly,
    so `W/` makes no difference)."""
    if not if_none_match:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return "*" in candidates or tag in candidates


def conditional_read(
    if_none_match: str | None, shown: BaseModel, *, version: int | None = None
) -> Response:
    """The answer to a read: 304 with no body when If-None-Match lists its tag, else the JSON
    body; both with the tag as ETag."""
    body = shown.model_dump_json().encode()
    tag = representation_etag(body, version)
    if _unchanged(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    return Response(body, media_type="application/json", headers={"ETag": tag})


async def require_match(
    if_match: str | None,
    version: int,
    *,
    current: Callable[[], Awaitable[BaseModel]],
    tagged: bool = False,
) -> None:
    """PreconditionFailed unless `If-Match` is absent, `*`, or lists the current ETag (compared
    strongly: a weak `W/"..."` ETag never matches, as RFC 9110 says for If-Match), with the
    current ETag and the resource as `current()` shows it now; InvalidInput when it is none of
    RFC 9110's forms. `tagged`: the ETag is the shown resource's tag, as its read answers."""
    if _matches(if_match, version):
        return
    shown = await current()
    tag = shown_etag(shown, version) if tagged else etag(version)
    raise PreconditionFailed(Code.version_changed, etag=tag, current=shown.model_dump(mode="json"))
