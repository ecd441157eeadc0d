"""The call-control store on SQLAlchemy connections: SQLite's (and, in the contract tests,
PostgreSQL's through SQLAlchemy). One connection's work is one transaction, which SQLite begins
with BEGIN IMMEDIATE at its first statement."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
from app.observability.metrics import LOOKUP_BATCH
from app.quotas.models import CallAuthorization, CallRecord
from app.quotas.repository import CALL_COLUMNS, USED_AND_HELD


class _Writes:
    """The statements whose SQL differs by backend, built once per store."""

    def __init__(self, dialect: str) -> None:
        self.insert_authorization = queries.insert_or_nothing(
            dialect, CallAuthorization.__table__, queries.AUTHORIZATION_ANSWER
        )
        self.insert_call = queries.insert_or_nothing(dialect, CallRecord.__table__, CALL_COLUMNS)
        self.add_usage = queries.add_usage(dialect)
        self.insert_event = queries.insert_event_once(dialect)
        self.count_call = queries.count_call(dialect)


class SqlAlchemyConnection:
    def __init__(self, conn: AsyncConnection, writes: _Writes) -> None:
        self._conn = conn
        self._writes = writes

    async def _first(self, statement: Any, params: dict[str, Any]) -> Row[Any] | None:
        return (await self._conn.execute(statement, params)).first()

    async def begin(self) -> None:
        if not self._conn.in_transaction():
            await self._conn.begin()

    async def sip_account(self, key: SipAccountKey) -> SipAccountRecord | None:
        row = await self._first(queries.SIP_ACCOUNT, key._asdict())
        return None if row is None else SipAccountRecord._make(row)

    async def sip_accounts(self, keys: list[SipAccountKey]) -> list[SipAccountRecord | None]:
        """One statement per tenant scope among the keys (a request's keys share one)."""
        found: dict[SipAccountKey, SipAccountRecord] = {}
        for tenant_id in {key.tenant_id for key in keys}:
            names = [(k.domain, k.name_key) for k in keys if k.tenant_id == tenant_id]
            params = {"names": names, "tenant_id": tenant_id}
            for row in await self._conn.execute(queries.SIP_ACCOUNTS_NAMED, params):
                found[SipAccountKey(row[0], row[1], tenant_id)] = SipAccountRecord._make(row[2:])
        return [found.get(key) for key in keys]

    async def extension_holder(
        self, *, domain: str, number: str, tenant_id: uuid.UUID | None
    ) -> ExtensionHolderRecord | None:
        params = {"domain": domain, "number": number, "tenant_id": tenant_id}
        rows = (await self._conn.execute(queries.EXTENSION_HOLDER, params)).mappings().all()
        return queries.extension_holder_of(rows)

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
        statement = queries.CALLER_BY_USERNAME if by_username else queries.CALLER_BY_USER_ID
        return queries.caller_of(await self._first(statement, params))

    async def authorized_caller(
        self, *, domain: str, call_id: str, tenant_id: uuid.UUID | None
    ) -> Caller | None:
        params = {"domain": domain, "call_id": call_id, "tenant_id": tenant_id}
        return queries.caller_of(await self._first(queries.AUTHORIZED_CALLER, params))

    async def lock_limit(self, *, user_id: uuid.UUID) -> int | None:
        row = await self._first(queries.LOCK_LIMIT, {"user_id": user_id})
        return None if row is None else row.limit_minutes

    async def used_and_held(self, *, user_id: uuid.UUID, period: str, now: datetime) -> UsedAndHeld:
        row = await self._first(USED_AND_HELD, {"user_id": user_id, "period": period, "now": now})
        assert row is not None
        return UsedAndHeld(used_seconds=int(row.used), held_seconds=int(row.held))

    async def store_authorization(
        self, new: NewAuthorization
    ) -> tuple[StoredAuthorization, bool, CallCounts | None]:
        values = {"id": uuid.uuid4(), **new._asdict()}
        try:
            row = await self._first(self._writes.insert_authorization, values)
            if row is None:
                row = await self._first(
                    queries.SELECT_AUTHORIZATION,
                    {"tenant_id": new.tenant_id, "call_id": new.call_id},
                )
                assert row is not None
                return StoredAuthorization._make(row), False, None
            if new.emergency:
                return StoredAuthorization._make(row), True, None
            minutes = queries.counting_params(new.created_at)
            counts = await self._first(
                self._writes.count_call,
                {
                    "user_id": new.user_id,
                    "open_calls": 0 if new.expires_at is None else 1,
                    "open_calls_expiry": new.expires_at,
                    "calls_window": minutes["window"],
                    "calls_in_window": 1,
                    "calls_in_last_window": 0,
                    "last_window": minutes["last_window"],
                },
            )
        except IntegrityError:
            raise CallerChanged() from None
        assert counts is not None
        return StoredAuthorization._make(row), True, CallCounts._make(counts)

    async def recount_calls(
        self, *, user_id: uuid.UUID, now: datetime, since: datetime
    ) -> CallsInProgress:
        await self._first(queries.LOCK_COUNTER, {"key_user_id": user_id})
        params = {
            "key_user_id": user_id,
            "now": now,
            "since": since,
            **queries.counting_params(now),
        }
        row = await self._first(queries.RECOUNT, params)
        assert row is not None
        return CallsInProgress._make(row)

    async def refuse_authorization(
        self, *, tenant_id: uuid.UUID, call_id: str, reason: str, now: datetime
    ) -> StoredAuthorization:
        params = {"key_tenant_id": tenant_id, "key_call_id": call_id, "reason": reason, "now": now}
        row = await self._first(queries.REFUSE_AUTHORIZATION, params)
        assert row is not None
        await self._conn.execute(queries.FREE_SLOT, {"key_user_id": row.user_id})
        return StoredAuthorization._make(row)

    async def suspend_outbound(self, *, user_id: uuid.UUID, now: datetime) -> bool:
        params = {"key_user_id": user_id, "now": now}
        return await self._first(queries.SUSPEND_OUTBOUND, params) is not None

    async def record_call(self, new: NewCall) -> RecordedCall:
        try:
            return await self._record_call(new)
        except IntegrityError:
            raise CallerChanged() from None

    async def emit_once(self, event: NewEvent) -> None:
        await self._conn.execute(self._writes.insert_event, {"id": uuid.uuid4(), **event._asdict()})

    async def _record_call(self, new: NewCall) -> RecordedCall:
        # Statements one after the other in the connection's one transaction: SQLite has no
        # INSERT or UPDATE inside WITH.
        row = await self._first(self._writes.insert_call, {"id": uuid.uuid4(), **new._asdict()})
        if row is None:
            stored = await self._first(
                queries.SELECT_CALL, {"tenant_id": new.tenant_id, "call_id": new.call_id}
            )
            assert stored is not None
            return RecordedCall(StoredCall._make(stored), False, None)
        month_seconds = None
        user_exists = await self._first(queries.USER_EXISTS, {"user_id": new.user_id})
        if new.charged_seconds and user_exists is not None:
            await self._conn.execute(
                self._writes.add_usage,
                {
                    "tenant_id": new.tenant_id,
                    "user_id": new.user_id,
                    "period": new.period,
                    "used_seconds": new.charged_seconds,
                },
            )
            month = await self._first(
                queries.MONTH_SECONDS, {"user_id": new.user_id, "period": new.period}
            )
            month_seconds = month.used_seconds if month is not None else None
        hold = await self._first(
            queries.RELEASE_HOLD,
            {"key_tenant_id": new.tenant_id, "key_call_id": new.call_id, "now": new.created_at},
        )
        if hold is not None and hold.expires_at is not None and hold.expires_at > new.created_at:
            await self._conn.execute(queries.FREE_SLOT, {"key_user_id": hold.user_id})
        return RecordedCall(StoredCall._make(row), True, month_seconds)


class SqlAlchemyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writes = _Writes(engine.dialect.name)

    async def sip_account(self, key: SipAccountKey) -> SipAccountRecord | None:
        async with self.connection() as conn:
            return await conn.sip_account(key)

    async def sip_accounts(self, keys: list[SipAccountKey]) -> list[SipAccountRecord | None]:
        LOOKUP_BATCH.observe(len(keys))
        async with self.connection() as conn:
            return await conn.sip_accounts(keys)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[SqlAlchemyConnection]:
        async with self._engine.connect() as conn:
            yield SqlAlchemyConnection(conn, self._writes)
            if conn.in_transaction():
                await conn.commit()
