"""The hot path's statements as Core queries, built once (building and cache-keying a select()
costs more CPU than running it) and shared by both store implementations.

Every read takes a `tenant_id` parameter: a tenant's key sees its own tenant only, a platform
key (None) any tenant.
"""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from app.callcontrol.store import (
    Caller,
    ExtensionHolderRecord,
    NewEvent,
    SipAccountRecord,
    StoredAuthorization,
    StoredCall,
)
from app.db.base import UTCDateTime
from app.db.sql import dialect_insert
from app.devices.models import Device, DeviceKind
from app.extensions.models import Extension
from app.outbox.models import Event
from app.quotas.models import CallAuthorization, CallCounter, CallRecord, MonthlyUsage
from app.quotas.repository import CALL_COLUMNS
from app.tenants.models import Tenant
from app.user_record.models import User


def _in_scope(tenant_id: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(tenant_id.is_(None), Tenant.id == tenant_id)


TENANT_ID = bindparam("tenant_id", type_=Uuid)

SIP_ACCOUNT_COLUMNS = (
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
    case(
        (Device.kind == DeviceKind.web, Tenant.max_contacts_web),
        (Device.kind == DeviceKind.softphone, Tenant.max_contacts_softphone),
        else_=Tenant.max_contacts_ip_phone,
    ).label("max_contacts"),
)


def _accounts(*leading: ColumnElement[Any]) -> Select[Any]:
    """SIP accounts with their tenant and user, `leading` columns first."""
    return (
        select(*leading, *SIP_ACCOUNT_COLUMNS)
        .select_from(Tenant)
        .join(Device, Device.tenant_id == Tenant.id)
        .join(User, User.id == Device.user_id)
    )


def _sip_accounts(
    domain: ColumnElement[Any],
    name_key: ColumnElement[Any],
    tenant_id: ColumnElement[Any],
    *leading: ColumnElement[Any],
) -> Select[Any]:
    """The SIP account `name_key` in the tenant of `domain`, if in scope."""
    return _accounts(*leading).where(
        Tenant.sip_domain == domain, Device.name_key == name_key, _in_scope(tenant_id)
    )


SIP_ACCOUNT = _sip_accounts(bindparam("domain"), bindparam("name_key"), TENANT_ID)

# PostgreSQL: the accounts of a batch of lookups in one statement, each row numbered `i` after
# the lookup it answers.
_ASKED = (
    func.unnest(
        bindparam("domains", type_=ARRAY(String)),
        bindparam("name_keys", type_=ARRAY(String)),
        bindparam("tenant_ids", type_=ARRAY(Uuid)),
    )
    .table_valued("domain", "name_key", "tenant_id", with_ordinality="i")
    .render_derived(with_types=False)
)
SIP_ACCOUNTS = _sip_accounts(
    _ASKED.c.domain, _ASKED.c.name_key, _ASKED.c.tenant_id, _ASKED.c.i
).select_from(_ASKED)

# Any engine: the accounts named by (domain, name_key) pairs `names`, in scope, each row led by
# its pair (SQLite's one statement for lookups sent together).
SIP_ACCOUNTS_NAMED = _accounts(
    Tenant.sip_domain.label("domain"), Device.name_key.label("name_key")
).where(
    tuple_(Tenant.sip_domain, Device.name_key).in_(bindparam("names", expanding=True)),
    _in_scope(TENANT_ID),
)

# One row per enabled device of the extension's holder, oldest first (one with no device if
# none).
EXTENSION_HOLDER = (
    select(
        Tenant.id.label("tenant_id"),
        User.id.label("user_id"),
        User.enabled.label("user_enabled"),
        User.auto_answer,
        Device.name.label("device_name"),
    )
    .select_from(Tenant)
    .join(Extension, Extension.tenant_id == Tenant.id)
    .join(User, User.id == Extension.user_id)
    .outerjoin(Device, and_(Device.user_id == User.id, Device.enabled.is_(True)))
    .where(
        Tenant.sip_domain == bindparam("domain"),
        Extension.number == bindparam("number"),
        _in_scope(TENANT_ID),
    )
    .order_by(Device.created_at, Device.id)
)

_TENANT_CALL_COLUMNS = (
    Tenant.id.label("tenant_id"),
    Tenant.timezone,
    Tenant.emergency_numbers,
    Tenant.billing_increment_seconds,
    Tenant.version.label("tenant_version"),
    Tenant.dial_plan,
    Tenant.outbound_classes,
    Tenant.max_calls_per_minute,
)

_CALLER_COLUMNS = (
    *_TENANT_CALL_COLUMNS,
    User.id.label("user_id"),
    User.enabled.label("user_enabled"),
    User.outbound_allowed,
    User.limit_minutes,
    User.extra_classes,
    User.removed_classes,
    func.coalesce(User.max_concurrent_calls, Tenant.max_concurrent_calls).label(
        "max_concurrent_calls"
    ),
    User.outbound_suspended,
    User.outbound_lifted_at,
)

CALLER_BY_USERNAME = (
    select(*_CALLER_COLUMNS, Device.id.label("device_id"), Device.enabled.label("device_enabled"))
    .select_from(Tenant)
    .join(Device, Device.tenant_id == Tenant.id)
    .join(User, User.id == Device.user_id)
    .where(
        Tenant.sip_domain == bindparam("domain"),
        Device.name_key == bindparam("name_key"),
        _in_scope(TENANT_ID),
    )
)

CALLER_BY_USER_ID = (
    select(*_CALLER_COLUMNS, null().label("device_id"), true().label("device_enabled"))
    .select_from(Tenant)
    .join(User, User.tenant_id == Tenant.id)
    .where(
        Tenant.sip_domain == bindparam("domain"),
        User.id == bindparam("user_id"),
        _in_scope(TENANT_ID),
    )
)

# The caller of an authorized call as its authorization stored it; the user may be gone.
AUTHORIZED_CALLER = (
    select(
        *_TENANT_CALL_COLUMNS,
        CallAuthorization.user_id,
        func.coalesce(User.enabled, false()).label("user_enabled"),
        func.coalesce(User.outbound_allowed, false()).label("outbound_allowed"),
        User.limit_minutes,
        User.extra_classes,
        User.removed_classes,
        func.coalesce(User.max_concurrent_calls, Tenant.max_concurrent_calls).label(
            "max_concurrent_calls"
        ),
        func.coalesce(User.outbound_suspended, false()).label("outbound_suspended"),
        User.outbound_lifted_at,
        CallAuthorization.device_id,
        false().label("device_enabled"),
    )
    .select_from(Tenant)
    .join(CallAuthorization, CallAuthorization.tenant_id == Tenant.id)
    .outerjoin(User, User.id == CallAuthorization.user_id)
    .where(
        Tenant.sip_domain == bindparam("domain"),
        CallAuthorization.call_id == bindparam("call_id"),
        _in_scope(TENANT_ID),
    )
)

USER_EXISTS = select(User.id).where(User.id == bindparam("user_id"))

# FOR NO KEY UPDATE: a limited user's authorizations take turns, while the foreign-key checks of
# the statements that count or charge the user's calls (which lock the user's counter first)
# do not wait for it.
LOCK_LIMIT = (
    select(User.limit_minutes)
    .where(User.id == bindparam("user_id"))
    .with_for_update(key_share=True)
)

AUTHORIZATION_ANSWER = (
    CallAuthorization.call_id,
    CallAuthorization.allowed,
    CallAuthorization.reason,
    CallAuthorization.max_duration_seconds,
    CallAuthorization.emergency,
    CallAuthorization.user_id,
    CallAuthorization.destination_class,
)

_USER_ID = bindparam("key_user_id", type_=Uuid)
_NOW = bindparam("now", type_=UTCDateTime())
_WINDOW = bindparam("window", type_=UTCDateTime())
_COUNTER = CallCounter.__table__
# Written into the counting statements, not sent with each call as parameters.
_ONE, _ZERO = literal_column("1", Integer), literal_column("0", Integer)

# The user's live holds (granted calls neither reported nor expired), which the concurrent-call
# limit counts; emergency calls and short numbers hold none.
_LIVE_HOLDS = and_(
    CallAuthorization.user_id == _USER_ID,
    CallAuthorization.released_at.is_(None),
    CallAuthorization.expires_at > _NOW,
    CallAuthorization.allowed.is_(True),
    CallAuthorization.emergency.is_(False),
)


def count_call(dialect: str, source: Select[Any] | None = None) -> Any:
    """Counts a call stored in CallCounter (upserted): one more open call when it holds
    (`expires_at` set), one more call in the current minute (`window`; `last_window` is the
    minute before). The call's (user_id, open_calls, open_calls_expiry, calls_window,
    calls_in_window, calls_in_last_window) come from `source`, else from parameters of those
    names. Returns the counts after it, which the limits are checked against: the upsert locks
    the user's counter row and reads its latest version, so calls asked for together count
    one after the other."""
    columns = [c.name for c in _COUNTER.columns]
    statement = dialect_insert(dialect, _COUNTER)
    if source is not None:
        statement = statement.from_select(columns, source)
    else:
        statement = statement.values({name: bindparam(name) for name in columns})
    c, new = _COUNTER.c, statement.excluded
    # A replica whose clock is behind counts into the later minute another one started.
    same_window = c.calls_window >= new.calls_window
    return statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={
            "open_calls": c.open_calls + new.open_calls,
            "open_calls_expiry": case(
                (
                    or_(
                        c.open_calls_expiry.is_(None),
                        new.open_calls_expiry < c.open_calls_expiry,
                    ),
                    new.open_calls_expiry,
                ),
                else_=c.open_calls_expiry,
            ),
            "calls_window": case((same_window, c.calls_window), else_=new.calls_window),
            "calls_in_window": case((same_window, c.calls_in_window + _ONE), else_=_ONE),
            "calls_in_last_window": case(
                (same_window, c.calls_in_last_window),
                (
                    c.calls_window == bindparam("last_window", type_=UTCDateTime()),
                    c.calls_in_window,
                ),
                else_=_ZERO,
            ),
        },
    ).returning(*CALL_COUNTS)


