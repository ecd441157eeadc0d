"""A SCIM user is an agent: what a directory sends becomes a change made by the Users
aggregate's own write paths (a new agent with its default web device, a disabled agent whose
devices stop registering, a deletion the SIP edges hear of), with their events and audit
entries. The mapping:

- `externalId` is the agent's external reference, what the import keys on: the directory's
  stable id for the person, so an agent imported earlier is the same agent to the directory;
- `userName` is the login name, kept in a column of its own (unique in the tenant);
- `displayName` is the agent's name (`name.formatted`, or given and family names, when the
  directory sends no displayName), `emails` its one e-mail, `active` its `enabled`;
- the AntRing Agent extension carries the minute limit, the two switches and the agent's
  extension numbers (sent, they become exactly the agent's numbers, added and removed as the
  console adds and removes them; left out, they stay as they are).
"""

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, Meta, PatchOp, ResponseParameters
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import PasswordCipher
from app.errors import AppError
from app.extensions import repository as extensions_repository
from app.extensions import service as extensions
from app.extensions.exceptions import ExtensionTaken
from app.extensions.schemas import ExtensionCreate
from app.scim import repository
from app.scim.exceptions import (
    InvalidSyntax,
    InvalidValue,
    ResourceNotFound,
    ScimError,
    Uniqueness,
    VersionChanged,
)
from app.scim.models import (
    AGENT_SCHEMA,
    AgentEmail,
    AgentExtension,
    AgentResource,
    AgentSettings,
    ScimUser,
)
from app.tenants.models import Tenant
from app.user_record import service as user_record
from app.user_record.exceptions import ExternalRefTaken, UserNameTaken, UserNotFound
from app.user_record.models import User
from app.user_record.schemas import UserCreate, UserUpdate
from app.user_record.service import TenantUser
from app.users import service as users

MAX_COUNT = 1000
AGENT_EXTENSIONS = f"{AGENT_SCHEMA}:extensions"


@dataclass(frozen=True, slots=True)
class Shown:
    """An agent as SCIM shows it, with its version (the ETag)."""

    resource: dict[str, Any]
    version: int
    location: str


def version_tag(version: int) -> str:
    return f'W/"{version}"'


def parameters(attributes: str | None, excluded: str | None) -> ResponseParameters[Any] | None:
    """RFC 7644 §3.9's `attributes` / `excludedAttributes`, read by scim2-models."""
    if attributes is None and excluded is None:
        return None
    try:
        return ResponseParameters[AgentResource].model_validate(
            {"attributes": attributes, "excludedAttributes": excluded}
        )
    except ValidationError as error:
        raise InvalidValue(first_error(error)) from None


def _present(
    user: User, numbers: list[str], base_url: str, shape: ResponseParameters[Any] | None = None
) -> Shown:
    location = f"{base_url}/Users/{user.id}"
    resource = AgentResource(
        id=str(user.id),
        external_id=user.external_ref,
        user_name=user.user_name or user.external_ref or str(user.id),
        display_name=user.display_name,
        emails=[AgentEmail(value=user.email)] if user.email else None,
        active=user.enabled,
        meta=Meta(
            resource_type="User",
            created=user.created_at,
            last_modified=user.updated_at,
            location=location,
            version=version_tag(user.version),
        ),
    )
    resource[AgentExtension] = AgentExtension(
        extensions=numbers or None,
        limit_minutes=user.limit_minutes,
        outbound_allowed=user.outbound_allowed,
        auto_answer=user.auto_answer,
    )
    return Shown(
        resource=resource.model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=shape
        ),
        version=user.version,
        location=location,
    )


async def _numbers(
    session: AsyncSession, *, tenant_id: uuid.UUID, users: list[User]
) -> dict[uuid.UUID, list[str]]:
    numbers: dict[uuid.UUID, list[str]] = {user.id: [] for user in users}
    for extension in await extensions_repository.list_user_extensions(
        session, tenant_id=tenant_id, user_ids=[user.id for user in users]
    ):
        numbers[extension.user_id].append(extension.number)
    return numbers


async def show(
    session: AsyncSession,
    *,
    user: User,
    base_url: str,
    shape: ResponseParameters[Any] | None = None,
) -> Shown:
    numbers = await _numbers(session, tenant_id=user.tenant_id, users=[user])
    return _present(user, numbers[user.id], base_url, shape)


def read_user(body: Any, context: Context) -> Any:
    """The directory's user, as scim2-models reads it; SCIM's invalidValue when it is not one."""
    if not isinstance(body, dict):
        raise InvalidSyntax("the body is not a JSON object")
    try:
        return ScimUser.model_validate(body, scim_ctx=context)
    except ValidationError as error:
        raise InvalidValue(first_error(error)) from None


def first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def _display_name(user: Any) -> str | None:
    if user.display_name:
        return str(user.display_name)
    name = user.name
    if name is None:
        return None
    if name.formatted:
        return str(name.formatted)
    words = [word for word in (name.given_name, name.family_name) if word]
    return " ".join(words) or None


