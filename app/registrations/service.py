"""Registrations: the contacts the SIP edges report for each device, and so whether a device is
online.

Each edge reports what it holds of an account at a time `at` of its own clock; every contact row
keeps the `at` of the last report that touched it (`seen_at`), and an older report leaves it as
it is (last writer wins), so late and repeated reports are harmless. Edges that share their
location table (a cluster) report only the contacts they hold the connection of; a contact one
edge reports ends the same contact at other edges: counted once, where it is. A device is
registered while it has a live contact that has not expired. Its events are its transitions only:
`device.registered` when it gets its first live contact, `device.unregistered` when it loses
its last one (a report, the expiry job, or a change that ends its registrations).

Every write to a device's rows first locks the device (in the order of the ids), so that two
reports, or a report and an operator, never both decide one transition.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.devices import repository
from app.devices.events import gone, transition
from app.devices.exceptions import SipAccountNotFound
from app.devices.models import Device, Registration, Transport
from app.devices.repository import DeviceRef, StoredRegistration
from app.errors import AppError, Code, InvalidInput, problem_of
from app.outbox import record as outbox
from app.outbox.record import Change
from app.registrations.schemas import (
    AccountReport,
    RefusedReport,
    RegistrationBatch,
    RegistrationBatchResult,
    RegistrationReport,
    RegistrationState,
)

# Why a device's registration state changed (`data.reason` of its events).
REPORTED = "reported"  # an edge's report
EXPIRED = "expired"  # its contacts' time ran out
ENDED = "ended"  # an operator ended them


@dataclass(frozen=True, slots=True)
class Applied:
    device_id: uuid.UUID
    contact_count: int


@dataclass(frozen=True, slots=True)
class Refused:
    error: AppError
    field: str | None


@dataclass(slots=True)
class _Contact:
    """A registration row as a batch changes it, written once at the batch's end."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    device_id: uuid.UUID
    edge: str
    contact: str
    transport: Transport | None
    source_address: str | None
    source_port: int | None
    user_agent: str | None
    expires_at: datetime
    live: bool
    seen_at: float
    registered_at: datetime
    updated_at: datetime | None = None  # set: the row changed
    stored: bool = True

    @classmethod
    def of(cls, row: StoredRegistration, *, tenant_id: uuid.UUID) -> "_Contact":
        return cls(tenant_id=tenant_id, **row._asdict())

    def end(self, *, now: datetime, at: float | None = None) -> None:
        """No longer live; as of the edge's `at` when a report says so (an expiry does not)."""
        self.live = False
        if at is not None:
            self.seen_at = at
        self.updated_at = now

    def values(self) -> dict[str, Any]:
        return {
            "live": self.live,
            "expires_at": self.expires_at,
            "seen_at": self.seen_at,
            "transport": self.transport,
            "source_address": self.source_address,
            "source_port": self.source_port,
            "user_agent": self.user_agent,
            "registered_at": self.registered_at,
            "updated_at": self.updated_at,
        }


@dataclass(slots=True)
class _Device:
    ref: DeviceRef
    contacts: dict[tuple[str, str], _Contact]

    def live_count(self) -> int:
        return sum(1 for contact in self.contacts.values() if contact.live)

    def add(
        self,
        edge: str,
        uri: str,
        *,
        at: float,
        now: datetime,
        expires_at: datetime,
        live: bool,
        transport: Transport | None = None,
        address: str | None = None,
        port: int | None = None,
        user_agent: str | None = None,
    ) -> None:
        """A contact the service had not heard of, written as a new row."""
        self.contacts[(edge, uri)] = _Contact(
            id=uuid.uuid4(),
            tenant_id=self.ref.tenant_id,
            device_id=self.ref.id,
            edge=edge,
            contact=uri,
            transport=transport,
            source_address=address,
            source_port=port,
            user_agent=user_agent,
            expires_at=expires_at,
            live=live,
            seen_at=at,
            registered_at=now,
            updated_at=now,
            stored=False,
        )