def counting_params(now: datetime) -> dict[str, datetime]:
    """count_call's and RECOUNT's minutes for a call asked for at `now`."""
    window = now.replace(second=0, microsecond=0)
    return {"window": window, "last_window": window - timedelta(minutes=1)}


CALL_COUNTS = (
    CallCounter.open_calls,
    CallCounter.open_calls_expiry,
    (CallCounter.calls_in_window + CallCounter.calls_in_last_window).label("recent_calls"),
)


def insert_and_count() -> Any:
    """PostgreSQL: the call's answer stored (or nothing, when its call id was stored first) and,
    when stored and not an emergency call, counted, in one statement (see count_call)."""
    table = CallAuthorization.__table__
    inserted = (
        dialect_insert("postgresql", table)
        .values({name: bindparam(name) for name in AUTHORIZATION_INSERT_KEYS})
        .on_conflict_do_nothing(index_elements=["tenant_id", "call_id"])
        .returning(*AUTHORIZATION_ANSWER, CallAuthorization.expires_at)
        .cte("inserted")
    )
    source = select(
        inserted.c.user_id,
        case((inserted.c.expires_at.is_not(None), _ONE), else_=_ZERO),
        inserted.c.expires_at,
        _WINDOW,
        _ONE,
        _ZERO,
    ).where(inserted.c.emergency.is_(False))
    counted = count_call("postgresql", source).cte("counted")
    return select(
        *(inserted.c[column.key] for column in AUTHORIZATION_ANSWER),
        *(counted.c[column.key] for column in CALL_COUNTS),
    ).select_from(inserted.outerjoin(counted, true()))