def _email(user: Any) -> str | None:
    emails = user.emails or []
    chosen = next((email for email in emails if email.primary), emails[0] if emails else None)
    return str(chosen.value) if chosen is not None and chosen.value else None


@dataclass(frozen=True, slots=True)
class _Fields:
    """What the service keeps of a SCIM user."""

    user_name: str
    external_ref: str | None
    display_name: str
    email: str | None
    enabled: bool
    limit_minutes: int | None
    outbound_allowed: bool | None
    auto_answer: bool | None
    # None: left out, the agent's numbers stay as they are.
    extensions: list[str] | None


def fields_of(user: Any, *, current: User | None = None) -> _Fields:
    if not user.user_name:
        raise InvalidValue("userName is required")
    display_name = _display_name(user) or (current.display_name if current else None)
    extension = user[AgentSettings]
    return _Fields(
        user_name=str(user.user_name),
        external_ref=str(user.external_id) if user.external_id else None,
        display_name=display_name or str(user.user_name),
        email=_email(user),
        enabled=user.active is not False,
        limit_minutes=extension.limit_minutes if extension else None,
        outbound_allowed=extension.outbound_allowed if extension else None,
        auto_answer=extension.auto_answer if extension else None,
        extensions=list(extension.extensions) if extension and extension.extensions else None,
    )


def refused(error: AppError) -> ScimError:
    """A rule of the service's, in SCIM's words."""
    if isinstance(error, (ExternalRefTaken, UserNameTaken, ExtensionTaken)):
        return Uniqueness(error.text())
    if isinstance(error, UserNotFound):
        return ResourceNotFound(error.text())
    if error.errors:
        problem = error.errors[0]
        field = AGENT_EXTENSIONS if problem.field == "body.number" else problem.field
        return InvalidValue(f"{field}: {error.text()}")
    return InvalidValue(error.text())


def _scim_field(field: str) -> str:
    return {
        "display_name": "displayName",
        "email": "emails",
        "external_ref": "externalId",
        "limit_minutes": "limitMinutes",
    }.get(field, field)


def _update(fields: _Fields) -> UserUpdate:
    values: dict[str, Any] = {
        "display_name": fields.display_name,
        "email": fields.email,
        "external_ref": fields.external_ref,
        "enabled": fields.enabled,
        "limit_minutes": fields.limit_minutes,
    }
    if fields.outbound_allowed is not None:
        values["outbound_allowed"] = fields.outbound_allowed
    if fields.auto_answer is not None:
        values["auto_answer"] = fields.auto_answer
    update: UserUpdate = _validated(UserUpdate, values)
    return update


