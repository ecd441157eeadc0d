"""Writing events and audit entries in the session of the change they describe."""

import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from asgi_correlation_id import correlation_id
from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.outbox.models import AuditEntry, Event


@dataclass(frozen=True, slots=True)
class Actor:
    """The API key a request acts with (its id and name; never the key)."""

    key_id: uuid.UUID
    name: str
    role: str


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
    (committed or rolled back with it). An update whose `after` is empty changed nothing
    and writes nothing. Plain INSERTs: every write pays for them, and the ORM's unit of
    work costs more than the statements."""
    if after is not None and not after:
        return
    request_id = correlation_id.get()
    actor = acting.get()
    values = {
        "event_id": uuid.uuid4(),
        "audit_id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "type": type,
        "resource_type": resource_type,
        "resource_id": str(resource_id),
        "data": redact({**(data or {}), **({"changed": after} if after else {})}),
        "request_id": request_id,
        "occurred_at": utcnow(),
        "actor_key_id": actor.key_id if actor else None,
        "actor_key_name": actor.name if actor else None,
        "actor_role": actor.role if actor else None,
        "user_id": user_id,
        "before": redact(before) if before is not None else None,
        "after": redact(after) if after is not None else None,
    }
    if session.get_bind().dialect.name == "postgresql":
        # Both rows in one statement: one round trip more per change, not two.
        await session.execute(_BOTH_POSTGRES, values)
        return
    await session.execute(_EVENT, values)
    await session.execute(_AUDIT, values)


def _bound(table: Any, names: dict[str, str]) -> dict[str, Any]:
    """Each column bound to the parameter named for it, with the column's type."""
    return {column: bindparam(name, type_=table.c[column].type) for column, name in names.items()}


_EVENT_COLUMNS = _bound(
    Event.__table__,
    {
        "id": "event_id",
        "tenant_id": "tenant_id",
        "type": "type",
        "resource_type": "resource_type",
        "resource_id": "resource_id",
        "data": "data",
        "request_id": "request_id",
        "occurred_at": "occurred_at",
    },
)
_AUDIT_COLUMNS = _bound(
    AuditEntry.__table__,
    {
        "id": "audit_id",
        "tenant_id": "tenant_id",
        "occurred_at": "occurred_at",
        "actor_key_id": "actor_key_id",
        "actor_key_name": "actor_key_name",
        "actor_role": "actor_role",
        "action": "type",
        "resource_type": "resource_type",
        "resource_id": "resource_id",
        "user_id": "user_id",
        "before": "before",
        "after": "after",
        "request_id": "request_id",
    },
)
_EVENT = insert(Event).values(_EVENT_COLUMNS)
_AUDIT = insert(AuditEntry).values(_AUDIT_COLUMNS)
_BOTH_POSTGRES = (
    insert(AuditEntry)
    .values(_AUDIT_COLUMNS)
    .add_cte(insert(Event).values(_EVENT_COLUMNS).cte("event_row"))
)
