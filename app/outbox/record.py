"""Writing events and audit entries in the session of the change they describe."""

import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from asgi_correlation_id import correlation_id
from sqlalchemy import Table, bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.sql import insert_many
from app.outbox.models import AuditEntry, Event


@dataclass(frozen=True, slots=True)
class Actor:
    """Who a request acts as: an API key (its id and name; never the key), or a person or client
    signed in with a token (its subject, name, e-mail and client; never the token)."""

    kind: str
    id: str
    name: str
    role: str
    key_id: uuid.UUID | None = None
    email: str | None = None
    client_id: str | None = None
    # The address the request came from.
    address: str | None = None


# Set by the request's authentication; None for jobs and the command line.
acting: ContextVar[Actor | None] = ContextVar("acting", default=None)

# Fields whose values never enter an event or an audit entry.
SECRET_FIELDS = frozenset(
    {"password", "password_encrypted", "ha1", "ha1_sha256", "key", "key_hash", "secret"}
)
REDACTED = "[redacted]"


def redact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: REDACTED if k in SECRET_FIELDS else v for k, v in values.items()}


def plain(value: Any) -> Any:
    """A value as JSON holds it."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "value"):  # an enum
        return value.value
    return value


def snapshot(obj: object, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {field: plain(getattr(obj, field)) for field in fields}


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields that changed, before and after."""
    changed = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in changed}, {k: after[k] for k in changed}


@dataclass(frozen=True, slots=True)
class Change:
    """What one change writes: its event and its audit entry. An update whose `after` is empty
    changed nothing and writes neither."""

    type: str
    tenant_id: uuid.UUID | None
    resource_type: str
    resource_id: uuid.UUID | str
    data: dict[str, Any] | None = None
    user_id: uuid.UUID | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


async def record(
    session: AsyncSession,
    *,
    type: str,
    tenant_id: uuid.UUID | None,
    resource_type: str,
    resource_id: uuid.UUID | str,
    data: dict[str, Any] | None = None,
    user_id: uuid.UUID | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """The event of a change and its audit entry, written in the change's transaction
    (committed or rolled back with it)."""
    await record_change(
        session,
        Change(
            type=type,
            tenant_id=tenant_id,
            resource_type=resource_type,
            resource_id=resource_id,
            data=data,
            user_id=user_id,
            before=before,
            after=after,
        ),
    )


async def record_change(session: AsyncSession, change: Change) -> None:
    """One change's event and audit entry. Plain INSERTs: every write pays for them, and the
    ORM's unit of work costs more than the statements."""
    if change.after is not None and not change.after:
        return
    values = _values(change, request_id=correlation_id.get(), actor=acting.get(), at=utcnow())
    if session.get_bind().dialect.name == "postgresql":
        # Both rows in one statement: one round trip more per change, not two.
        await session.execute(_BOTH_POSTGRES, values)
        return
    await session.execute(_EVENT, values)
    await session.execute(_AUDIT, values)


async def record_access(session: AsyncSession, change: Change) -> None:
    """An audit entry with no event: something read that must be on the record (a password
    revealed), not a change other services learn of."""
    values = _values(change, request_id=correlation_id.get(), actor=acting.get(), at=utcnow())
    await session.execute(_AUDIT, values)


async def record_many(session: AsyncSession, changes: list[Change]) -> None:
    """Many changes' events and audit entries (a bulk import's), as multi-row INSERTs, in the
    order given."""
    request_id, actor, at = correlation_id.get(), acting.get(), utcnow()
    events: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    for change in changes:
        if change.after is not None and not change.after:
            continue
        values = _values(change, request_id=request_id, actor=actor, at=at)
        events.append({column: values[name] for column, name in _EVENT_NAMES.items()})
        audit.append({column: values[name] for column, name in _AUDIT_NAMES.items()})
    await insert_many(session, _EVENT_TABLE, events)
    await insert_many(session, _AUDIT_TABLE, audit)


def _values(
    change: Change, *, request_id: str | None, actor: Actor | None, at: datetime
) -> dict[str, Any]:
    after = change.after
    return {
        "event_id": uuid.uuid4(),
        "audit_id": uuid.uuid4(),
        "tenant_id": change.tenant_id,
        "type": change.type,
        "resource_type": change.resource_type,
        "resource_id": str(change.resource_id),
        "data": redact(
            {
                **(change.data or {}),
                **({"changed": after} if after else {}),
                # Events say who acted by kind and id only.
                **({"actor": {"kind": actor.kind, "id": actor.id}} if actor else {}),
            }
        ),
        "request_id": request_id,
        "occurred_at": at,
        "actor_key_id": actor.key_id if actor else None,
        "actor_key_name": actor.name[:100] if actor and actor.key_id else None,
        "actor_role": actor.role if actor else None,
        "actor_kind": actor.kind if actor else None,
        "actor_id": actor.id if actor else None,
        "actor_name": actor.name if actor else None,
        "actor_email": actor.email if actor else None,
        "actor_client_id": actor.client_id if actor else None,
        "actor_address": actor.address if actor else None,
        "user_id": change.user_id,
        "before": redact(change.before) if change.before is not None else None,
        "after": redact(after) if after is not None else None,
    }


def _bound(table: Any, names: dict[str, str]) -> dict[str, Any]:
    """Each column bound to the parameter named for it, with the column's type."""
    return {column: bindparam(name, type_=table.c[column].type) for column, name in names.items()}


# Each column, and the parameter of `_values` it takes.
_EVENT_NAMES = {
    "id": "event_id",
    "tenant_id": "tenant_id",
    "type": "type",
    "resource_type": "resource_type",
    "resource_id": "resource_id",
    "data": "data",
    "request_id": "request_id",
    "occurred_at": "occurred_at",
}
_AUDIT_NAMES = {
    "id": "audit_id",
    "tenant_id": "tenant_id",
    "occurred_at": "occurred_at",
    "actor_key_id": "actor_key_id",
    "actor_key_name": "actor_key_name",
    "actor_role": "actor_role",
    "actor_kind": "actor_kind",
    "actor_id": "actor_id",
    "actor_name": "actor_name",
    "actor_email": "actor_email",
    "actor_client_id": "actor_client_id",
    "actor_address": "actor_address",
    "action": "type",
    "resource_type": "resource_type",
    "resource_id": "resource_id",
    "user_id": "user_id",
    "before": "before",
    "after": "after",
    "request_id": "request_id",
}
_EVENT_TABLE = cast(Table, Event.__table__)
_AUDIT_TABLE = cast(Table, AuditEntry.__table__)
_EVENT_COLUMNS = _bound(_EVENT_TABLE, _EVENT_NAMES)
_AUDIT_COLUMNS = _bound(_AUDIT_TABLE, _AUDIT_NAMES)
# On the tables, not the mapped classes: the ORM's bulk-insert path would cost more than the
# statement.
_EVENT = insert(_EVENT_TABLE).values(_EVENT_COLUMNS)
_AUDIT = insert(_AUDIT_TABLE).values(_AUDIT_COLUMNS)
_BOTH_POSTGRES = (
    insert(_AUDIT_TABLE)
    .values(_AUDIT_COLUMNS)
    .add_cte(insert(_EVENT_TABLE).values(_EVENT_COLUMNS).cte("event_row"))
)
