"""Onboarding a call center at once: a file of agents imported all or nothing (or only checked,
a dry run).

The rows are read, checked and written in batches in the caller's one transaction: memory holds
a batch or two, not the file. Every rule of a single request applies (the same schemas and
checks), and so do duplicates inside the file and conflicts with what is stored; a batch is
written only while the file has no problem so far, and the caller rolls back when it has one.
The database writes a batch while the next is checked.

The importer orchestrates; it makes no row itself. Each new user, device and extension, and
each change of one, is made by the function of its domain a single request uses (so a rule
added there reaches the import), with the events and audit entries a single request writes;
each domain's repository writes them many rows to a statement."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import edgecache
from app.clock import utcnow
from app.crypto import PasswordCipher
from app.db.base import Base
from app.db.errors import violated_constraint
from app.devices import repository as devices_repository
from app.devices import service as devices
from app.devices.models import DeviceKind
from app.devices.repository import StoredDevice
from app.devices.schemas import DeviceCreate
from app.errors import DEFAULT_LANGUAGE, Code, InvalidInput, field_rule
from app.errors.problems import message_of
from app.extensions import repository as extensions_repository
from app.extensions import service as extensions
from app.extensions.repository import StoredExtension
from app.extensions.schemas import ExtensionNumber
from app.imports import repository
from app.imports.exceptions import ImportConflict, ImportRejected
from app.imports.formats import FileFormat, Problem, RowReader, SourceRow
from app.imports.schemas import ImportedRow, ImportProblem, ImportReport, NewDevice
from app.outbox import record as outbox
from app.outbox.record import Change
from app.tenants.models import Tenant
from app.user_record import repository as users_repository
from app.user_record import service as user_record
from app.user_record.repository import StoredUser
from app.user_record.schemas import ExternalRef, UserCreate, UserUpdate
from app.users import service as users

BATCH_ROWS = 500
MAX_PROBLEMS = 1000
# The longest piece of a cell quoted back in a problem's message.
_QUOTED = 40
# How many rows are made between two pauses that let the batch before them be written.
_ROWS_BETWEEN_PAUSES = 25

Progress = Callable[[int], Awaitable[None]]

_external_ref = TypeAdapter(ExternalRef)
_extension_number = TypeAdapter(ExtensionNumber)

# What another change took while the import ran (the database's unique constraints decide).
_CONFLICTS = {
    "uq_extension_tenant_id_number": Code.import_conflict_extension,
    "uq_device_tenant_id_name_key": Code.import_conflict_device_name,
    "uq_user_account_tenant_id_external_ref": Code.import_conflict_external_ref,
}


def count_rows(source: IO[bytes], file_format: FileFormat) -> int:
    """The agent rows in a file (the header and blank lines not counted)."""
    return sum(1 for _ in RowReader(source, file_format))


async def import_users(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant: Tenant,
    source: IO[bytes],
    file_format: FileFormat,
    dry_run: bool,
    progress: Progress | None = None,
) -> ImportReport:
    """Checks every row of the file and, unless `dry_run`, writes them. With any problem a
    real import raises ImportRejected (the caller's transaction must roll back: part of the file
    may have been written); a dry run reports them and writes nothing."""
    importer = _Importer(session, cipher, tenant=tenant, dry_run=dry_run)
    reader = RowReader(source, file_format)
    batch: list[SourceRow] = []
    for row in reader:
        batch.append(row)
        if len(batch) == BATCH_ROWS:
            await importer.take(batch, file_problems=reader.problems)
            batch = []
            if progress is not None:
                await progress(importer.rows_total)
    if batch or not importer.rows_total:
        await importer.take(batch, file_problems=reader.problems)
        if progress is not None:
            await progress(importer.rows_total)
    await importer.finish()
    report = importer.report()
    if report.problems_total and not dry_run:
        raise ImportRejected(report)
    return report


@dataclass(slots=True)
class _Row:
    """A row on its way: what it asks, and what the database holds for it."""

    source: SourceRow
    ref: str | None = None
    stored: StoredUser | None = None
    # A new user (no stored one): what a single create would be given.
    new: UserCreate | None = None
    # A stored user: the fields the row gives.
    user: dict[str, Any] = field(default_factory=dict)
    numbers: list[str] = field(default_factory=list)
    devices: list[DeviceCreate] = field(default_factory=list)

    @property
    def number(self) -> int:
        return self.source.row

    def problem(self, column: str | None, code: Code, **params: Any) -> None:
        self.source.problem(column, code, **params)

    def broke(self, column: str, err: Any, **params: Any) -> None:
        """A problem pydantic found: the rule it stands for, with its params."""
        code, rule_params = field_rule(err)
        self.source.problem(column, code, **rule_params, **params)


@dataclass(slots=True)
class _Writes:
    """A batch's writes, gathered to be sent a table at a time."""

    users: list[dict[str, Any]] = field(default_factory=list)
    user_updates: dict[frozenset[str], list[dict[str, Any]]] = field(default_factory=dict)
    devices: list[dict[str, Any]] = field(default_factory=list)
    device_kinds: list[dict[str, Any]] = field(default_factory=list)
    deleted_devices: list[uuid.UUID] = field(default_factory=list)
    extensions: list[dict[str, Any]] = field(default_factory=list)
    removed_extensions: list[uuid.UUID] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    # Users who lost a device or an extension.
    bereft: set[uuid.UUID] = field(default_factory=set)

    def searched_users(self) -> set[uuid.UUID]:
        """The users whose search text these writes change."""
        ids = {row["id"] for row in self.users} | self.bereft
        ids.update(row["user_id"] for rows in self.user_updates.values() for row in rows)
        ids.update(row["user_id"] for row in self.devices)
        ids.update(row["user_id"] for row in self.extensions)
        return ids


