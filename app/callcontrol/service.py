"""Call control: what the SIP platform asks call by call, and the minute accounting behind it.

The rules of the product live here: emergency numbers always pass and are never charged; a
disabled device or user, outbound calls switched off or suspended, a destination class the agent
may not call, too many calls at once or in a minute, or a used-up quota refuse a call; a granted
call to a limited user holds what remains of the month until its usage is reported or the hold
expires, so concurrent calls never get more than what remains; every granted call counts as one
of the agent's calls at once until then; every call is charged once, rounded up to the tenant's
billing increment, to the month (tenant's time zone) in which it started.
"""

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from asgi_correlation_id import correlation_id

from app.callcontrol.exceptions import CallerNotFound
from app.callcontrol.schemas import (
    AuthorizationOut,
    AuthorizationRequest,
    CallerRef,
    ExtensionRoute,
    Reason,
    SipAccount,
    SipAccountName,
    SipAccountsFound,
    SipHeader,
    UsageReport,
)
from app.callcontrol.store import (
    CallControlConnection,
    CallControlStore,
    CallCounts,
    Caller,
    CallerChanged,
    NewAuthorization,
    NewCall,
    NewEvent,
    SipAccountKey,
    SipAccountRecord,
    StoredAuthorization,
)
from app.devices.exceptions import SipAccountNotFound
from app.devices.schemas import SIP_USERNAME
from app.dialing import (
    DestinationClass,
    DialPlan,
    allowed_classes,
    classify,
    is_emergency,
    plan_of_json,
)
from app.errors import Code, InvalidInput
from app.extensions.exceptions import ExtensionNotFound
from app.observability.metrics import (
    CHARGED_SECONDS,
    DECISIONS,
    HOLD_SECONDS_GRANTED,
    HOLDS_GRANTED,
)
from app.quotas.live import MinutesAnnouncer, Month
from app.quotas.periods import period_of, shift_period
from app.quotas.schemas import CallOut
from app.quotas.service import charged_seconds, remaining_seconds


def auto_answer_headers(domain: str) -> list[SipHeader]:
    return [
        SipHeader(name="Call-Info", value=f"<sip:{domain}>;answer-after=0"),
        SipHeader(name="Alert-Info", value="<http://127.0.0.1>;info=alert-autoanswer"),
    ]


async def sip_account(
    store: CallControlStore, *, domain: str, username: str, tenant_id: uuid.UUID | None
) -> SipAccount:
    key = _lookup_key(domain, username, tenant_id)
    account = await store.sip_account(key) if key is not None else None
    if account is None:
        raise SipAccountNotFound(username=username, domain=domain)
    return _account_view(account)


async def sip_accounts(
    store: CallControlStore, asked: list[SipAccountName], *, tenant_id: uuid.UUID | None
) -> SipAccountsFound:
    """Many lookups in one statement, each answered by `username@domain` as asked."""
    keys = {f"{n.username}@{n.domain}": _lookup_key(n.domain, n.username, tenant_id) for n in asked}
    looked_up = [(name, key) for name, key in keys.items() if key is not None]
    records = await store.sip_accounts([key for _, key in looked_up]) if looked_up else []
    found = {
        name: _account_view(record)
        for (name, _), record in zip(looked_up, records, strict=True)
        if record is not None
    }
    return SipAccountsFound(accounts={name: found.get(name) for name in keys})


def _lookup_key(domain: str, username: str, tenant_id: uuid.UUID | None) -> SipAccountKey | None:
    """What a registrar lookup asks the store; None for a name no device can have, which is
    no account."""
    if SIP_USERNAME.fullmatch(username) is None:
        return None
    return SipAccountKey(domain, username.lower(), tenant_id)


def _account_view(account: SipAccountRecord) -> SipAccount:
    return SipAccount(
        tenant_id=account.tenant_id,
        user_id=account.user_id,
        device_id=account.device_id,
        username=account.username,
        realm=account.realm,
        enabled=account.device_enabled and account.user_enabled,
        device_enabled=account.device_enabled,
        user_enabled=account.user_enabled,
        ha1=account.ha1,
        ha1_sha256=account.ha1_sha256,
        auto_answer=account.auto_answer,
        max_contacts=account.max_contacts,
    )