# The user's counter row, locked: a recount and the calls counted meanwhile take turns.
LOCK_COUNTER = (
    select(CallCounter.open_calls).where(CallCounter.user_id == _USER_ID).with_for_update()
)

# The user's counts set from the stored calls (parameters key_user_id, now, since, window):
# the live holds, and the calls asked for since `since` (a minute ago, or the suspension's
# lift) as the current minute's. Run under LOCK_COUNTER, in a statement of its own.
RECOUNT = (
    update(CallCounter)
    .where(CallCounter.user_id == _USER_ID)
    .values(
        open_calls=select(func.count()).where(_LIVE_HOLDS).scalar_subquery(),
        open_calls_expiry=select(func.min(CallAuthorization.expires_at))
        .where(_LIVE_HOLDS)
        .scalar_subquery(),
        calls_window=_WINDOW,
        calls_in_window=select(func.count())
        .where(
            CallAuthorization.user_id == _USER_ID,
            CallAuthorization.created_at > bindparam("since", type_=UTCDateTime()),
            CallAuthorization.emergency.is_(False),
        )
        .scalar_subquery(),
        calls_in_last_window=0,
    )
    .returning(CallCounter.open_calls, CallCounter.calls_in_window.label("recent_calls"))
)


def _free_slot(user_id: ColumnElement[Any]) -> Any:
    """One open call fewer for the user: a hold refused, or reported before its expiry (the
    same rule is in the PostgreSQL store's report statement)."""
    return (
        update(CallCounter)
        .where(CallCounter.user_id == user_id, CallCounter.open_calls > _ZERO)
        .values(
            open_calls=CallCounter.open_calls - _ONE,
            open_calls_expiry=case(
                (CallCounter.open_calls <= _ONE, null()), else_=CallCounter.open_calls_expiry
            ),
        )
    )