def _validated(model: Any, values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = _scim_field(str(first["loc"][0])) if first["loc"] else ""
        raise InvalidValue(f"{field}: {first['msg']}") from None


def new_agent(fields: _Fields) -> UserCreate:
    """What `POST /v1/users` would be given for a new agent of these fields."""
    data: UserCreate = _validated(
        UserCreate,
        {
            "display_name": fields.display_name,
            "email": fields.email,
            "external_ref": fields.external_ref,
            "limit_minutes": fields.limit_minutes,
            **(
                {"outbound_allowed": fields.outbound_allowed}
                if fields.outbound_allowed is not None
                else {}
            ),
            **({"auto_answer": fields.auto_answer} if fields.auto_answer is not None else {}),
        },
    )
    return data


async def create(
    session: AsyncSession,
    cipher: PasswordCipher,
    *,
    tenant: Tenant,
    user: Any,
    base_url: str,
) -> tuple[Shown, bool]:
    """A new agent, made as `POST /v1/users` makes one from the directory's `user` (as
    `read_user` reads it); or, for a directory that retries a create (its externalId is an
    agent's already, with the same userName or none yet), that agent as it is. True when it is
    new."""
    fields = fields_of(user)
    if fields.external_ref is not None:
        known = await repository.find_by_external_ref(
            session, tenant_id=tenant.id, external_ref=fields.external_ref
        )
        if known is not None and known.user_name in (None, fields.user_name):
            await _set_user_name(session, known, fields.user_name)
            return await show(session, user=known, base_url=base_url), False
    data = new_agent(fields)
    try:
        # The write path of POST /v1/users; the device's password is not SCIM's to show.
        user, _ = await users.add_agent(
            session, cipher, tenant=tenant, data=data, user_name=fields.user_name
        )
    except AppError as error:
        raise refused(error) from None
    numbers = await _set_extensions(
        session, tenant=tenant, user_id=user.id, held=[], wanted=fields.extensions or []
    )
    if not fields.enabled:
        current = TenantUser(user=user, tenant=tenant)
        await users.update_user(session, current=current, data=UserUpdate(enabled=False))
    return _present(user, numbers, base_url), True


def check_numbers(wanted: list[str]) -> None:
    """Extension numbers a directory sends: each one's form, none twice."""
    for number in wanted:
        try:
            ExtensionCreate(number=number)
        except ValidationError:
            raise InvalidValue(
                f"{AGENT_EXTENSIONS}: {number!r} is not an extension number (2 to 4 digits)"
            ) from None
    if len(set(wanted)) != len(wanted):
        raise InvalidValue(f"{AGENT_EXTENSIONS}: a number is listed twice")


async def _set_extensions(
    session: AsyncSession, *, tenant: Tenant, user_id: uuid.UUID, held: list[str], wanted: list[str]
) -> list[str]:
    """Makes the agent's extension numbers `wanted` (it holds `held`), removing and adding each
    as the console does, with its events; answers them in order."""
    check_numbers(wanted)
    try:
        for number in held:
            if number not in wanted:
                await extensions.remove_extension(
                    session, tenant_id=tenant.id, user_id=user_id, number=number
                )
        for number in wanted:
            if number not in held:
                await extensions.add_extension(
                    session, tenant=tenant, user_id=user_id, number=number
                )
    except AppError as error:
        raise refused(error) from None
    return sorted(wanted)


async def _set_user_name(session: AsyncSession, user: User, user_name: str) -> None:
    try:
        await user_record.set_user_name(session, user=user, user_name=user_name)
    except AppError as error:
        raise refused(error) from None


async def require(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: str, for_update: bool = False
) -> TenantUser:
    try:
        parsed = uuid.UUID(user_id)
    except ValueError:
        raise ResourceNotFound(f"There is no user {user_id}.") from None
    try:
        return await user_record.require_user(
            session, tenant_id=tenant_id, user_id=parsed, for_update=for_update
        )
    except UserNotFound as error:
        raise ResourceNotFound(error.text()) from None


def check_version(if_match: str | None, version: int) -> None:
    """SCIM's If-Match (RFC 7644 §3.14): the version the directory read, weak or strong."""
    if if_match is None:
        return
    tags = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in tags or f'"{version}"' in tags:
        return
    raise VersionChanged(f"The user is now at version {version_tag(version)}.")


async def _apply(session: AsyncSession, *, current: TenantUser, fields: _Fields) -> None:
    try:
        await users.update_user(session, current=current, data=_update(fields))
    except AppError as error:
        raise refused(error) from None
    await _set_user_name(session, current.user, fields.user_name)
    if fields.extensions is not None:
        held = await _numbers(session, tenant_id=current.tenant.id, users=[current.user])
        await _set_extensions(
            session,
            tenant=current.tenant,
            user_id=current.user.id,
            held=held[current.user.id],
            wanted=fields.extensions,
        )


async def replace(session: AsyncSession, *, current: TenantUser, user: Any, base_url: str) -> Shown:
    """PUT: the agent becomes what the directory sends (`user`, as `read_user` reads it; what
    it leaves out is cleared)."""
    fields = fields_of(user, current=current.user)
    await _apply(session, current=current, fields=fields)
    return await show(session, user=current.user, base_url=base_url)


def read_patch(body: Any) -> Any:
    """The directory's PATCH operations, as scim2-models reads them."""
    if not isinstance(body, dict):
        raise InvalidSyntax("the body is not a JSON object")
    try:
        return PatchOp[ScimUser].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    except ValidationError as error:
        raise InvalidValue(first_error(error)) from None
    except Exception as error:  # scim2-models' SCIMException: its scimType and detail
        raise _patch_refused(error) from None


async def patch(
    session: AsyncSession, *, current: TenantUser, operations: Any, base_url: str
) -> Shown:
    """PATCH: add, replace and remove (RFC 7644 §3.5.2, as `read_patch` reads them) applied by
    scim2-models to the agent as SCIM shows it, and the result kept as a replace would keep it."""
    shown = await show(session, user=current.user, base_url=base_url)
    resource = ScimUser.model_validate(shown.resource, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    try:
        operations.patch(resource)
    except ValidationError as error:
        raise InvalidValue(first_error(error)) from None
    except Exception as error:  # scim2-models' SCIMException: its scimType and detail
        raise _patch_refused(error) from None
    fields = fields_of(resource, current=current.user)
    # The patched agent is the whole agent: numbers it no longer has were removed.
    fields = dataclasses.replace(fields, extensions=fields.extensions or [])
    await _apply(session, current=current, fields=fields)
    return await show(session, user=current.user, base_url=base_url)


def _patch_refused(error: Exception) -> ScimError:
    scim_type = getattr(error, "scim_type", None)
    detail = getattr(error, "detail", None) or str(error)
    return InvalidValue(str(detail), scim_type=str(scim_type) if scim_type else None)


async def delete(session: AsyncSession, *, current: TenantUser) -> None:
    """As `DELETE /v1/users/{id}`: the agent with its devices and extensions; the edges forget
    the devices."""
    await users.delete_user(session, current=current)


async def list_users(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    filter: str | None,
    start_index: int,
    count: int,
    base_url: str,
    shape: ResponseParameters[Any] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    where = repository.where_of(filter) if filter else None
    found, total = await repository.list_users(
        session, tenant_id=tenant_id, where=where, offset=start_index - 1, limit=count
    )
    numbers = await _numbers(session, tenant_id=tenant_id, users=found)
    return [_present(user, numbers[user.id], base_url, shape).resource for user in found], total