def _unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _check(
    report: AccountReport, *, where: str, now: datetime, future_seconds: int
) -> InvalidInput | None:
    """What the service's clock says of a report (its form was checked with its schema)."""
    if report.at > now.timestamp() + future_seconds:
        return InvalidInput(f"{where}.at", Code.reported_at_in_future, seconds=future_seconds)
    listed: set[str] = set()
    for index, contact in enumerate(report.contacts or []):
        field = f"{where}.contacts.{index}"
        if contact.expires_at <= now.timestamp():
            return InvalidInput(f"{field}.expires_at", Code.expires_at_in_past)
        if contact.expires_at <= report.at:
            return InvalidInput(f"{field}.expires_at", Code.expires_at_before_at)
        if contact.contact in listed:
            return InvalidInput(f"{field}.contact", Code.duplicate_contact)
        listed.add(contact.contact)
    return None


def _sweep(device: _Device, *, now: datetime) -> Change | None:
    """Contacts past their expiry are no longer live (what the expiry job does, done first for
    a device a report touches, so that its events keep their order)."""
    before = device.live_count()
    for contact in device.contacts.values():
        if contact.live and contact.expires_at <= now:
            contact.end(now=now)
    return transition(
        device.ref, before=before, after=device.live_count(), edge=None, reason=EXPIRED
    )


def _apply(device: _Device, report: AccountReport, *, edge: str, now: datetime) -> None:
    at = report.at
    if report.expired is not None:
        for uri in report.expired:
            contact = device.contacts.get((edge, uri))
            if contact is None:
                # Not heard of yet (its registration's report may still be on its way): kept
                # as ended at `at`, so that a report from before cannot make it live.
                device.add(edge, uri, at=at, now=now, expires_at=_unix(int(at)), live=False)
            elif contact.seen_at < at:
                contact.end(now=now, at=at)
        return
    listed = {c.contact: _unix(c.expires_at) for c in report.contacts or []}
    for contact in device.contacts.values():
        if not contact.live or contact.seen_at >= at:
            continue
        if contact.edge == edge and contact.contact not in listed:
            contact.end(now=now, at=at)
        elif contact.edge != edge and contact.contact in listed:
            # The phone registered this contact again at this edge (its edge died, or DNS sent
            # it elsewhere): the edges share one location table, so it is one contact, held
            # where it registered last.
            contact.end(now=now, at=at)
    source = report.source
    transport = source.transport if source else None
    address = source.address if source else None
    port = source.port if source else None
    for uri, expires_at in listed.items():
        contact = device.contacts.get((edge, uri))
        if contact is None:
            device.add(
                edge,
                uri,
                at=at,
                now=now,
                expires_at=expires_at,
                live=True,
                transport=transport,
                address=address,
                port=port,
                user_agent=report.user_agent,
            )
            continue
        if contact.seen_at >= at:
            continue  # a later report already said what this contact is
        if not contact.live:
            # Where it registered from now; a refresh keeps where it first came from.
            contact.registered_at = now
            contact.transport = transport
            contact.source_address = address
            contact.source_port = port
        if report.user_agent is not None:
            contact.user_agent = report.user_agent
        contact.live = True
        contact.expires_at = expires_at
        contact.seen_at = at
        contact.updated_at = now


