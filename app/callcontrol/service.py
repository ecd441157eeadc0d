"""Call control: what the SIP platform asks call by call, and the minute accounting behind it.

The rules of the product live here: emergency numbers always pass and are never charged; a
disabled device or user, outbound calls switched off, or a used-up quota refuse a call; a granted
call to a limited user holds what remains of the month until its usage is reported or the hold
expires, so concurrent calls never get more than what remains; every call is charged once, rounded
up to the tenant's billing increment, to the month (tenant's time zone) in which it started.
"""

import math
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.callcontrol import repository
from app.callcontrol.exceptions import CallerNotFound, SipAccountNotFound
from app.callcontrol.schemas import (
    AuthorizationOut,
    AuthorizationRequest,
    CallOut,
    ExtensionRoute,
    Reason,
    SipAccount,
    SipHeader,
    UsageReport,
)
from app.database import Database, HotConnection
from app.extensions.exceptions import ExtensionNotFound
from app.quotas.periods import period_of
from app.quotas.repository import used_and_held_seconds
from app.quotas.service import remaining_seconds
from app.users.repository import require_user

_DIAL_SEPARATORS = re.compile(r"[\s\-().]")


def is_emergency(destination: str, emergency_numbers: list[str]) -> bool:
    return _DIAL_SEPARATORS.sub("", destination) in emergency_numbers


def charged_seconds(duration_seconds: int, increment: int) -> int:
    """A call is billed in whole increments, rounded up (60 s: whole minutes)."""
    return math.ceil(duration_seconds / increment) * increment


def auto_answer_headers(domain: str) -> list[SipHeader]:
    return [
        SipHeader(name="Call-Info", value=f"<sip:{domain}>;answer-after=0"),
        SipHeader(name="Alert-Info", value="<http://127.0.0.1>;info=alert-autoanswer"),
    ]


async def sip_account(
    db: Database, *, domain: str, username: str, tenant_id: uuid.UUID | None
) -> SipAccount:
    row = await repository.find_sip_account(
        db, domain=domain, username=username, tenant_id=tenant_id
    )
    if row is None:
        raise SipAccountNotFound(f"No SIP account {username}@{domain}.")
    return SipAccount(
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        device_id=row["device_id"],
        username=row["username"],
        realm=row["realm"],
        enabled=row["device_enabled"] and row["user_enabled"],
        device_enabled=row["device_enabled"],
        user_enabled=row["user_enabled"],
        ha1=row["ha1"],
        ha1_sha256=row["ha1_sha256"],
        auto_answer=row["auto_answer"],
    )


async def extension_route(
    conn: HotConnection, *, domain: str, number: str, tenant_id: uuid.UUID | None
) -> ExtensionRoute:
    rows = await repository.find_extension_route(
        conn, domain=domain, number=number, tenant_id=tenant_id
    )
    if not rows:
        raise ExtensionNotFound(f"Extension {number} is free in {domain}.")
    first = rows[0]
    targets = [r["device_name"] for r in rows if r["device_name"]] if first["user_enabled"] else []
    headers = auto_answer_headers(domain) if first["auto_answer"] else []
    return ExtensionRoute(
        tenant_id=first["tenant_id"],
        user_id=first["user_id"],
        number=number,
        user_enabled=first["user_enabled"],
        auto_answer=first["auto_answer"],
        targets=targets,
        auto_answer_headers=headers,
        auto_answer_header_block="".join(f"{h.name}: {h.value}\r\n" for h in headers),
    )


def _decide(caller: Mapping[str, Any], *, emergency: bool) -> Reason | None:
    """The refusal reason that needs no accounting, or None to go on."""
    if emergency:
        return None
    if not (caller["device_enabled"] and caller["user_enabled"]):
        return Reason.device_disabled
    if not caller["outbound_allowed"]:
        return Reason.outbound_disabled
    return None


