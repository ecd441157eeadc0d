"""The call-control hot path's storage seam: what the rules need to read and write, as typed
records (NamedTuples: built from a row at the cost of a tuple), behind one interface with two
implementations (asyncpg on PostgreSQL, SQLAlchemy elsewhere).
`tests/callcontrol/test_store_contract.py` runs the same cases against both."""

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol


class SipAccountKey(NamedTuple):
    """A registrar lookup: the account `name_key` (lower-cased username) in `domain`, seen by a
    tenant's key (`tenant_id`) or a platform key (None: any tenant)."""

    domain: str
    name_key: str
    tenant_id: uuid.UUID | None


class SipAccountRecord(NamedTuple):
    tenant_id: uuid.UUID
    realm: str
    device_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    device_enabled: bool
    ha1: str
    ha1_sha256: str
    user_enabled: bool
    auto_answer: bool
    max_contacts: int


class ExtensionHolderRecord(NamedTuple):
    """The holder of an extension, and the SIP usernames of their enabled devices, oldest
    first."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    user_enabled: bool
    auto_answer: bool
    device_names: tuple[str, ...]


class Caller(NamedTuple):
    """The caller of an outbound call with its tenant's call settings and outbound policy.
    `device_id` is None when the caller was named by user id (then `device_enabled` is True).
    `max_concurrent_calls` is the user's own limit, else the tenant's. The user's classes are
    None only for a caller read back from a call whose user is gone."""

    tenant_id: uuid.UUID
    timezone: str
    emergency_numbers: Sequence[str]
    billing_increment_seconds: int
    tenant_version: int
    dial_plan: dict[str, Any] | None
    outbound_classes: Sequence[str]
    max_calls_per_minute: int | None
    user_id: uuid.UUID
    user_enabled: bool
    outbound_allowed: bool
    limit_minutes: int | None
    extra_classes: Sequence[str] | None
    removed_classes: Sequence[str] | None
    max_concurrent_calls: int | None
    outbound_suspended: bool
    outbound_lifted_at: datetime | None
    device_id: uuid.UUID | None
    device_enabled: bool


class UsedAndHeld(NamedTuple):
    used_seconds: int
    held_seconds: int


class CallsInProgress(NamedTuple):
    """A user's granted calls not yet ended (nor expired), and the calls the user asked for
    since a moment (a minute ago, or the last lift of a suspension); emergency calls are in
    neither."""

    open_calls: int
    recent_calls: int


class CallCounts(NamedTuple):
    """A user's counts as a call's own counting left them (the call included): never below the
    truth, so a call within them is within the limits; `open_calls` is exact while
    `open_calls_expiry` (the earliest expiry it may include) is ahead, and `recent_calls` (the
    calls of this minute and the last) is at least the calls of the last 60 seconds."""

    open_calls: int
    open_calls_expiry: datetime | None
    recent_calls: int

    def open_calls_exact(self, now: datetime) -> bool:
        return self.open_calls_expiry is None or self.open_calls_expiry > now


class NewAuthorization(NamedTuple):
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    device_id: uuid.UUID | None
    call_id: str
    destination: str
    allowed: bool
    reason: str
    emergency: bool
    max_duration_seconds: int | None
    destination_class: str | None
    held_seconds: int
    period: str
    expires_at: datetime | None
    created_at: datetime


class StoredAuthorization(NamedTuple):
    call_id: str
    allowed: bool
    reason: str
    max_duration_seconds: int | None
    emergency: bool
    user_id: uuid.UUID
    destination_class: str | None


class NewCall(NamedTuple):
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    device_id: uuid.UUID | None
    call_id: str
    destination: str
    started_at: datetime
    duration_seconds: int
    charged_seconds: int
    period: str
    emergency: bool
    created_at: datetime


class StoredCall(NamedTuple):
    call_id: str
    user_id: uuid.UUID
    device_id: uuid.UUID | None
    destination: str
    started_at: datetime
    duration_seconds: int
    charged_seconds: int
    period: str
    emergency: bool


class RecordedCall(NamedTuple):
    call: StoredCall
    created: bool  # False: the call id was recorded before, and this is that first record
    month_seconds: int | None  # the month's charged seconds after this call (when it charged)


class NewEvent(NamedTuple):
    """An event of call control (a threshold crossed, a refusal), once per `once_key`."""

    tenant_id: uuid.UUID
    type: str
    resource_type: str
    resource_id: str
    data: dict[str, Any]
    once_key: str
    request_id: str | None
    occurred_at: datetime


class CallerChanged(Exception):
    """A write referred to rows that went away, or were being deleted, under it (a tenant
    deleted meanwhile, a deadlock with that deletion): the work may be done again from the
    start, and then sees the change."""


class CallControlConnection(Protocol):
    """One connection's work. Statements commit by themselves until `begin()`; after it, the
    rest is one transaction, committed when the connection's block ends (rolled back on an
    error)."""

    async def begin(self) -> None: ...

    async def extension_holder(
        self, *, domain: str, number: str, tenant_id: uuid.UUID | None
    ) -> ExtensionHolderRecord | None: ...

    async def caller(
        self,
        *,
        domain: str,
        username: str | None,
        user_id: uuid.UUID | None,
        tenant_id: uuid.UUID | None,
    ) -> Caller | None: ...

    async def authorized_caller(
        self, *, domain: str, call_id: str, tenant_id: uuid.UUID | None
    ) -> Caller | None:
        """The caller as the authorization of `call_id` stored it, whatever happened since to
        its device or user (for a usage report that comes after their deletion)."""
        ...

    async def lock_limit(self, *, user_id: uuid.UUID) -> int | None:
        """Locks the user's row until the transaction ends, so that one user's concurrent
        authorizations are decided one after the other; the limit as it now stands."""
        ...

    async def used_and_held(
        self, *, user_id: uuid.UUID, period: str, now: datetime
    ) -> UsedAndHeld: ...

    async def store_authorization(
        self, new: NewAuthorization
    ) -> tuple[StoredAuthorization, bool, CallCounts | None]:
        """Stores the answer for a call id, or returns the one stored first for it; whether
        this call stored it; and, when it did and the call is no emergency call, the user's
        counts with it (an open call more when it holds, a call more this minute).
        CallerChanged when the tenant went away meanwhile."""
        ...

    async def recount_calls(
        self, *, user_id: uuid.UUID, now: datetime, since: datetime
    ) -> CallsInProgress:
        """In a transaction (`begin()`): locks the user's counts until it ends and sets them
        from the stored calls (the live holds, and the calls since `since`)."""
        ...

    async def refuse_authorization(
        self, *, tenant_id: uuid.UUID, call_id: str, reason: str, now: datetime
    ) -> StoredAuthorization:
        """Turns a granted answer that holds into a refusal for `reason`: what it held is free
        again, and it is an open call fewer."""
        ...

    async def suspend_outbound(self, *, user_id: uuid.UUID, now: datetime) -> bool:
        """Suspends the user's outbound calls (a new version of the user); False when they
        already were."""
        ...

    async def record_call(self, new: NewCall) -> RecordedCall:
        """Records a call once, adds its charge to the month (of a user that still exists) and
        releases its hold, at once. CallerChanged when the tenant went away meanwhile."""
        ...

    async def emit_once(self, event: NewEvent) -> None:
        """Writes the event unless one with its `once_key` was written before."""
        ...


class CallControlStore(Protocol):
    async def sip_account(self, key: SipAccountKey) -> SipAccountRecord | None:
        """Registrar lookups (on PostgreSQL those arriving together share one statement)."""
        ...

    async def sip_accounts(self, keys: list[SipAccountKey]) -> list[SipAccountRecord | None]:
        """Many registrar lookups at once: one answer per key, in order."""
        ...

    def connection(self) -> AbstractAsyncContextManager[CallControlConnection]: ...
