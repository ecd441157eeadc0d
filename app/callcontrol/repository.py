"""Core queries for the call-control hot paths: each answer in as few round trips as possible."""

import uuid
from collections.abc import Mapping
from typing import Any, TypeAlias, cast

from sqlalchemy import (
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    func,
    null,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.callcontrol.models import CallAuthorization, CallRecord
from app.database import (
    AnyRow,
    Database,
    HotConnection,
    PreparedQuery,
    begin,
    dialect_insert,
    dialect_name,
)
from app.devices.models import Device
from app.extensions.models import Extension
from app.quotas.models import MonthlyUsage
from app.tenants.models import Tenant
from app.users.models import User


# Statements are built once: building and cache-keying a select() costs more CPU than running it.
def _both_scopes(query: Select[*tuple[Any, ...]]) -> dict[bool, Select[*tuple[Any, ...]]]:
    """The query for a platform key (any tenant) and for a tenant's key (its tenant only)."""
    return {False: query, True: query.where(Tenant.id == bindparam("tenant_id"))}


def _prepared(query: Select[*tuple[Any, ...]]) -> dict[bool, PreparedQuery]:
    return {scoped: PreparedQuery(q) for scoped, q in _both_scopes(query).items()}


def _params(tenant_id: uuid.UUID | None, **params: Any) -> dict[str, Any]:
    return {**params, "tenant_id": tenant_id} if tenant_id is not None else params


_SIP_ACCOUNT_COLUMNS = (
    Tenant.id.label("tenant_id"),
    Tenant.sip_domain.label("realm"),
    Device.id.label("device_id"),
    Device.user_id,
    Device.name.label("username"),
    Device.enabled.label("device_enabled"),
    Device.ha1,
    Device.ha1_sha256,
    User.enabled.label("user_enabled"),
    User.auto_answer,
)

# SQLite: one account per statement.
_SIP_ACCOUNT = _prepared(
    select(*_SIP_ACCOUNT_COLUMNS)
    .join(Device, Device.tenant_id == Tenant.id)
    .join(User, User.id == Device.user_id)
    .where(Tenant.sip_domain == bindparam("domain"), Device.name_key == bindparam("name_key"))
)

# PostgreSQL: the accounts of a batch of lookups in one statement, each row numbered `i` after
# the lookup it answers; a lookup with a tenant (a tenant's key) sees that tenant's accounts only.
_ASKED = (
    func.unnest(
        bindparam("domains", type_=ARRAY(String)),
        bindparam("name_keys", type_=ARRAY(String)),
        bindparam("tenant_ids", type_=ARRAY(Uuid)),
    )
    .table_valued("domain", "name_key", "tenant_id", with_ordinality="i")
    .render_derived(with_types=False)
)
_SIP_ACCOUNTS = PreparedQuery(
    select(_ASKED.c.i, *_SIP_ACCOUNT_COLUMNS)
    .select_from(_ASKED)
    .join(
        Tenant,
        and_(
            Tenant.sip_domain == _ASKED.c.domain,
            or_(_ASKED.c.tenant_id.is_(None), Tenant.id == _ASKED.c.tenant_id),
        ),
    )
    .join(Device, and_(Device.tenant_id == Tenant.id, Device.name_key == _ASKED.c.name_key))
    .join(User, User.id == Device.user_id)
)

SipAccountKey: TypeAlias = tuple[str, str, uuid.UUID | None]


_EXTENSION_ROUTE = _prepared(
    select(
        Tenant.id.label("tenant_id"),
        User.id.label("user_id"),
        User.enabled.label("user_enabled"),
        User.auto_answer,
        Device.name.label("device_name"),
    )
    .join(Extension, Extension.tenant_id == Tenant.id)
    .join(User, User.id == Extension.user_id)
    .outerjoin(Device, and_(Device.user_id == User.id, Device.enabled.is_(True)))
    .where(Tenant.sip_domain == bindparam("domain"), Extension.number == bindparam("number"))
    .order_by(Device.created_at)
)

_CALLER_COLUMNS = (
    Tenant.id.label("tenant_id"),
    Tenant.timezone,
    Tenant.emergency_numbers,
    Tenant.billing_increment_seconds,
    User.id.label("user_id"),
    User.enabled.label("user_enabled"),
    User.outbound_allowed,
    User.limit_minutes,
)

_CALLER_BY_USERNAME = _prepared(
    select(*_CALLER_COLUMNS, Device.id.label("device_id"), Device.enabled.label("device_enabled"))
    .join(Device, Device.tenant_id == Tenant.id)
    .join(User, User.id == Device.user_id)
    .where(Tenant.sip_domain == bindparam("domain"), Device.name_key == bindparam("name_key"))
)

_CALLER_BY_USER_ID = _prepared(
    select(*_CALLER_COLUMNS, null().label("device_id"), true().label("device_enabled"))
    .join(User, User.tenant_id == Tenant.id)
    .where(Tenant.sip_domain == bindparam("domain"), User.id == bindparam("user_id"))
)

_LOCK_USER = PreparedQuery(
    select(User.limit_minutes).where(User.id == bindparam("user_id")).with_for_update()
)


async def find_sip_account(
    db: Database, *, domain: str, username: str, tenant_id: uuid.UUID | None
) -> Mapping[str, Any] | None:
    if db.driver_pool is not None:
        key = (domain, username.lower(), tenant_id)
        return await db.batcher("sip_account", _sip_accounts).get(key)
    params = _params(tenant_id, domain=domain, name_key=username.lower())
    async with db.hot_connection() as conn:
        return await _SIP_ACCOUNT[tenant_id is not None].first(conn, params)


async def _sip_accounts(db: Database, keys: list[SipAccountKey]) -> list[Mapping[str, Any] | None]:
    params = {
        "domains": [domain for domain, _, _ in keys],
        "name_keys": [name_key for _, name_key, _ in keys],
        "tenant_ids": [tenant_id for _, _, tenant_id in keys],
    }
    async with db.hot_connection() as conn:
        rows = await _SIP_ACCOUNTS.all(conn, params)
    found = {row["i"]: row for row in rows}
    return [found.get(i) for i in range(1, len(keys) + 1)]


async def find_extension_route(
    conn: HotConnection, *, domain: str, number: str, tenant_id: uuid.UUID | None
) -> list[Mapping[str, Any]]:
    """One row per enabled device of the extension's holder (one row with no device if none)."""
    params = _params(tenant_id, domain=domain, number=number)
    return await _EXTENSION_ROUTE[tenant_id is not None].all(conn, params)


async def find_caller(
    conn: HotConnection,
    *,
    domain: str,
    username: str | None,
    user_id: uuid.UUID | None,
    tenant_id: uuid.UUID | None,
) -> Mapping[str, Any] | None:
    """The caller with its tenant's call settings."""
    scoped = tenant_id is not None
    if username is not None:
        query = _CALLER_BY_USERNAME[scoped]
        params = _params(tenant_id, domain=domain, name_key=username.lower())
    else:
        query = _CALLER_BY_USER_ID[scoped]
        params = _params(tenant_id, domain=domain, user_id=user_id)
    return await query.first(conn, params)


async def lock_user_limit(conn: HotConnection, *, user_id: uuid.UUID) -> int | None:
    """Locks the user's row until the transaction (begun here if none was) ends, so that one
    user's concurrent authorizations are decided one after the other; returns the limit as it
    now stands."""
    await begin(conn)
    row = await _LOCK_USER.first(conn, {"user_id": user_id})
    return None if row is None else row["limit_minutes"]


_AUTHORIZATION_ANSWER = (
    CallAuthorization.call_id,
    CallAuthorization.allowed,
    CallAuthorization.reason,
    CallAuthorization.max_duration_seconds,
    CallAuthorization.emergency,
    CallAuthorization.user_id,
)


_SELECT_AUTHORIZATION = PreparedQuery(
    select(*_AUTHORIZATION_ANSWER).where(
        CallAuthorization.tenant_id == bindparam("tenant_id"),
        CallAuthorization.call_id == bindparam("call_id"),
    )
)


def _insert_or_nothing(table: Any, returning: tuple[Any, ...]) -> PreparedQuery:
    """INSERT ... ON CONFLICT (tenant_id, call_id) DO NOTHING RETURNING, for each backend."""

    def build(dialect: str) -> Any:
        return (
            dialect_insert(dialect, table)
            .on_conflict_do_nothing(index_elements=["tenant_id", "call_id"])
            .returning(*returning)
        )

    columns = [c.name for c in table.columns if c.name != "released_at"]
    return PreparedQuery(build("postgresql"), portable=build("sqlite"), column_keys=columns)


async def _stored_first(
    conn: HotConnection, query: PreparedQuery, values: dict[str, Any]
) -> Mapping[str, Any]:
    """The row stored first for this call id: the one whose conflict stopped an insert."""
    stored = await query.first(
        conn, {"tenant_id": values["tenant_id"], "call_id": values["call_id"]}
    )
    assert stored is not None
    return stored


_INSERT_AUTHORIZATION = _insert_or_nothing(CallAuthorization.__table__, _AUTHORIZATION_ANSWER)


async def insert_authorization(conn: HotConnection, values: dict[str, Any]) -> Mapping[str, Any]:
    """Stores the answer for a call id, or returns the one stored first for it."""
    inserted = await _INSERT_AUTHORIZATION.first(conn, {"id": uuid.uuid4(), **values})
    return inserted or await _stored_first(conn, _SELECT_AUTHORIZATION, values)


_CALL_COLUMNS = (
    CallRecord.call_id,
    CallRecord.user_id,
    CallRecord.device_id,
    CallRecord.destination,
    CallRecord.started_at,
    CallRecord.duration_seconds,
    CallRecord.charged_seconds,
    CallRecord.period,
    CallRecord.emergency,
)

_SELECT_CALL = PreparedQuery(
    select(*_CALL_COLUMNS).where(
        CallRecord.tenant_id == bindparam("tenant_id"), CallRecord.call_id == bindparam("call_id")
    )
)

_INSERT_CALL = _insert_or_nothing(CallRecord.__table__, _CALL_COLUMNS)

# PostgreSQL records the call, charges it and releases its hold in one statement (atomic without
# a transaction around it); SQLite, which has no INSERT/UPDATE in WITH, does it in three.
_RECORD_CALL_POSTGRES = PreparedQuery(
    text(
        """
        WITH inserted AS (
            INSERT INTO call_record (id, tenant_id, user_id, device_id, call_id, destination,
                started_at, duration_seconds, charged_seconds, period, emergency, created_at)
            VALUES (:id, :tenant_id, :user_id, :device_id, :call_id, :destination,
                :started_at, :duration_seconds, :charged_seconds, :period, :emergency,
                :created_at)
            ON CONFLICT (tenant_id, call_id) DO NOTHING
            RETURNING *
        ), charged AS (
            INSERT INTO monthly_usage (user_id, period, tenant_id, used_seconds)
            SELECT user_id, period, tenant_id, charged_seconds FROM inserted
            WHERE charged_seconds > 0
            ON CONFLICT (user_id, period)
            DO UPDATE SET used_seconds = monthly_usage.used_seconds + excluded.used_seconds
        ), released AS (
            UPDATE call_authorization SET released_at = :created_at
            FROM inserted
            WHERE call_authorization.tenant_id = inserted.tenant_id
              AND call_authorization.call_id = inserted.call_id
              AND call_authorization.released_at IS NULL
        )
        SELECT call_id, user_id, device_id, destination, started_at, duration_seconds,
            charged_seconds, period, emergency
        FROM inserted
        """
    )
)


async def record_call(
    conn: HotConnection, values: dict[str, Any]
) -> tuple[Mapping[str, Any], bool]:
    """Records a call once, adds its charge to the month and releases its hold; returns the
    stored call and whether this report recorded it."""
    params = {"id": uuid.uuid4(), **values}
    if dialect_name(conn) == "sqlite":
        inserted = await _record_call_sqlite(cast(AsyncConnection, conn), params)
    else:
        inserted = await _RECORD_CALL_POSTGRES.first(conn, params)
    if inserted is not None:
        return inserted, True
    return await _stored_first(conn, _SELECT_CALL, values), False


async def _record_call_sqlite(
    conn: AsyncConnection, params: dict[str, Any]
) -> Mapping[str, Any] | None:
    """The three statements of _RECORD_CALL_POSTGRES, in the hot connection's transaction."""
    inserted = await _INSERT_CALL.first(conn, params)
    if inserted is None:
        return None
    if params["charged_seconds"]:
        await conn.execute(
            _ADD_USAGE_SQLITE,
            {
                "tenant_id": params["tenant_id"],
                "user_id": params["user_id"],
                "period": params["period"],
                "used_seconds": params["charged_seconds"],
            },
        )
    await conn.execute(
        _RELEASE_HOLD,
        {
            "key_tenant_id": params["tenant_id"],
            "key_call_id": params["call_id"],
            "now": params["created_at"],
        },
    )
    return inserted


def _add_usage_statement() -> Any:
    statement = dialect_insert("sqlite", MonthlyUsage.__table__)
    return statement.on_conflict_do_update(
        index_elements=["user_id", "period"],
        set_={
            "used_seconds": MonthlyUsage.__table__.c.used_seconds + statement.excluded.used_seconds
        },
    )


_ADD_USAGE_SQLITE = _add_usage_statement()


_RELEASE_HOLD = (
    update(CallAuthorization)
    .where(
        CallAuthorization.tenant_id == bindparam("key_tenant_id"),
        CallAuthorization.call_id == bindparam("key_call_id"),
        CallAuthorization.released_at.is_(None),
    )
    .values(released_at=bindparam("now"))
)


async def list_calls(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[AnyRow], int]:
    where = (CallRecord.tenant_id == tenant_id, CallRecord.user_id == user_id)
    total = await session.scalar(select(func.count()).select_from(CallRecord).where(*where))
    rows = await session.execute(
        select(*_CALL_COLUMNS)
        .where(*where)
        .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total or 0
