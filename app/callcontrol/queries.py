"""The hot path's statements as Core queries, built once (building and cache-keying a select()
costs more CPU than running it) and shared by both store implementations.

Every read takes a `tenant_id` parameter: a tenant's key sees its own tenant only, a platform
key (None) any tenant.
"""

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    false,
    func,
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
from app.db.sql import dialect_insert
from app.devices.models import Device, DeviceKind
from app.extensions.models import Extension
from app.outbox.models import Event
from app.quotas.models import CallAuthorization, CallRecord, MonthlyUsage
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

LOCK_LIMIT = select(User.limit_minutes).where(User.id == bindparam("user_id")).with_for_update()

AUTHORIZATION_ANSWER = (
    CallAuthorization.call_id,
    CallAuthorization.allowed,
    CallAuthorization.reason,
    CallAuthorization.max_duration_seconds,
    CallAuthorization.emergency,
    CallAuthorization.user_id,
    CallAuthorization.destination_class,
)

_USER_ID = bindparam("user_id", type_=Uuid)

# The user's granted calls still open, and the calls asked for since `since` (parameters
# user_id, now, since): the concurrent-call and velocity limits, counted once the call's own
# answer is stored.
CALLS_IN_PROGRESS = select(
    select(func.count())
    .where(
        CallAuthorization.user_id == _USER_ID,
        CallAuthorization.released_at.is_(None),
        CallAuthorization.expires_at > bindparam("now"),
        CallAuthorization.allowed.is_(True),
        CallAuthorization.emergency.is_(False),
    )
    .scalar_subquery()
    .label("open_calls"),
    select(func.count())
    .where(
        CallAuthorization.user_id == _USER_ID,
        CallAuthorization.created_at > bindparam("since"),
        CallAuthorization.emergency.is_(False),
    )
    .scalar_subquery()
    .label("recent_calls"),
)

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
