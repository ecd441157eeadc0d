"""Runs a create once per Idempotency-Key: the first request stores its answer in its own
transaction; a retry with the same key and body gets that answer, with another body a 422.
Two requests with one key at once make one resource: the second waits on the key's row
(PostgreSQL) or the write lock (SQLite) until the first commits, then replays it."""

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.db.session import Database
from app.db.sql import dialect_insert
from app.errors import Code, InvalidInput
from app.etags import etag
from app.idempotency.models import IdempotencyKey

KEY_LIFETIME = timedelta(days=1)
FIELD = "header.Idempotency-Key"


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """A create request's Idempotency-Key (None: none sent), the API key that sent it, and a
    hash of what it asked (method, path, tenant, body)."""

    owner_key_id: uuid.UUID
    key: str | None
    fingerprint: str


def request_hash(method: str, path: str, tenant: str, body: bytes) -> str:
    return hashlib.sha256(
        b"\n".join([method.encode(), path.encode(), tenant.encode(), body])
    ).hexdigest()


def _created(body: dict[str, Any], location: str, *, replayed: bool = False) -> JSONResponse:
    """A 201 answer with the new resource, where it lives and, when it shows its version, its
    ETag (a replay: as it was made)."""
    headers = {"Location": location}
    if isinstance(body.get("version"), int):
        headers["ETag"] = etag(body["version"])
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=201, headers=headers)


async def create_once(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    once: IdempotentRequest,
    create: Callable[[], Awaitable[tuple[BaseModel, str]]],
) -> JSONResponse:
    """`create()` returns the new resource and its location; with a key, at most once."""
    owner_key_id, key, fingerprint = once.owner_key_id, once.key, once.fingerprint
    if key is None:
        model, location = await create()
        return _created(model.model_dump(mode="json"), location)
    now = utcnow()
    scope = (IdempotencyKey.owner_key_id == owner_key_id, IdempotencyKey.key == key)
    await session.execute(delete(IdempotencyKey).where(*scope, IdempotencyKey.expires_at <= now))
    claimed = await session.scalar(
        dialect_insert(session, IdempotencyKey.__table__)
        .values(
            id=uuid.uuid4(),
            owner_key_id=owner_key_id,
            key=key,
            request_hash=fingerprint,
            created_at=now,
            expires_at=now + KEY_LIFETIME,
        )
        .on_conflict_do_nothing(index_elements=["owner_key_id", "key"])
        .returning(IdempotencyKey.__table__.c.id)
    )
    if claimed is None:
        return await _replay(session, cipher, scope=scope, fingerprint=fingerprint)
    model, location = await create()
    body = model.model_dump(mode="json")
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claimed)
        .values(status_code=201, response=cipher.encrypt(json.dumps(body)), location=location)
    )
    return _created(body, location)


async def _replay(
    session: AsyncSession, cipher: PasswordCipher, *, scope: Any, fingerprint: str
) -> JSONResponse:
    stored = await session.scalar(select(IdempotencyKey).where(*scope))
    if stored is None or stored.response is None or stored.status_code is None:
        # The first request with this key failed and stored nothing after all.
        raise InvalidInput(FIELD, Code.idempotency_key_in_use)
    if stored.request_hash != fingerprint:
        raise InvalidInput(FIELD, Code.idempotency_key_reused)
    body = json.loads(cipher.decrypt(stored.response))
    if stored.status_code == 201 and stored.location:
        return _created(body, stored.location, replayed=True)
    return JSONResponse(
        body, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
    )


async def prune_expired(db: Database) -> int:
    """Forgets the keys whose day has passed (and the answers kept with them); returns how
    many."""
    async with db.session_scope() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
        )
    return int(getattr(result, "rowcount", 0) or 0)