async def extension_route(
    store: CallControlStore, *, domain: str, number: str, tenant_id: uuid.UUID | None
) -> ExtensionRoute:
    async with store.connection() as conn:
        holder = await conn.extension_holder(domain=domain, number=number, tenant_id=tenant_id)
    if holder is None:
        raise ExtensionNotFound(Code.extension_free_in_domain, number=number, domain=domain)
    headers = auto_answer_headers(domain) if holder.auto_answer else []
    return ExtensionRoute(
        tenant_id=holder.tenant_id,
        user_id=holder.user_id,
        number=number,
        user_enabled=holder.user_enabled,
        auto_answer=holder.auto_answer,
        targets=list(holder.device_names) if holder.user_enabled else [],
        auto_answer_headers=headers,
        auto_answer_header_block="".join(f"{h.name}: {h.value}\r\n" for h in headers),
    )


async def _caller(
    conn: CallControlConnection, ref: CallerRef, tenant_id: uuid.UUID | None
) -> Caller | None:
    return await conn.caller(
        domain=ref.domain, username=ref.username, user_id=ref.user_id, tenant_id=tenant_id
    )


def _refusal(caller: Caller, *, emergency: bool, destination: DestinationClass) -> Reason | None:
    """The refusal reason that needs no accounting, or None to go on."""
    if emergency:
        return None
    if not (caller.device_enabled and caller.user_enabled):
        return Reason.device_disabled
    if not caller.outbound_allowed:
        return Reason.outbound_disabled
    if caller.outbound_suspended:
        return Reason.outbound_suspended
    allowed = allowed_classes(
        caller.outbound_classes, caller.extra_classes or (), caller.removed_classes or ()
    )
    if destination not in allowed:
        return Reason.destination_not_allowed
    return None


# Tenants' own dial plans, read into rules once per version of the tenant.
_plans: dict[uuid.UUID, tuple[int, DialPlan]] = {}


def _plan_of(caller: Caller) -> DialPlan:
    if caller.dial_plan is None:
        return plan_of_json(None)
    known = _plans.get(caller.tenant_id)
    if known is not None and known[0] == caller.tenant_version:
        return known[1]
    plan = plan_of_json(caller.dial_plan)
    if len(_plans) >= 10_000:
        _plans.clear()
    _plans[caller.tenant_id] = (caller.tenant_version, plan)
    return plan


VELOCITY_WINDOW = timedelta(minutes=1)
# Refusals of one agent for one reason make one `call.refused` event in each such window.
REFUSAL_EVENT_WINDOW_SECONDS = 600


async def authorize(
    store: CallControlStore,
    *,
    request: AuthorizationRequest,
    tenant_id: uuid.UUID | None,
    now: datetime,
    hold_grace_seconds: int,
    open_call_seconds: int = 14_400,
) -> AuthorizationOut:
    times = _Times(now, hold_grace_seconds, open_call_seconds)
    try:
        return await _authorize(store, request=request, tenant_id=tenant_id, times=times)
    except CallerChanged:
        # The caller's tenant went away meanwhile: asked again, it is an unknown caller.
        return await _authorize(store, request=request, tenant_id=tenant_id, times=times)


class _Times(NamedTuple):
    now: datetime
    grace: int  # how long past its granted time a hold lasts
    open_call: int  # how long a call without a time limit counts as open

    def expiry(self, held: int) -> datetime:
        return self.now + timedelta(seconds=held + self.grace if held else self.open_call)