@dataclass(slots=True)
class _Found:
    """What the database holds for a batch."""

    holders: dict[str, uuid.UUID] = field(default_factory=dict)
    name_holders: dict[str, uuid.UUID] = field(default_factory=dict)
    devices: dict[uuid.UUID, list[StoredDevice]] = field(default_factory=dict)
    extensions: dict[uuid.UUID, list[StoredExtension]] = field(default_factory=dict)


def _quoted(text: str) -> str:
    return text if len(text) <= _QUOTED else text[: _QUOTED - 1] + "…"


class _Importer:
    def __init__(
        self, session: AsyncSession, cipher: PasswordCipher, *, tenant: Tenant, dry_run: bool
    ) -> None:
        self.session = session
        self.cipher = cipher
        self.tenant = tenant
        self.dry_run = dry_run
        # Where each external reference, extension and (lower-cased) device name first
        # appears in the file: a second appearance is a duplicate.
        self.refs: dict[str, int] = {}
        self.numbers: dict[str, int] = {}
        self.names: dict[str, int] = {}
        self.header_taken = False
        # The last batch's writes, until the next batch has been looked up.
        self.pending: _Writes | None = None
        self.rows_total = 0
        self.created = self.updated = self.unchanged = 0
        self.problems: list[Problem] = []
        self.problems_total = 0
        # Kept as tuples until the report: thousands of small objects that live to the end
        # would make each of the collector's full passes longer.
        self.rows: list[tuple[int, str, str | None, uuid.UUID | None]] = []
        self.new_devices: list[tuple[int, uuid.UUID, str | None, uuid.UUID, str, str, str]] = []

    @property
    def writing(self) -> bool:
        return not self.dry_run and self.problems_total == 0

    async def take(self, batch: list[SourceRow], *, file_problems: list[Problem]) -> None:
        """Checks a batch against the file so far and what is stored. While the file has no
        problem, the batch before it is written meanwhile: the database writes one batch while
        this process makes the rows of the next; this one's rows wait for the next call (or
        `finish`). The file's own problems (its header) are known once its first row has been
        read, before the first batch is taken."""
        if not self.header_taken:
            self.header_taken = True
            self._count(file_problems)
        self.rows_total += len(batch)
        rows = [_Row(source) for source in batch if source.readable]
        for row in rows:
            self._read_ref(row)
        async with repository.lookups_planned_for_their_values(self.session):
            found = await self._look_up(rows)
        previous, self.pending = self.pending, None
        writing = (
            asyncio.ensure_future(self._write(previous))
            if previous is not None and self.writing
            else None
        )
        try:
            writes = await self._build(rows, found)
        except BaseException:
            if writing is not None:
                writing.cancel()
                with suppress(BaseException):
                    await writing
            raise
        if writing is not None:
            await writing
        for source in batch:
            self._count(source.problems)
        self.pending = writes

    async def finish(self) -> None:
        """Writes the last batch (while the file has no problem)."""
        pending, self.pending = self.pending, None
        if pending is not None and self.writing:
            await self._write(pending)

    def _count(self, problems: list[Problem]) -> None:
        self.problems_total += len(problems)
        room = MAX_PROBLEMS - len(self.problems)
        self.problems += problems[:room]

    def _read_ref(self, row: _Row) -> None:
        value = row.source.fields.get("external_ref")
        if value is None:
            return
        try:
            ref: str = _external_ref.validate_python(value)
        except ValidationError as error:
            row.broke("external_ref", error.errors()[0])
            return
        first = self.refs.setdefault(ref, row.number)
        if first != row.number:
            row.problem("external_ref", Code.also_in_row, row=first, item=_quoted(ref))
            return
        row.ref = ref

    def _read_user(self, row: _Row) -> None:
        """The user's fields, by the rules of a single create (no such user yet) or update."""
        # The external reference is read already: it says which user the row is.
        fields = {k: v for k, v in row.source.fields.items() if k != "external_ref"}
        model: type[UserCreate] | type[UserUpdate] = (
            UserCreate if row.stored is None else UserUpdate
        )
        try:
            data = model.model_validate(fields)
        except ValidationError as error:
            for err in error.errors():
                column = str(err["loc"][0]) if err["loc"] else None
                if column is None:
                    code, params = field_rule(err)
                    row.problem(None, code, **params)
                else:
                    row.broke(column, err)
            return
        if isinstance(data, UserCreate):
            # The reference as read and checked above (its own column's rules).
            row.new = data.model_copy(update={"external_ref": row.ref})
        else:
            row.user = data.changes()

    def _read_extensions(self, row: _Row) -> None:
        in_row: set[str] = set()
        for number in row.source.extensions or []:
            try:
                _extension_number.validate_python(number)
                extensions.refuse_emergency_shadow(
                    number, self.tenant.emergency_numbers, field="extensions"
                )
            except ValidationError as error:
                row.broke("extensions", error.errors()[0], item=_quoted(str(number)))
                continue
            except InvalidInput as error:
                assert error.rule is not None
                row.problem("extensions", error.rule, **error.params)
                continue
            if number in in_row:
                row.problem("extensions", Code.twice_in_row, item=number)
                continue
            in_row.add(number)
            first = self.numbers.setdefault(number, row.number)
            if first != row.number:
                row.problem("extensions", Code.also_in_row, row=first, item=number)
                continue
            row.numbers.append(number)

    def _read_devices(self, row: _Row) -> None:
        for name, kind in row.source.devices or []:
            try:
                device = DeviceCreate.model_validate({"name": name, "kind": kind})
                devices.check_new_device(device)
            except ValidationError as error:
                for err in error.errors():
                    item = _quoted(str(kind if err["loc"] == ("kind",) else name))
                    row.broke("devices", err, item=item)
                continue
            except InvalidInput as error:
                assert error.rule is not None
                row.problem("devices", error.rule, **error.params, item=_quoted(str(name)))
                continue
            if not self._claim_name(row, device.name):
                continue
            row.devices.append(device)

    def _claim_name(self, row: _Row, name: str) -> bool:
        first = self.names.setdefault(name.lower(), row.number)
        if first == row.number and not any(d.name.lower() == name.lower() for d in row.devices):
            return True
        if first == row.number:
            row.problem("devices", Code.twice_in_row, item=name)
        else:
            row.problem("devices", Code.also_in_row, row=first, item=name)
        return False

    def _default_device(self, row: _Row) -> None:
        """A new user without devices in the file gets the one a single create gives."""
        assert row.new is not None
        while True:
            device = users.default_device(row.new.display_name)
            if device.name.lower() not in self.names:
                self.names[device.name.lower()] = row.number
                row.devices.append(device)
                return

    async def _look_up(self, rows: list[_Row]) -> _Found:
        """What the database holds for a batch: the users its references name (locked, for a
        real import), who holds its extensions and device names, and the updated users'
        extensions and devices. Each row is read by the rules of a create or an update."""
        tenant_id = self.tenant.id
        stored = await users_repository.users_by_ref(
            self.session,
            tenant_id=tenant_id,
            refs=[row.ref for row in rows if row.ref is not None],
            for_update=not self.dry_run,
        )
        for row in rows:
            row.stored = stored.get(row.ref) if row.ref is not None else None
            self._read_user(row)
            self._read_extensions(row)
            self._read_devices(row)
            if row.stored is None and not row.source.problems and not row.source.devices:
                self._default_device(row)
        found = _Found()
        found.holders = await extensions_repository.number_holders(
            self.session, tenant_id=tenant_id, numbers=[n for row in rows for n in row.numbers]
        )
        found.name_holders = await devices_repository.name_holders(
            self.session,
            tenant_id=tenant_id,
            name_keys=[device.name.lower() for row in rows for device in row.devices],
        )
        while clashes := [
            row
            for row in rows
            if row.stored is None
            and not row.source.devices
            and row.devices
            and row.devices[0].name.lower() in found.name_holders
        ]:
            # A generated default name that some device already has (rare): another one.
            for row in clashes:
                row.devices.clear()
                self._default_device(row)
            found.name_holders = await devices_repository.name_holders(
                self.session,
                tenant_id=tenant_id,
                name_keys=[row.devices[0].name.lower() for row in clashes],
            )
        updated = [row.stored.id for row in rows if row.stored is not None]
        for device in await devices_repository.stored_devices_of(
            self.session, tenant_id=tenant_id, user_ids=updated
        ):
            found.devices.setdefault(device.user_id, []).append(device)
        for extension in await extensions_repository.stored_extensions_of(
            self.session, tenant_id=tenant_id, user_ids=updated
        ):
            found.extensions.setdefault(extension.user_id, []).append(extension)
        return found

    async def _build(self, rows: list[_Row], found: _Found) -> _Writes:
        """Each row against what is stored (a conflict is a problem), and what to write. Pauses
        every few rows, so that the batch before it is written meanwhile."""
        writes = _Writes()
        now = utcnow()
        for index, row in enumerate(rows):
            if index % _ROWS_BETWEEN_PAUSES == 0:
                await asyncio.sleep(0)
            own = row.stored.id if row.stored is not None else None
            for number in row.numbers:
                if found.holders.get(number, own) != own:
                    row.problem("extensions", Code.extension_taken, number=number)
            for device in row.devices:
                if found.name_holders.get(device.name.lower(), own) != own:
                    row.problem("devices", Code.device_name_taken, name=device.name)
            if row.stored is None:
                self._create(row, writes, at=now)
            else:
                self._update(
                    row,
                    writes,
                    stored_devices=found.devices.get(row.stored.id, []),
                    stored_extensions=found.extensions.get(row.stored.id, []),
                    at=now,
                )
        return writes

    def _create(self, row: _Row, writes: _Writes, *, at: datetime) -> None:
        if row.source.problems:
            return
        assert row.new is not None
        new = user_record.new_user(tenant_id=self.tenant.id, data=row.new, at=at)
        user_id: uuid.UUID = new.row["id"]
        writes.users.append(new.row)
        writes.changes.append(new.created)
        for device in row.devices:
            self._new_device(row, writes, user_id=user_id, data=device, at=at)
        for number in row.numbers:
            self._new_extension(writes, user_id=user_id, number=number, at=at)
        self.created += 1
        self.rows.append((row.number, "create", row.ref, None if self.dry_run else user_id))

    def _new_device(
        self, row: _Row, writes: _Writes, *, user_id: uuid.UUID, data: DeviceCreate, at: datetime
    ) -> None:
        if not self.writing:
            # Nothing will be stored: no password to make, encrypt and hash.
            return
        new = devices.new_device(self.cipher, tenant=self.tenant, user_id=user_id, data=data, at=at)
        writes.devices.append(new.row)
        writes.changes.append(new.created)
        self.new_devices.append(
            (row.number, user_id, row.ref, new.row["id"], data.name, data.kind.value, new.password)
        )

    def _new_extension(
        self, writes: _Writes, *, user_id: uuid.UUID, number: str, at: datetime
    ) -> None:
        new = extensions.new_extension(
            tenant=self.tenant, user_id=user_id, number=number, at=at, field="extensions"
        )
        writes.extensions.append(new.row)
        writes.changes.append(new.added)

    def _update(
        self,
        row: _Row,
        writes: _Writes,
        *,
        stored_devices: list[StoredDevice],
        stored_extensions: list[StoredExtension],
        at: datetime,
    ) -> None:
        """The columns the file gives, set on the stored user: its fields, and its extensions
        and devices as the cells list them (the ones not listed are removed)."""
        stored = row.stored
        assert stored is not None
        wanted_devices = {device.name.lower(): device for device in row.devices}
        for device in stored_devices:
            wanted = wanted_devices.get(device.name_key)
            if wanted is not None and wanted.name != device.name:
                row.problem("devices", Code.device_name_case, name=device.name, item=wanted.name)
        if row.source.problems:
            return
        # What the row changes: the changes it records (a dry run makes no device, and records
        # none for one).
        tenant_id, changes, added_device = self.tenant.id, len(writes.changes), False
        values, updated = user_record.user_update(
            tenant_id=tenant_id,
            user_id=stored.id,
            before={name: getattr(stored, name) for name in user_record.SHOWN},
            given=row.user,
            quota_version=stored.quota_version,
        )
        if values:
            writes.user_updates.setdefault(frozenset(values), []).append(
                {"user_id": stored.id, **values}
            )
            writes.changes.append(updated)
        if row.source.extensions is not None:
            for extension in stored_extensions:
                if extension.number not in row.numbers:
                    writes.removed_extensions.append(extension.id)
                    writes.bereft.add(stored.id)
                    writes.changes.append(
                        extensions.extension_change(
                            "extension.removed",
                            tenant_id=tenant_id,
                            user_id=stored.id,
                            number=extension.number,
                        )
                    )
            held = {extension.number for extension in stored_extensions}
            for number in row.numbers:
                if number not in held:
                    self._new_extension(writes, user_id=stored.id, number=number, at=at)
        if row.source.devices is not None:
            for device in stored_devices:
                if device.name_key not in wanted_devices:
                    if not self.dry_run:
                        edgecache.forget(
                            self.session, domain=self.tenant.sip_domain, usernames=[device.name]
                        )
                    writes.deleted_devices.append(device.id)
                    writes.bereft.add(stored.id)
                    writes.changes.append(devices.device_deleted(device, tenant_id=tenant_id))
            for device in stored_devices:
                wanted = wanted_devices.get(device.name_key)
                if wanted is not None and wanted.kind != device.kind:
                    writes.device_kinds.append({"device_id": device.id, "kind": wanted.kind})
                    writes.changes.append(
                        devices.device_updated(
                            device,
                            tenant_id=tenant_id,
                            before=devices.shown(device),
                            after=devices.shown(device._replace(kind=wanted.kind)),
                        )
                    )
            kept = {device.name_key for device in stored_devices}
            for wanted in row.devices:
                if wanted.name.lower() not in kept:
                    self._new_device(row, writes, user_id=stored.id, data=wanted, at=at)
                    added_device = True
        changed = added_device or len(writes.changes) > changes
        if changed:
            self.updated += 1
        else:
            self.unchanged += 1
        self.rows.append((row.number, "update" if changed else "unchanged", row.ref, stored.id))

    async def _write(self, writes: _Writes) -> None:
        session, at = self.session, utcnow()
        try:
            await users_repository.insert_users(session, writes.users)
            for columns, rows in writes.user_updates.items():
                await users_repository.update_users(session, columns=columns, rows=rows, at=at)
            await extensions_repository.delete_extensions(session, ids=writes.removed_extensions)
            await devices_repository.delete_devices(session, ids=writes.deleted_devices)
            await devices_repository.update_device_kinds(session, rows=writes.device_kinds, at=at)
            # In the order of their unique keys: two imports that race wait for each other
            # on the same key instead of each holding one the other needs (a deadlock).
            writes.devices.sort(key=lambda row: row["name_key"])
            writes.extensions.sort(key=lambda row: row["number"])
            await devices_repository.insert_devices(session, writes.devices)
            await extensions_repository.insert_extensions(session, writes.extensions)
            await users_repository.refresh_search_text(session, writes.searched_users())
        except IntegrityError as error:
            what = _CONFLICTS.get(violated_constraint(error, Base.metadata) or "")
            if what is None:
                raise
            raise ImportConflict(what) from None
        await outbox.record_many(session, writes.changes)

    def report(self) -> ImportReport:
        problems = sorted(self.problems, key=lambda p: p.row)
        return ImportReport(
            dry_run=self.dry_run,
            rows_total=self.rows_total,
            created=self.created,
            updated=self.updated,
            unchanged=self.unchanged,
            problems_total=self.problems_total,
            problems=[
                ImportProblem(
                    row=p.row,
                    column=p.column,
                    code=p.code,
                    params=p.params,
                    message=message_of(p.code, p.params, DEFAULT_LANGUAGE),
                )
                for p in problems
            ],
            rows=[
                ImportedRow(row=number, action=action, external_ref=ref, user_id=user_id)
                for number, action, ref, user_id in self.rows
            ],
            new_devices=None
            if self.dry_run
            else [
                NewDevice(
                    row=number,
                    user_id=user_id,
                    external_ref=ref,
                    device_id=device_id,
                    name=name,
                    kind=DeviceKind(kind),
                    password=password,
                )
                for number, user_id, ref, device_id, name, kind, password in self.new_devices
            ],
        )