async def authorize(
    conn: HotConnection,
    *,
    request: AuthorizationRequest,
    tenant_id: uuid.UUID | None,
    now: datetime,
    hold_grace_seconds: int,
) -> AuthorizationOut:
    caller = await repository.find_caller(
        conn,
        domain=request.domain,
        username=request.username,
        user_id=request.user_id,
        tenant_id=tenant_id,
    )
    if caller is None:
        return AuthorizationOut(
            call_id=request.call_id,
            allowed=False,
            reason=Reason.unknown_caller,
            max_duration_seconds=None,
            emergency=False,
            user_id=None,
        )
    emergency = is_emergency(request.destination, caller["emergency_numbers"])
    period = period_of(now, caller["timezone"])
    refusal = _decide(caller, emergency=emergency)
    max_duration: int | None = None
    # Only limited users pay for the lock; unlimited ones (the default) need no accounting.
    if refusal is None and not emergency and caller["limit_minutes"] is not None:
        refusal, max_duration = await _hold_remaining(
            conn, user_id=caller["user_id"], period=period, now=now
        )
    held = max_duration or 0
    stored = await repository.insert_authorization(
        conn,
        {
            "tenant_id": caller["tenant_id"],
            "user_id": caller["user_id"],
            "device_id": caller["device_id"],
            "call_id": request.call_id,
            "destination": request.destination,
            "allowed": refusal is None,
            "reason": (refusal or Reason.ok).value,
            "emergency": emergency,
            "max_duration_seconds": max_duration,
            "held_seconds": held,
            "period": period,
            "expires_at": now + timedelta(seconds=held + hold_grace_seconds) if held else None,
            "created_at": now,
        },
    )
    return AuthorizationOut(
        call_id=stored["call_id"],
        allowed=stored["allowed"],
        reason=Reason(stored["reason"]),
        max_duration_seconds=stored["max_duration_seconds"],
        emergency=stored["emergency"],
        user_id=stored["user_id"],
    )


async def _hold_remaining(
    conn: HotConnection, *, user_id: uuid.UUID, period: str, now: datetime
) -> tuple[Reason | None, int | None]:
    """Under the user's lock (held until the boundary commits the answer stored with it):
    the refusal, or the seconds the call may hold, which is everything that remains."""
    # The limit is read again under the lock: it may have changed since the first read.
    limit_minutes = await repository.lock_user_limit(conn, user_id=user_id)
    if limit_minutes is None:
        return None, None
    used, held_by_others = await used_and_held_seconds(
        conn, user_id=user_id, period=period, now=now
    )
    remaining = remaining_seconds(limit_minutes, used + held_by_others)
    return (None, remaining) if remaining else (Reason.quota_exhausted, None)


def _call_out(row: Mapping[str, Any]) -> CallOut:
    return CallOut.model_validate(dict(row))


async def record_usage(
    conn: HotConnection, *, report: UsageReport, tenant_id: uuid.UUID | None, now: datetime
) -> tuple[CallOut, bool]:
    """Charges a reported call once; returns the call and whether this report recorded it."""
    caller = await repository.find_caller(
        conn,
        domain=report.domain,
        username=report.username,
        user_id=report.user_id,
        tenant_id=tenant_id,
    )
    if caller is None:
        who = report.username or report.user_id
        raise CallerNotFound(f"No caller {who} in {report.domain}.")
    emergency = is_emergency(report.destination, caller["emergency_numbers"])
    charged = (
        0
        if emergency
        else charged_seconds(report.duration_seconds, caller["billing_increment_seconds"])
    )
    period = period_of(report.started_at, caller["timezone"])
    row, created = await repository.record_call(
        conn,
        {
            "tenant_id": caller["tenant_id"],
            "user_id": caller["user_id"],
            "device_id": caller["device_id"],
            "call_id": report.call_id,
            "destination": report.destination,
            "started_at": report.started_at,
            "duration_seconds": report.duration_seconds,
            "charged_seconds": charged,
            "period": period,
            "emergency": emergency,
            "created_at": now,
        },
    )
    return _call_out(row), created


async def list_calls(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[CallOut], int]:
    await require_user(session, tenant_id=tenant_id, user_id=user_id)
    rows, total = await repository.list_calls(
        session, tenant_id=tenant_id, user_id=user_id, limit=limit, offset=offset
    )
    return [_call_out(dict(r._mapping)) for r in rows], total