async def _authorize(
    store: CallControlStore,
    *,
    request: AuthorizationRequest,
    tenant_id: uuid.UUID | None,
    times: _Times,
) -> AuthorizationOut:
    now = times.now
    written: list[str] = []  # the once keys of the events this authorization writes
    async with store.connection() as conn:
        caller = await _caller(conn, request, tenant_id)
        if caller is None:
            return AuthorizationOut(
                call_id=request.call_id,
                allowed=False,
                reason=Reason.unknown_caller,
                max_duration_seconds=None,
                emergency=False,
                user_id=None,
                destination_class=None,
            )
        emergency = is_emergency(request.destination, caller.emergency_numbers)
        destination = (
            DestinationClass.emergency
            if emergency
            else classify(request.destination, _plan_of(caller))
        )
        period = period_of(now, caller.timezone)
        refusal = _refusal(caller, emergency=emergency, destination=destination)
        max_duration: int | None = None
        # Only limited users pay for the lock; unlimited ones (the default) need no accounting.
        if refusal is None and not emergency and caller.limit_minutes is not None:
            refusal, max_duration = await _hold_remaining(
                conn, user_id=caller.user_id, period=period, now=now
            )
        held = max_duration or 0
        if refusal is Reason.quota_exhausted:
            # Billing hears of it once a month, not once a call.
            event = _quota_event(
                caller,
                "call.refused_for_quota",
                period=period,
                once="first",
                now=now,
                data={"call_id": request.call_id},
            )
            await _emit_once(conn, event, written)
        # A granted call counts as open until its report or its expiry; emergency calls and
        # short numbers (which never leave the company) never.
        counted = refusal is None and not emergency and destination is not DestinationClass.internal
        stored, created, counts = await conn.store_authorization(
            NewAuthorization(
                tenant_id=caller.tenant_id,
                user_id=caller.user_id,
                device_id=caller.device_id,
                call_id=request.call_id,
                destination=request.destination,
                allowed=refusal is None,
                reason=(refusal or Reason.ok).value,
                emergency=emergency,
                max_duration_seconds=max_duration,
                destination_class=destination.value,
                held_seconds=held,
                period=period,
                expires_at=times.expiry(held) if counted else None,
                created_at=now,
            )
        )
        if counted and counts is not None:
            stored = await _within_limits(conn, caller, stored, counts, now=now)
        if created and not stored.allowed:
            await _emit_once(conn, _refused_event(caller, stored, now=now), written)
    _EMITTED.update(written)  # committed
    DECISIONS.labels(stored.reason).inc()
    if held and stored.max_duration_seconds == held:
        HOLDS_GRANTED.inc()
        HOLD_SECONDS_GRANTED.inc(held)
    return AuthorizationOut(
        call_id=stored.call_id,
        allowed=stored.allowed,
        reason=Reason(stored.reason),
        max_duration_seconds=stored.max_duration_seconds,
        emergency=stored.emergency,
        user_id=stored.user_id,
        destination_class=stored.destination_class,
    )


async def _within_limits(
    conn: CallControlConnection,
    caller: Caller,
    stored: StoredAuthorization,
    counts: CallCounts,
    *,
    now: datetime,
) -> StoredAuthorization:
    """The granted call, or its refusal when it is one call too many at once or in a minute.
    The counts are those the call's own counting left (it included), never below the truth:
    within the limits, the call is granted at once. Over them, calls at once are refused at
    once when the count is exact; otherwise the user's calls are counted again from the stored
    ones under the lock of the user's counts (a hold that expired unreported frees its slot
    there, and the minute's calls since a lift of a suspension are the ones that count)."""
    per_minute, at_once = caller.max_calls_per_minute, caller.max_concurrent_calls
    too_fast = per_minute is not None and counts.recent_calls > per_minute
    too_many = at_once is not None and counts.open_calls > at_once
    if not too_fast and not too_many:
        return stored
    if too_fast or not counts.open_calls_exact(now):
        since = now - VELOCITY_WINDOW
        if caller.outbound_lifted_at is not None and caller.outbound_lifted_at > since:
            since = caller.outbound_lifted_at
        await conn.begin()
        exact = await conn.recount_calls(user_id=caller.user_id, now=now, since=since)
        too_fast = per_minute is not None and exact.recent_calls > per_minute
        too_many = at_once is not None and exact.open_calls > at_once
        counts = counts._replace(recent_calls=exact.recent_calls)
    if too_fast:
        if await conn.suspend_outbound(user_id=caller.user_id, now=now):
            await conn.emit_once(_suspended_event(caller, counts.recent_calls, now=now))
        reason = Reason.outbound_suspended
    elif too_many:
        reason = Reason.too_many_calls
    else:
        return stored
    return await conn.refuse_authorization(
        tenant_id=caller.tenant_id, call_id=stored.call_id, reason=reason.value, now=now
    )