FREE_SLOT = _free_slot(_USER_ID)

# A granted answer turned into a refusal: it holds nothing and counts as no open call.
REFUSE_AUTHORIZATION = (
    update(CallAuthorization)
    .where(
        CallAuthorization.tenant_id == bindparam("key_tenant_id"),
        CallAuthorization.call_id == bindparam("key_call_id"),
    )
    .values(
        allowed=False,
        reason=bindparam("reason"),
        max_duration_seconds=None,
        held_seconds=0,
        expires_at=None,
        released_at=bindparam("now"),
    )
    .returning(*AUTHORIZATION_ANSWER)
)


def refuse_and_free() -> Any:
    """PostgreSQL: REFUSE_AUTHORIZATION and the open call it held freed, in one statement."""
    refused = REFUSE_AUTHORIZATION.cte("refused")
    freed = _free_slot(refused.c.user_id).cte("freed")
    return select(*(refused.c[column.key] for column in AUTHORIZATION_ANSWER)).add_cte(freed)


SUSPEND_OUTBOUND = (
    update(User)
    .where(User.id == bindparam("key_user_id"), User.outbound_suspended.is_(False))
    .values(
        outbound_suspended=True,
        outbound_suspended_at=bindparam("now"),
        version=User.version + 1,
        updated_at=bindparam("now"),
    )
    .returning(User.id)
)

SELECT_AUTHORIZATION = select(*AUTHORIZATION_ANSWER).where(
    CallAuthorization.tenant_id == bindparam("tenant_id"),
    CallAuthorization.call_id == bindparam("call_id"),
)

SELECT_CALL = select(*CALL_COLUMNS).where(
    CallRecord.tenant_id == bindparam("tenant_id"), CallRecord.call_id == bindparam("call_id")
)

# The columns an insert of a new row gives values for (released_at stays null).
AUTHORIZATION_INSERT_KEYS = [
    c.name for c in CallAuthorization.__table__.columns if c.name != "released_at"
]
CALL_INSERT_KEYS = [c.name for c in CallRecord.__table__.columns]


