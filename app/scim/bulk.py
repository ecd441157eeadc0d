"""`POST /scim/v2/Bulk` (RFC 7644 §3.7): many operations on /Users in one request, each with
its own outcome, read by scim2-models (`BulkRequest`, `BulkResponse`).

The operations run in order, a chunk of them to a transaction. Each is made by the write path
its single request takes, with the same events and audit entries, except that a run of creates
that conflict with nothing is written as the import writes its rows: the agents, their default
web devices, their extensions, events and audit entries, each table in one statement. What
a create could conflict with is looked up first for the whole run (the external references,
login names, extension numbers and device names already taken); a create that meets any of
them, one that repeats something an earlier operation of the request claims, and one of an
inactive agent go through the single write path on their own, which answers them as a single
request would (a directory's retry: that agent; another person's name: 409 `uniqueness`).

An operation that fails undoes only itself (a savepoint), and the others go on, unless the
request's `failOnErrors` says how many failures end it: then the operations after the last
failure it allows are not run, and not answered. A path may name a user created earlier in
the request by its `bulkId` (`/Users/bulkId:qwerty`); one whose create failed, or that no
earlier operation created, fails with 409."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from scim2_models import BulkOperation, BulkRequest, BulkResponse, Context
from scim2_models import Error as ScimErrorBody
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.clock import utcnow
from app.crypto import PasswordCipher
from app.db.session import Database
from app.devices import repository as devices_repository
from app.devices import service as devices
from app.errors import AppError
from app.extensions import repository as extensions_repository
from app.extensions import service as extensions
from app.outbox import record as outbox
from app.outbox.record import Change
from app.scim import repository, service
from app.scim.exceptions import InvalidSyntax, InvalidValue, ScimError
from app.scim.models import AgentResource, AgentSettings, ScimUser
from app.tenants.models import Tenant
from app.tenants.service import get_tenant
from app.user_record import repository as users_repository
from app.user_record import service as user_record
from app.users.service import default_device

# Advertised in ServiceProviderConfig; a request with more is refused whole (413).
MAX_OPERATIONS = 1000
# Operations to a transaction: SQLite's write lock, and a row lock on PostgreSQL, are held
# for a chunk at a time, so other writers wait for one chunk, not for the request.
CHUNK_OPERATIONS = 100
ENDPOINT = "/Users"
BULK_ID = "bulkId:"

Answer = BulkOperation[AgentResource]


@dataclass(slots=True)
class _Outcome:
    """What one operation answers: a status, and where the user is (its version) or why not."""

    method: str | None
    bulk_id: str | None
    status: int = 0
    location: str | None = None
    version: int | None = None
    error: ScimErrorBody | None = None

    @property
    def failed(self) -> bool:
        return self.status >= 400

    def fail(self, status: int, detail: str, scim_type: str | None = None) -> None:
        self.status = status
        self.error = ScimErrorBody(status=status, scim_type=scim_type, detail=detail)

    def answer(self) -> Any:
        return Answer(
            method=self.method,
            bulk_id=self.bulk_id,
            location=self.location,
            version=service.version_tag(self.version) if self.version is not None else None,
            status=self.status,
            response=self.error,
        )


def read(body: Any) -> Any:
    """The request as scim2-models reads it: an operation it cannot read is kept as a failed
    one (its status and error), the others are read as their single requests would be."""
    if not isinstance(body, dict):
        raise InvalidSyntax("the body is not a JSON object")
    try:
        request = BulkRequest[ScimUser].model_validate(body, scim_ctx=Context.BULK_REQUEST)
    except ValidationError as error:
        raise InvalidSyntax(service.first_error(error)) from None
    if request.fail_on_errors is not None and request.fail_on_errors < 1:
        raise InvalidValue("failOnErrors: at least 1 (the failures that end the request)")
    return request


async def run(
    db: Database,
    cipher: PasswordCipher,
    *,
    tenant_id: uuid.UUID,
    request: Any,
    base_url: str,
    language: str,
) -> dict[str, Any]:
    """Runs the operations in order, `CHUNK_OPERATIONS` to a transaction; the BulkResponse."""
    bulk = _Bulk(cipher, base_url=base_url, language=language, limit=request.fail_on_errors)
    operations: list[Any] = list(request.operations or [])
    for start in range(0, len(operations), CHUNK_OPERATIONS):
        async with db.session_scope() as session:
            tenant = await get_tenant(session, tenant_id=tenant_id)
            await bulk.run_chunk(session, tenant, operations[start : start + CHUNK_OPERATIONS])
        if bulk.stopped:
            break
    answer = BulkResponse[AgentResource](operations=[o.answer() for o in bulk.outcomes])
    return answer.model_dump(scim_ctx=Context.BULK_RESPONSE)


@dataclass(slots=True)
class _New:
    """A create the run writes with others: its outcome to be, and its rows and changes."""

    outcome: _Outcome
    user: dict[str, Any]
    device: dict[str, Any]
    extensions: list[dict[str, Any]]
    changes: list[Change]


@dataclass(slots=True)
class _Taken:
    """What a run of creates could conflict with: what the tenant has, and what earlier
    operations of the request claimed."""

    refs: set[str] = field(default_factory=set)
    user_names: set[str] = field(default_factory=set)
    numbers: set[str] = field(default_factory=set)
    device_names: set[str] = field(default_factory=set)


class _Bulk:
    def __init__(
        self, cipher: PasswordCipher, *, base_url: str, language: str, limit: int | None
    ) -> None:
        self.cipher = cipher
        self.base_url = base_url
        self.language = language
        self.limit = limit
        self.outcomes: list[_Outcome] = []
        self.failures = 0
        self.stopped = False
        # Each bulkId of a create run so far: its user's id, or None when the create failed.
        self.created: dict[str, uuid.UUID | None] = {}
        # Each bulkId's first operation (a later create with the same bulkId fails).
        self.first_of: dict[str, int] = {}
        self.index = 0

    def _record(self, outcome: _Outcome) -> None:
        """An operation's outcome, in order; enough failures end the request."""
        self.outcomes.append(outcome)
        if outcome.failed:
            self.failures += 1
            if self.limit is not None and self.failures >= self.limit:
                self.stopped = True

    async def run_chunk(self, session: AsyncSession, tenant: Tenant, chunk: list[Any]) -> None:
        position = 0
        while position < len(chunk) and not self.stopped:
            end = position
            while end < len(chunk) and _is_create(chunk[end]):
                end += 1
            if end > position:
                await self._creates(session, tenant, chunk[position:end])
                position = end
            else:
                await self._one(session, tenant, chunk[position])
                position += 1

    def _outcome(self, operation: Any) -> _Outcome:
        """A new outcome for the next operation; a failure scim2-models found already."""
        index, self.index = self.index, self.index + 1
        outcome = _Outcome(method=_method(operation), bulk_id=operation.bulk_id)
        if operation.bulk_id is not None and outcome.method == "POST":
            first = self.first_of.setdefault(operation.bulk_id, index)
            if first != index:
                outcome.fail(
                    400, f"bulkId {operation.bulk_id} names an earlier operation", "invalidValue"
                )
                return outcome
        if operation.status is not None and operation.status >= 400:
            error = operation.response
            outcome.fail(operation.status, error.detail or "", error.scim_type)
        elif operation.endpoint != ENDPOINT:
            outcome.fail(400, f"there is no endpoint {operation.endpoint or ''}", "invalidPath")
        elif outcome.method == "POST" and operation.resource_id is not None:
            outcome.fail(400, f"a POST names the endpoint ({ENDPOINT}), not a user", "invalidPath")
        elif outcome.method != "POST" and operation.resource_id is None:
            outcome.fail(400, f"a {outcome.method} names a user: {ENDPOINT}/{{id}}", "invalidPath")
        return outcome

    def _created(self, outcome: _Outcome, user_id: uuid.UUID | None) -> None:
        if outcome.bulk_id is not None and outcome.method == "POST":
            self.created.setdefault(outcome.bulk_id, user_id)

    async def _one(self, session: AsyncSession, tenant: Tenant, operation: Any) -> None:
        """An operation on its own, by its single request's write path, in a savepoint."""
        outcome = self._outcome(operation)
        if not outcome.failed:
            try:
                async with session.begin_nested():
                    await self._apply(session, tenant, operation, outcome)
            except ScimError as error:
                outcome.fail(error.status, error.detail, error.scim_type)
            except AppError as error:
                scim_type = "invalidValue" if error.status_code == 400 else None
                outcome.fail(error.status_code, error.text(self.language), scim_type)
            except StaleDataError:
                outcome.fail(412, "The user changed meanwhile; read it again.")
            except IntegrityError:
                outcome.fail(409, "Another change took what this one needs.", "uniqueness")
        if outcome.failed:
            self._created(outcome, None)
        self._record(outcome)

    async def _apply(
        self, session: AsyncSession, tenant: Tenant, operation: Any, outcome: _Outcome
    ) -> None:
        if outcome.method == "POST":
            shown, new = await service.create(
                session, self.cipher, tenant=tenant, user=operation.data, base_url=self.base_url
            )
            outcome.status, outcome.location, outcome.version = (
                201 if new else 200,
                shown.location,
                shown.version,
            )
            self._created(outcome, uuid.UUID(shown.resource["id"]))
            return
        user_id = self._user_id(operation.resource_id)
        outcome.location = f"{self.base_url}{ENDPOINT}/{user_id}"
        current = await service.require(
            session, tenant_id=tenant.id, user_id=user_id, for_update=True
        )
        service.check_version(operation.version, current.user.version)
        if outcome.method == "DELETE":
            await service.delete(session, current=current)
            outcome.status = 204
            return
        if outcome.method == "PUT":
            shown = await service.replace(
                session, current=current, user=operation.data, base_url=self.base_url
            )
        else:
            shown = await service.patch(
                session, current=current, operations=operation.data, base_url=self.base_url
            )
        outcome.status, outcome.version = 200, shown.version

    def _user_id(self, resource_id: str) -> str:
        """The user a path names: its id, or the user an earlier create made (`bulkId:...`)."""
        if not resource_id.startswith(BULK_ID):
            return resource_id
        bulk_id = resource_id.removeprefix(BULK_ID)
        user_id = self.created.get(bulk_id)
        if user_id is None:
            what = "failed" if bulk_id in self.created else "is not an earlier operation"
            raise _Unresolved(f"The create of bulkId {bulk_id} {what}.")
        return str(user_id)

    def _mark(self) -> tuple[int, int, int, dict[str, uuid.UUID | None], dict[str, int]]:
        return (
            len(self.outcomes),
            self.failures,
            self.index,
            dict(self.created),
            dict(self.first_of),
        )

    def _back_to(
        self, mark: tuple[int, int, int, dict[str, uuid.UUID | None], dict[str, int]]
    ) -> None:
        outcomes, self.failures, self.index, self.created, self.first_of = mark
        del self.outcomes[outcomes:]
        self.stopped = False

    async def _creates(self, session: AsyncSession, tenant: Tenant, run: list[Any]) -> None:
        """A run of creates: those that conflict with nothing written together, the others on
        their own, in order. A write that another change got in the way of (a name or number
        it took meanwhile) writes nothing: the creates from there on go on their own."""
        taken = await self._look_up(session, tenant, run)
        at = utcnow()
        pending: list[_New] = []
        # Where the creates not yet written start, and the outcomes as they were then.
        start: tuple[int, Any] | None = None
        refused = False
        for position, operation in enumerate(run):
            if self.stopped:
                break
            if start is None:
                start = (position, self._mark())
            outcome = self._outcome(operation)
            new: _New | None = None
            if not outcome.failed:
                try:
                    new = self._new(tenant, operation, outcome, taken, at=at)
                except ScimError as error:
                    outcome.fail(error.status, error.detail, error.scim_type)
            if outcome.failed:
                self._created(outcome, None)
                self._record(outcome)
                continue
            if new is not None:
                pending.append(new)
                self.outcomes.append(outcome)
                continue
            # On its own, once the creates before it are written.
            self.index -= 1
            if not await self._write(session, pending):
                refused = True
                break
            pending, start = [], None
            await self._one(session, tenant, operation)
        if not refused and await self._write(session, pending):
            return
        assert start is not None
        self._back_to(start[1])
        for operation in run[start[0] :]:
            if self.stopped:
                break
            await self._one(session, tenant, operation)

    def _new(
        self, tenant: Tenant, operation: Any, outcome: _Outcome, taken: _Taken, *, at: Any
    ) -> _New | None:
        """The rows of a create that conflicts with nothing; None for one that goes on its own
        (ScimError: what is wrong with it)."""
        fields = service.fields_of(operation.data)
        data = service.new_agent(fields)
        numbers = fields.extensions or []
        service.check_numbers(numbers)
        device = default_device(data.display_name)
        claims = (
            (fields.external_ref, taken.refs),
            (fields.user_name, taken.user_names),
            (device.name.lower(), taken.device_names),
            *((number, taken.numbers) for number in numbers),
        )
        alone = not fields.enabled or any(key is not None and key in held for key, held in claims)
        for key, held in claims:
            if key is not None:
                held.add(key)
        if alone:
            return None
        new = user_record.new_user(tenant_id=tenant.id, data=data, at=at)
        user_id: uuid.UUID = new.row["id"]
        made = devices.new_device(self.cipher, tenant=tenant, user_id=user_id, data=device, at=at)
        changes = [new.created, made.created]
        rows = []
        try:
            for number in numbers:
                extension = extensions.new_extension(
                    tenant=tenant, user_id=user_id, number=number, at=at
                )
                rows.append(extension.row)
                changes.append(extension.added)
        except AppError as error:
            raise service.refused(error) from None
        user = {
            **new.row,
            "user_name": fields.user_name,
            "search_text": users_repository.search_text(
                new.row["search_key"], [made.row["search_key"]], numbers
            ),
        }
        outcome.status, outcome.location, outcome.version = (
            201,
            f"{self.base_url}{ENDPOINT}/{user_id}",
            1,
        )
        return _New(outcome=outcome, user=user, device=made.row, extensions=rows, changes=changes)

    async def _look_up(self, session: AsyncSession, tenant: Tenant, run: list[Any]) -> _Taken:
        """What the tenant has of what the run's creates would take."""
        refs: set[str] = set()
        names: set[str] = set()
        numbers: set[str] = set()
        for operation in run:
            user = operation.data
            if user is None:
                continue
            if user.external_id:
                refs.add(str(user.external_id))
            if user.user_name:
                names.add(str(user.user_name))
            extension = user[AgentSettings]
            numbers.update(extension.extensions or [] if extension else [])
        stored = await users_repository.users_by_ref(
            session, tenant_id=tenant.id, refs=refs, for_update=False
        )
        held = await extensions_repository.number_holders(
            session, tenant_id=tenant.id, numbers=numbers
        )
        return _Taken(
            refs=set(stored),
            user_names=await repository.taken_user_names(
                session, tenant_id=tenant.id, user_names=names
            ),
            numbers=set(held),
        )

    async def _write(self, session: AsyncSession, pending: list[_New]) -> bool:
        """Writes the creates as the import writes its rows, each table in one statement;
        False when a unique constraint refuses them (nothing of them is written)."""
        if not pending:
            return True
        try:
            async with session.begin_nested():
                await users_repository.insert_users(session, [new.user for new in pending])
                # In the order of their unique keys, as the import writes them (two writers
                # wait for each other on a key instead of each holding one the other needs).
                await devices_repository.insert_devices(
                    session, sorted((new.device for new in pending), key=_name_key)
                )
                await extensions_repository.insert_extensions(
                    session,
                    sorted((row for new in pending for row in new.extensions), key=_number),
                )
                await outbox.record_many(session, [c for new in pending for c in new.changes])
        except IntegrityError:
            return False
        for new in pending:
            self._created(new.outcome, new.user["id"])
        return True


class _Unresolved(ScimError):
    """A path's bulkId that names no user this request created."""

    status = 409


def _is_create(operation: Any) -> bool:
    return _method(operation) == "POST"


def _method(operation: Any) -> str | None:
    return str(operation.method.value) if operation.method is not None else None


def _name_key(row: dict[str, Any]) -> str:
    return str(row["name_key"])


def _number(row: dict[str, Any]) -> str:
    return str(row["number"])