class _OnceKeys:
    """The once keys of events this process has written (and committed): an event whose key
    is among them is not sent to the database again, which would drop it anyway. Bounded: when
    full it starts again empty, and the database's unique key keeps the events once."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._keys: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def update(self, keys: list[str]) -> None:
        if len(self._keys) + len(keys) > self._size:
            self._keys.clear()
        self._keys.update(keys)


_EMITTED = _OnceKeys()


async def _emit_once(conn: CallControlConnection, event: NewEvent, written: list[str]) -> None:
    """Writes the event unless one with its once key was written before (by this process, as
    far as it knows; by any, as the database knows); `written` collects the key, to be known
    once the connection's work is committed."""
    if event.once_key in _EMITTED:
        return
    await conn.emit_once(event)
    written.append(event.once_key)


def _user_event(
    caller: Caller, type: str, *, once: str, now: datetime, data: dict[str, object]
) -> NewEvent:
    """An event about the caller's agent (its `user_id` in `data`), sent once per `once` key."""
    return NewEvent(
        tenant_id=caller.tenant_id,
        type=type,
        resource_type="user",
        resource_id=str(caller.user_id),
        data={"user_id": str(caller.user_id), **data},
        once_key=f"{type}:{caller.user_id}:{once}",
        request_id=correlation_id.get(),
        occurred_at=now,
    )


def _refused_event(caller: Caller, stored: StoredAuthorization, *, now: datetime) -> NewEvent:
    """`call.refused`: one event for an agent's refusals for one reason in a window of
    REFUSAL_EVENT_WINDOW_SECONDS (a fraud desk needs to hear of it, not of every retry)."""
    window = int(now.timestamp()) // REFUSAL_EVENT_WINDOW_SECONDS
    return _user_event(
        caller,
        "call.refused",
        once=f"{stored.reason}:{window}",
        now=now,
        data={
            "reason": stored.reason,
            "destination_class": stored.destination_class,
            "call_id": stored.call_id,
        },
    )


def _suspended_event(caller: Caller, calls: int, *, now: datetime) -> NewEvent:
    return _user_event(
        caller,
        "user.outbound_suspended",
        once=now.isoformat(),
        now=now,
        data={"calls_in_a_minute": calls, "max_calls_per_minute": caller.max_calls_per_minute},
    )


async def _hold_remaining(
    conn: CallControlConnection, *, user_id: uuid.UUID, period: str, now: datetime
) -> tuple[Reason | None, int | None]:
    """The refusal, or the seconds the call may hold (everything that remains), decided under
    the user's lock: the transaction begun here holds it until the answer stored with it is
    committed."""
    await conn.begin()
    # The limit is read again under the lock: it may have changed since the first read.
    limit_minutes = await conn.lock_limit(user_id=user_id)
    if limit_minutes is None:
        return None, None
    spent = await conn.used_and_held(user_id=user_id, period=period, now=now)
    remaining = remaining_seconds(limit_minutes, spent.used_seconds + spent.held_seconds)
    return (None, remaining) if remaining else (Reason.quota_exhausted, None)


class UsageWindow(NamedTuple):
    """When a reported call may have started: `late_months` months back at most (the tenant's
    calendar), `future_seconds` ahead of the service's clock at most."""

    late_months: int
    future_seconds: int


_OLDEST_LATE_REPORT = timedelta(days=31 * 13)


def _check_started_at(
    started_at: datetime, *, now: datetime, timezone: str, window: UsageWindow
) -> str:
    """The month the call is charged to; InvalidInput when its start is outside the window."""
    if started_at > now + timedelta(seconds=window.future_seconds):
        raise InvalidInput(
            "body.started_at", Code.started_at_in_future, seconds=window.future_seconds
        )
    # Compared in UTC first: the calendar's ends (year 1, year 9999) cannot be converted to
    # a local time.
    oldest = shift_period(period_of(now, timezone), -window.late_months)
    if started_at < now - _OLDEST_LATE_REPORT or period_of(started_at, timezone) < oldest:
        raise InvalidInput("body.started_at", Code.started_at_too_old, oldest=oldest)
    return period_of(started_at, timezone)