async def apply_reports(
    session: AsyncSession,
    *,
    edge: str,
    reports: Sequence[AccountReport],
    where: Sequence[str],
    tenant_id: uuid.UUID | None,
    future_seconds: int,
    now: datetime | None = None,
) -> list[Applied | Refused]:
    """Applies each report of one edge, or refuses it (its problem names fields from its
    `where`), in a few statements whatever their number: the devices are resolved and locked in
    one, their rows read in one, and written in one per kind of write."""
    now = now or utcnow()
    outcomes: list[Applied | Refused | None] = [None] * len(reports)
    for index, report in enumerate(reports):
        error = _check(report, where=where[index], now=now, future_seconds=future_seconds)
        if error is not None:
            outcomes[index] = Refused(error, error.errors[0].field if error.errors else None)
    asked = {
        (report.domain, report.username.lower())
        for report, outcome in zip(reports, outcomes, strict=True)
        if outcome is None
    }
    found = {
        (reported.domain, reported.name_key): reported.device
        for reported in await repository.lock_reported_devices(
            session, accounts=asked, tenant_id=tenant_id
        )
    }
    devices = {ref.id: _Device(ref, {}) for ref in found.values()}
    for row in await repository.registrations_of(session, device_ids=list(devices)):
        device = devices[row.device_id]
        device.contacts[(row.edge, row.contact)] = _Contact.of(row, tenant_id=device.ref.tenant_id)
    changes = [change for device in devices.values() if (change := _sweep(device, now=now))]
    # In the order the edge saw things (a batch holds them in no particular order): an expiry
    # then comes after the registration it ends.
    for index in sorted(range(len(reports)), key=lambda i: reports[i].at):
        report = reports[index]
        if outcomes[index] is not None:
            continue
        ref = found.get((report.domain, report.username.lower()))
        if ref is None:
            outcomes[index] = Refused(
                SipAccountNotFound(username=report.username, domain=report.domain),
                f"{where[index]}.username",
            )
            continue
        device = devices[ref.id]
        before = device.live_count()
        _apply(device, report, edge=edge, now=now)
        after = device.live_count()
        change = transition(ref, before=before, after=after, edge=edge, reason=REPORTED)
        if change is not None:
            changes.append(change)
        outcomes[index] = Applied(ref.id, after)
    changed = [c for d in devices.values() for c in d.contacts.values() if c.updated_at]
    await repository.insert_registrations(
        session,
        [
            {
                "id": c.id,
                "tenant_id": c.tenant_id,
                "device_id": c.device_id,
                "edge": c.edge,
                "contact": c.contact,
                **c.values(),
            }
            for c in changed
            if not c.stored
        ],
    )
    await repository.update_registrations(
        session, [{"row_id": c.id, **c.values()} for c in changed if c.stored]
    )
    await outbox.record_many(session, changes)
    return [outcome for outcome in outcomes if outcome is not None]  # every one is set


async def report(
    session: AsyncSession,
    *,
    report: RegistrationReport,
    tenant_id: uuid.UUID | None,
    future_seconds: int,
) -> RegistrationState:
    """One report, applied, or refused with its problem (and then nothing changes)."""
    [outcome] = await apply_reports(
        session,
        edge=report.edge,
        reports=[report],
        where=["body"],
        tenant_id=tenant_id,
        future_seconds=future_seconds,
    )
    if isinstance(outcome, Refused):
        raise outcome.error
    return RegistrationState(
        device_id=outcome.device_id,
        registered=outcome.contact_count > 0,
        contact_count=outcome.contact_count,
    )


async def report_batch(
    session: AsyncSession,
    *,
    batch: RegistrationBatch,
    tenant_id: uuid.UUID | None,
    future_seconds: int,
    language: str,
) -> RegistrationBatchResult:
    """An edge's reports, each applied or refused on its own, in one transaction; the refusals
    in `language`."""
    outcomes = await apply_reports(
        session,
        edge=batch.edge,
        reports=batch.reports,
        where=[f"reports.{index}" for index in range(len(batch.reports))],
        tenant_id=tenant_id,
        future_seconds=future_seconds,
    )
    refused = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Refused):
            problem = problem_of(outcome.error, language)
            refused.append(
                RefusedReport(
                    index=index,
                    status=problem.status,
                    type=problem.type,
                    title=problem.title,
                    detail=problem.detail,
                    code=problem.code,
                    params=problem.params,
                    field=outcome.field,
                )
            )
    return RegistrationBatchResult(applied=len(outcomes) - len(refused), refused=refused)


async def expire(session: AsyncSession, *, device_ids: Sequence[uuid.UUID], now: datetime) -> int:
    """These devices' contacts past their expiry are no longer live; a device left with none
    is unregistered. Returns how many devices were."""
    devices = await repository.lock_devices_by_id(session, device_ids=device_ids)
    expired = await repository.end_expired_registrations(
        session, device_ids=[d.id for d in devices], now=now
    )
    still = await repository.contact_counts(session, tenant_id=None, device_ids=expired, now=now)
    offline = [d for d in devices if d.id in expired and not still.get(d.id)]
    await outbox.record_many(session, gone(offline, reason=EXPIRED))
    return len(offline)


async def live_registrations(
    session: AsyncSession, *, device: Device, limit: int, offset: int
) -> tuple[list[Registration], int]:
    return await repository.live_registrations(
        session,
        tenant_id=device.tenant_id,
        device_id=device.id,
        now=utcnow(),
        limit=limit,
        offset=offset,
    )
