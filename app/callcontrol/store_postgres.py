"""The call-control store on PostgreSQL: the hot path's own asyncpg connections, statements
prepared once per connection, registrar lookups that arrive together answered by one statement,
and a usage report recorded, charged and released in one."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
from sqlalchemy import text

from app.callcontrol import queries
from app.callcontrol.store import (
    CallCounts,
    Caller,
    CallerChanged,
    CallsInProgress,
    ExtensionHolderRecord,
    NewAuthorization,
    NewCall,
    NewEvent,
    RecordedCall,
    SipAccountKey,
    SipAccountRecord,
    StoredAuthorization,
    StoredCall,
    UsedAndHeld,
)
from app.db.batching import Batcher
from app.db.driver import DriverPool, PreparedQuery
from app.observability.metrics import LOOKUP_BATCH
from app.quotas.repository import USED_AND_HELD

_SIP_ACCOUNTS = PreparedQuery(queries.SIP_ACCOUNTS)
_EXTENSION_HOLDER = PreparedQuery(queries.EXTENSION_HOLDER)
_CALLER_BY_USERNAME = PreparedQuery(queries.CALLER_BY_USERNAME)
_CALLER_BY_USER_ID = PreparedQuery(queries.CALLER_BY_USER_ID)
_AUTHORIZED_CALLER = PreparedQuery(queries.AUTHORIZED_CALLER)
_LOCK_LIMIT = PreparedQuery(queries.LOCK_LIMIT)
_USED_AND_HELD = PreparedQuery(USED_AND_HELD)
_INSERT_AUTHORIZATION = PreparedQuery(queries.insert_and_count())
_SELECT_AUTHORIZATION = PreparedQuery(queries.SELECT_AUTHORIZATION)
_LOCK_COUNTER = PreparedQuery(queries.LOCK_COUNTER)
_RECOUNT = PreparedQuery(queries.RECOUNT)
_REFUSE_AUTHORIZATION = PreparedQuery(queries.refuse_and_free())
_SUSPEND_OUTBOUND = PreparedQuery(queries.SUSPEND_OUTBOUND)
_SELECT_CALL = PreparedQuery(queries.SELECT_CALL)
_INSERT_EVENT = PreparedQuery(
    queries.insert_event_once("postgresql"), column_keys=queries.EVENT_INSERT_KEYS
)

# Records the call, charges it and releases its hold in one statement: atomic without a
# transaction around it. The tenant's row is share-locked first, before any row of the
# ledger: a deletion of the tenant then waits for the report, or the report for it (and
# finds no tenant), instead of the two locking each other's rows in turn.
_RECORD_CALL = PreparedQuery(
    text(
        """
        WITH tenant_kept AS (
            SELECT id FROM tenant WHERE id = :tenant_id FOR KEY SHARE
        ), inserted AS (
            INSERT INTO call_record (id, tenant_id, user_id, device_id, call_id, destination,
                started_at, duration_seconds, charged_seconds, period, emergency, created_at)
            SELECT :id, tenant_kept.id, :user_id, :device_id, :call_id, :destination,
                :started_at, :duration_seconds, :charged_seconds, :period, :emergency,
                :created_at
            FROM tenant_kept
            ON CONFLICT (tenant_id, call_id) DO NOTHING
            RETURNING *
        ), charged AS (
            INSERT INTO monthly_usage (user_id, period, tenant_id, used_seconds)
            SELECT user_id, period, tenant_id, charged_seconds FROM inserted
            WHERE charged_seconds > 0
              AND EXISTS (SELECT 1 FROM user_account WHERE user_account.id = inserted.user_id)
            ON CONFLICT (user_id, period)
            DO UPDATE SET used_seconds = monthly_usage.used_seconds + excluded.used_seconds
            RETURNING used_seconds
        ), released AS (
            UPDATE call_authorization SET released_at = :created_at
            FROM inserted
            WHERE call_authorization.tenant_id = inserted.tenant_id
              AND call_authorization.call_id = inserted.call_id
              AND call_authorization.released_at IS NULL
            RETURNING call_authorization.user_id, call_authorization.expires_at
        ), freed AS (
            -- queries.FREE_SLOT, for a hold reported before its expiry
            UPDATE call_counter SET open_calls = call_counter.open_calls - 1,
                open_calls_expiry = CASE WHEN call_counter.open_calls <= 1 THEN NULL
                    ELSE call_counter.open_calls_expiry END
            FROM released
            WHERE call_counter.user_id = released.user_id
              AND released.expires_at > :created_at
              AND call_counter.open_calls > 0
        )
        SELECT call_id, user_id, device_id, destination, started_at, duration_seconds,
            charged_seconds, period, emergency,
            (SELECT used_seconds FROM charged) AS month_seconds
        FROM inserted
        """
    )
)


class PostgresConnection:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def begin(self) -> None:
        if not self._conn.is_in_transaction():
            await self._conn.execute("BEGIN")

    async def extension_holder(
        self, *, domain: str, number: str, tenant_id: uuid.UUID | None
    ) -> ExtensionHolderRecord | None:
        params = {"domain": domain, "number": number, "tenant_id": tenant_id}
        return queries.extension_holder_of(await _EXTENSION_HOLDER.all(self._conn, params))

    async def caller(
        self,
        *,
        domain: str,
        username: str | None,
        user_id: uuid.UUID | None,
        tenant_id: uuid.UUID | None,
    ) -> Caller | None:
        by_username, params = queries.caller_lookup(
            domain=domain, username=username, user_id=user_id, tenant_id=tenant_id
        )
        query = _CALLER_BY_USERNAME if by_username else _CALLER_BY_USER_ID
        return queries.caller_of(await query.first(self._conn, params))

    async def authorized_caller(
        self, *, domain: str, call_id: str, tenant_id: uuid.UUID | None
    ) -> Caller | None:
        params = {"domain": domain, "call_id": call_id, "tenant_id": tenant_id}
        return queries.caller_of(await _AUTHORIZED_CALLER.first(self._conn, params))

    async def lock_limit(self, *, user_id: uuid.UUID) -> int | None:
        row = await _LOCK_LIMIT.first(self._conn, {"user_id": user_id})
        return None if row is None else row["limit_minutes"]

    async def used_and_held(self, *, user_id: uuid.UUID, period: str, now: datetime) -> UsedAndHeld:
        params = {"user_id": user_id, "period": period, "now": now}
        row = await _USED_AND_HELD.first(self._conn, params)
        assert row is not None
        return UsedAndHeld(used_seconds=int(row["used"]), held_seconds=int(row["held"]))

    async def store_authorization(
        self, new: NewAuthorization
    ) -> tuple[StoredAuthorization, bool, CallCounts | None]:
        values = {"id": uuid.uuid4(), **new._asdict(), **queries.counting_params(new.created_at)}
        try:
            row = await _INSERT_AUTHORIZATION.first(self._conn, values)
        except (asyncpg.ForeignKeyViolationError, asyncpg.DeadlockDetectedError):
            raise CallerChanged() from None
        if row is not None:
            answer, counts = row[: len(StoredAuthorization._fields)], row[-3:]
            counted = None if counts[0] is None else CallCounts._make(counts)
            return StoredAuthorization._make(answer), True, counted
        params = {"tenant_id": new.tenant_id, "call_id": new.call_id}
        row = await _SELECT_AUTHORIZATION.first(self._conn, params)
        assert row is not None
        return StoredAuthorization._make(row), False, None

    async def recount_calls(
        self, *, user_id: uuid.UUID, now: datetime, since: datetime
    ) -> CallsInProgress:
        await _LOCK_COUNTER.first(self._conn, {"key_user_id": user_id})
        params = {
            "key_user_id": user_id,
            "now": now,
            "since": since,
            **queries.counting_params(now),
        }
        row = await _RECOUNT.first(self._conn, params)
        assert row is not None
        return CallsInProgress._make(row)

    async def refuse_authorization(
        self, *, tenant_id: uuid.UUID, call_id: str, reason: str, now: datetime
    ) -> StoredAuthorization:
        params = {"key_tenant_id": tenant_id, "key_call_id": call_id, "reason": reason, "now": now}
        row = await _REFUSE_AUTHORIZATION.first(self._conn, params)
        assert row is not None
        return StoredAuthorization._make(row)

    async def suspend_outbound(self, *, user_id: uuid.UUID, now: datetime) -> bool:
        params = {"key_user_id": user_id, "now": now}
        return await _SUSPEND_OUTBOUND.first(self._conn, params) is not None

    async def record_call(self, new: NewCall) -> RecordedCall:
        try:
            row = await _RECORD_CALL.first(self._conn, {"id": uuid.uuid4(), **new._asdict()})
        except (asyncpg.ForeignKeyViolationError, asyncpg.DeadlockDetectedError):
            # The tenant, or the user being charged, was being deleted by a concurrent
            # transaction.
            raise CallerChanged() from None
        if row is not None:
            return RecordedCall(StoredCall._make(row[:-1]), True, row[-1])
        stored = await _SELECT_CALL.first(
            self._conn, {"tenant_id": new.tenant_id, "call_id": new.call_id}
        )
        if stored is None:  # nothing inserted, nothing stored: the tenant is gone
            raise CallerChanged()
        return RecordedCall(StoredCall._make(stored), False, None)

    async def emit_once(self, event: NewEvent) -> None:
        await _INSERT_EVENT.all(self._conn, {"id": uuid.uuid4(), **event._asdict()})


class PostgresStore:
    def __init__(self, pool: DriverPool, *, batch_concurrency: int) -> None:
        self._pool = pool
        self._lookups: Batcher[SipAccountKey, SipAccountRecord | None] = Batcher(
            self.sip_accounts, concurrency=batch_concurrency
        )

    async def sip_account(self, key: SipAccountKey) -> SipAccountRecord | None:
        return await self._lookups.get(key)

    async def sip_accounts(self, keys: list[SipAccountKey]) -> list[SipAccountRecord | None]:
        LOOKUP_BATCH.observe(len(keys))
        params = {
            "domains": [key.domain for key in keys],
            "name_keys": [key.name_key for key in keys],
            "tenant_ids": [key.tenant_id for key in keys],
        }
        rows = await self._pool.read(_SIP_ACCOUNTS, params)
        # Each row is numbered after its lookup, then the account's columns.
        found = {row[0]: SipAccountRecord._make(row[1:]) for row in rows}
        return [found.get(i) for i in range(1, len(keys) + 1)]

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PostgresConnection]:
        async with self._pool.connection() as conn:
            yield PostgresConnection(conn)