async def record_usage(
    store: CallControlStore,
    *,
    report: UsageReport,
    tenant_id: uuid.UUID | None,
    now: datetime,
    window: UsageWindow,
    minutes: MinutesAnnouncer | None = None,
) -> tuple[CallOut, bool]:
    """Charges a reported call once; returns the call and whether this report recorded it.
    A call authorized before its device or user was deleted is still recorded (and charged to
    the user while it exists). A charge is told to `minutes`, which announces the month's new
    total a moment later."""
    for _ in range(2):
        try:
            return await _record_usage(
                store, report=report, tenant_id=tenant_id, now=now, window=window, minutes=minutes
            )
        except CallerChanged:
            # Deleted while this report was being recorded: done again, it sees the deletion.
            continue
    raise _caller_not_found(report)


def _caller_not_found(ref: CallerRef) -> CallerNotFound:
    return CallerNotFound(caller=str(ref.username or ref.user_id), domain=ref.domain)


async def _record_usage(
    store: CallControlStore,
    *,
    report: UsageReport,
    tenant_id: uuid.UUID | None,
    now: datetime,
    window: UsageWindow,
    minutes: MinutesAnnouncer | None,
) -> tuple[CallOut, bool]:
    async with store.connection() as conn:
        caller = await _caller(conn, report, tenant_id) or await conn.authorized_caller(
            domain=report.domain, call_id=report.call_id, tenant_id=tenant_id
        )
        if caller is None:
            raise _caller_not_found(report)
        period = _check_started_at(
            report.started_at, now=now, timezone=caller.timezone, window=window
        )
        emergency = is_emergency(report.destination, caller.emergency_numbers)
        charged = (
            0
            if emergency
            else charged_seconds(report.duration_seconds, caller.billing_increment_seconds)
        )
        limited = caller.limit_minutes is not None and charged > 0
        if limited:
            # The charge and the threshold events it may cause commit together.
            await conn.begin()
        call, created, month_seconds = await conn.record_call(
            NewCall(
                tenant_id=caller.tenant_id,
                user_id=caller.user_id,
                device_id=caller.device_id,
                call_id=report.call_id,
                destination=report.destination,
                started_at=report.started_at,
                duration_seconds=report.duration_seconds,
                charged_seconds=charged,
                period=period,
                emergency=emergency,
                created_at=now,
            )
        )
        if limited and month_seconds is not None and caller.limit_minutes is not None:
            for percent in _crossed(
                limit_seconds=caller.limit_minutes * 60,
                before=month_seconds - charged,
                after=month_seconds,
            ):
                await conn.emit_once(
                    _quota_event(
                        caller,
                        "quota.threshold_reached",
                        period=period,
                        once=f"{percent}%",
                        now=now,
                        data={"percent": percent, "used_seconds": month_seconds},
                    )
                )
    if created:
        CHARGED_SECONDS.inc(call.charged_seconds)
        if minutes is not None and call.charged_seconds:
            minutes.changed(Month(caller.tenant_id, caller.user_id, period))
    return CallOut.model_validate(call, from_attributes=True), created


THRESHOLDS = (80, 100)


def _crossed(*, limit_seconds: int, before: int, after: int) -> list[int]:
    """The thresholds (percent of the month's limit) that a charge from `before` to `after`
    seconds crossed: each is crossed by exactly one charge a month, whatever the order of
    concurrent reports, since each charge's before and after come from one atomic update."""
    return [
        percent for percent in THRESHOLDS if before * 100 < limit_seconds * percent <= after * 100
    ]


def _quota_event(
    caller: Caller,
    type: str,
    *,
    period: str,
    once: str,
    now: datetime,
    data: dict[str, object],
) -> NewEvent:
    return _user_event(
        caller,
        type,
        once=f"{period}:{once}",
        now=now,
        data={"period": period, "limit_minutes": caller.limit_minutes, **data},
    )