def insert_or_nothing(dialect: str, table: Any, returning: tuple[Any, ...]) -> Any:
    """INSERT ... ON CONFLICT (tenant_id, call_id) DO NOTHING RETURNING: the row when this
    insert stored it, nothing when the call id was stored first."""
    return (
        dialect_insert(dialect, table)
        .on_conflict_do_nothing(index_elements=["tenant_id", "call_id"])
        .returning(*returning)
    )


def insert_event_once(dialect: str) -> Any:
    """INSERT INTO event ... ON CONFLICT (once_key) DO NOTHING."""
    return dialect_insert(dialect, Event.__table__).on_conflict_do_nothing(
        index_elements=["once_key"]
    )


EVENT_INSERT_KEYS = ["id", *NewEvent._fields]

MONTH_SECONDS = select(MonthlyUsage.used_seconds).where(
    MonthlyUsage.user_id == bindparam("user_id"), MonthlyUsage.period == bindparam("period")
)


def add_usage(dialect: str) -> Any:
    """Adds `used_seconds` to the user's month, creating the month's row if needed."""
    statement = dialect_insert(dialect, MonthlyUsage.__table__)
    return statement.on_conflict_do_update(
        index_elements=["user_id", "period"],
        set_={
            "used_seconds": MonthlyUsage.__table__.c.used_seconds + statement.excluded.used_seconds
        },
    )


RELEASE_HOLD = (
    update(CallAuthorization)
    .where(
        CallAuthorization.tenant_id == bindparam("key_tenant_id"),
        CallAuthorization.call_id == bindparam("key_call_id"),
        CallAuthorization.released_at.is_(None),
    )
    .values(released_at=bindparam("now"))
    .returning(CallAuthorization.user_id, CallAuthorization.expires_at)
)


def extension_holder_of(rows: Sequence[Mapping[Any, Any]]) -> ExtensionHolderRecord | None:
    """The holder from EXTENSION_HOLDER's rows (one per enabled device)."""
    if not rows:
        return None
    first = rows[0]
    return ExtensionHolderRecord(
        tenant_id=first["tenant_id"],
        user_id=first["user_id"],
        user_enabled=first["user_enabled"],
        auto_answer=first["auto_answer"],
        device_names=tuple(r["device_name"] for r in rows if r["device_name"]),
    )


def caller_lookup(
    *, domain: str, username: str | None, user_id: uuid.UUID | None, tenant_id: uuid.UUID | None
) -> tuple[bool, dict[str, Any]]:
    """Whether the caller is looked up by username (CALLER_BY_USERNAME, else
    CALLER_BY_USER_ID), and the parameters."""
    if username is not None:
        return True, {"domain": domain, "name_key": username.lower(), "tenant_id": tenant_id}
    return False, {"domain": domain, "user_id": user_id, "tenant_id": tenant_id}


def caller_of(row: Sequence[Any] | None) -> Caller | None:
    return None if row is None else Caller._make(row)


# Records are built from rows by position (a tuple's cost, not a dict's): the columns of each
# statement and the fields of its record are the same, in the same order.
def _same_order(statement: Any, fields: tuple[str, ...], skip: int = 0) -> None:
    names = tuple(c.key for c in statement.selected_columns)[skip:]
    if names != fields:
        raise RuntimeError(f"columns {names} do not match the record's fields {fields}")


_same_order(SIP_ACCOUNT, SipAccountRecord._fields)
_same_order(SIP_ACCOUNTS, SipAccountRecord._fields, skip=1)
_same_order(CALLER_BY_USERNAME, Caller._fields)
_same_order(CALLER_BY_USER_ID, Caller._fields)
_same_order(AUTHORIZED_CALLER, Caller._fields)
_same_order(SELECT_AUTHORIZATION, StoredAuthorization._fields)
_same_order(SELECT_CALL, StoredCall._fields)
