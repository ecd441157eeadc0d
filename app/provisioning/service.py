"""Provisioning: IP phones fetch their files with the tenant's provisioning credentials from its
allowed networks, softphones scan a QR code; every fetch is recorded, served or refused (the
refusals of requests that proved nothing counted per address and minute)."""

import base64
import hashlib
import io
import ipaddress
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import segno
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.throttle import FailedAuthThrottle
from app.clock import utcnow
from app.crypto import PasswordCipher, generate_password
from app.db.conflicts import flush_or_conflict
from app.devices import service as devices
from app.devices.events import device_change
from app.devices.models import Device, DeviceKind
from app.devices.service import TenantDevice
from app.errors import AppError, Code, Conflict, InvalidInput, TooManyRequests
from app.extensions.repository import list_user_extensions as user_extensions
from app.outbox import record as outbox
from app.provisioning import files, httpauth, repository
from app.provisioning.exceptions import (
    LinkGone,
    NoPhoneTransport,
    ProvisioningFileNotFound,
    ProvisioningForbidden,
    ProvisioningNotEnabled,
    ProvisioningUnauthorized,
)
from app.provisioning.files import PhoneAccount, RenderedFile
from app.provisioning.models import (
    FetchOutcome,
    ProvisioningAccess,
    ProvisioningFetch,
    ProvisioningLink,
)
from app.provisioning.schemas import (
    DeviceProvisioningOut,
    FetchOut,
    ProvisioningCode,
    ProvisioningOut,
    ProvisioningUpdate,
    SoftphoneApp,
)
from app.settings import Settings
from app.tenants import repository as tenants
from app.user_record.models import User

# The transports a phone's file names, best first: signalling encrypted when the edge can.
PHONE_TRANSPORTS = ("tls", "tcp", "udp")
LAST_FETCHES = 10
LINK_FILENAME = "linphone.xml"
# Refusals of requests that proved nothing: counted, not listed one by one (see _record).
COUNTED_OUTCOMES = frozenset(
    {
        FetchOutcome.not_enabled,
        FetchOutcome.address_refused,
        FetchOutcome.throttled,
        FetchOutcome.unauthorized,
        FetchOutcome.link_used,
        FetchOutcome.link_expired,
    }
)
# Names the rows that count refusals: one per tenant, address, outcome, device and minute.
_COUNTED_FETCH_IDS = uuid.UUID("0f6c2a53-2b5e-4b8e-a0d4-5b1f6b9c3e71")


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What a phone's request says about itself."""

    client_address: str
    user_agent: str | None
    authorization: str | None
    method: str
    uri: str


@dataclass(frozen=True, slots=True)
class FetchAnswer:
    """A file, or the refusal to answer instead (recorded all the same, so not raised)."""

    file: RenderedFile | None = None
    refusal: AppError | None = None
    challenges: list[str] = field(default_factory=list)


def files_url(base_url: str, tenant_id: uuid.UUID) -> str:
    return f"{base_url}/provision/{tenant_id}/"


def nonce_key(settings: Settings) -> bytes:
    return hashlib.sha256(
        b"antring-provisioning-nonces:" + settings.secret_key.get_secret_value().encode()
    ).digest()


def _printable(value: str, length: int) -> str:
    # What a client sent, kept as text PostgreSQL can store and a log can show.
    return "".join(c for c in value if unicodedata.category(c) != "Cc")[:length]


async def _record(
    session: AsyncSession,
    request: FetchRequest,
    *,
    tenant_id: uuid.UUID,
    filename: str,
    outcome: FetchOutcome,
    status_code: int,
    mac: str | None = None,
    device_id: uuid.UUID | None = None,
) -> None:
    """A served fetch, or a refused one once proven who asked, is a row of its own. The other
    refusals cost no more than one row per tenant, client address, outcome, device and minute,
    which counts them, however many a client sends and whatever file names and user agents it
    makes up; the row's id is made from those (so every replica counts on the same row)."""
    now = utcnow()
    client_address = _printable(request.client_address, 45)
    values: dict[str, object] = {
        "tenant_id": tenant_id,
        "device_id": device_id,
        "mac": mac,
        "filename": _printable(filename, 255),
        "client_address": client_address,
        "user_agent": _printable(request.user_agent, 300) if request.user_agent else None,
        "outcome": outcome,
        "status_code": status_code,
        "fetched_at": now,
        "last_fetched_at": now,
    }
    if outcome not in COUNTED_OUTCOMES:
        await repository.add_fetch(session, ProvisioningFetch(**values))
        return
    minute = now.replace(second=0, microsecond=0)
    row_name = f"{tenant_id}|{client_address}|{outcome.value}|{device_id}|{minute.isoformat()}"
    values["id"] = uuid.uuid5(_COUNTED_FETCH_IDS, row_name)
    await repository.count_fetch(session, values)


def _address_allowed(address: str, networks: list[str]) -> bool:
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(network) for network in networks)


async def phone_account(
    session: AsyncSession,
    cipher: PasswordCipher,
    settings: Settings,
    *,
    current: TenantDevice,
    user: User,
) -> PhoneAccount:
    """A file's values: the device's ip_phone view (what the edge serves), and its user's."""
    view = (
        await devices.device_config(session, cipher, settings, current=current, with_password=False)
    ).ip_phone
    transport = next((t for t in PHONE_TRANSPORTS if t in view.transports), None)
    if transport is None:
        raise NoPhoneTransport()
    port = getattr(view.ports, transport)
    # The user's first extension, as the Users table lists them (by number).
    extensions = await user_extensions(session, tenant_id=current.tenant.id, user_ids=[user.id])
    label = extensions[0].number if extensions else None
    return PhoneAccount(
        username=view.username,
        auth_id=view.auth_id,
        password=cipher.decrypt(current.device.password_encrypted),
        ha1=current.device.ha1,
        domain=view.domain,
        registrar=view.registrar,
        outbound_proxy=view.outbound_proxy,
        transport=transport,
        port=port,
        expires_seconds=settings.sip_registration_expires_seconds,
        display_name=view.display_name,
        label=label or view.username,
        codecs=tuple(settings.sip_codecs),
        auto_answer=user.auto_answer,
    )


async def fetch_file(
    session: AsyncSession,
    cipher: PasswordCipher,
    settings: Settings,
    throttle: FailedAuthThrottle,
    *,
    tenant_id: uuid.UUID,
    filename: str,
    request: FetchRequest,
) -> FetchAnswer:
    """A phone's file. Checked in this order: the address, the credentials, the file name, the
    MAC; each refusal is recorded with what was asked (and the device its MAC names, if any)."""
    tenant = await tenants.get_tenant(session, tenant_id=tenant_id)
    if tenant is None:
        # No tenant to record it under; the answer is the one an unknown file gets.
        return FetchAnswer(refusal=ProvisioningFileNotFound(Code.provisioning_file_unknown))

    asked = files.parse_filename(filename)
    mac = asked.mac if asked else None

    async def refuse(
        outcome: FetchOutcome, error: AppError, *, challenges: list[str] | None = None
    ) -> FetchAnswer:
        # The device shows its refused fetches too: why a phone did not set itself up.
        device_id = (
            await repository.device_id_by_mac(session, tenant_id=tenant_id, mac=mac)
            if mac
            else None
        )
        await _record(
            session,
            request,
            tenant_id=tenant_id,
            filename=filename,
            outcome=outcome,
            status_code=error.status_code,
            mac=mac,
            device_id=device_id,
        )
        return FetchAnswer(refusal=error, challenges=challenges or [])

    access = await repository.get_access(session, tenant_id=tenant_id)
    if access is None:
        return await refuse(
            FetchOutcome.not_enabled,
            ProvisioningForbidden(Code.provisioning_not_enabled),
        )
    if not _address_allowed(request.client_address, access.allowed_networks):
        return await refuse(
            FetchOutcome.address_refused,
            ProvisioningForbidden(Code.provisioning_address_refused),
        )
    key = nonce_key(settings)
    # A nonce serves one client, for one tenant's files.
    bound_to = f"{tenant_id} {request.client_address}"
    retry_after = await throttle.retry_after(request.client_address)
    if retry_after is not None:
        return await refuse(
            FetchOutcome.throttled,
            TooManyRequests(Code.provisioning_throttled, retry_after=retry_after),
        )
    verdict = httpauth.check(
        request.authorization,
        username=access.username,
        secret=cipher.decrypt(access.secret_encrypted),
        method=request.method,
        uri=request.uri,
        nonce_key=key,
        bound_to=bound_to,
    )
    if verdict.use is not None and not await repository.claim_nonce(
        session,
        tenant_id=tenant_id,
        nonce=verdict.use.nonce,
        count=verdict.use.count,
        expires_at=datetime.fromtimestamp(verdict.use.expires_at, UTC),
    ):
        # This response was seen before: a replay, or a client that sent its requests out of
        # order. Either way no password was guessed, and a client that knows it asks again.
        verdict = httpauth.Verdict(ok=False, stale=True)
    if not verdict.ok:
        if not verdict.stale:
            await throttle.failed(request.client_address)
        return await refuse(
            FetchOutcome.unauthorized,
            ProvisioningUnauthorized(Code.provisioning_credentials_needed),
            challenges=httpauth.challenges(key, bound_to=bound_to, stale=verdict.stale),
        )
    if asked is None:
        return await refuse(
            FetchOutcome.unknown_file, ProvisioningFileNotFound(Code.provisioning_file_not_asked)
        )
    if asked.mac is None:
        (family,) = asked.families
        file = files.render_common_file(family)
        await _record(
            session,
            request,
            tenant_id=tenant_id,
            filename=filename,
            outcome=FetchOutcome.served,
            status_code=200,
        )
        return FetchAnswer(file=file)
    found = await repository.device_by_mac(session, tenant_id=tenant_id, mac=asked.mac)
    if found is None:
        return await refuse(
            FetchOutcome.unknown_mac,
            ProvisioningFileNotFound(Code.provisioning_mac_unknown),
        )
    device, user = found
    if device.kind != DeviceKind.ip_phone or device.model not in asked.families:
        return await refuse(
            FetchOutcome.unknown_file,
            ProvisioningFileNotFound(Code.provisioning_model_mismatch),
        )
    assert device.model is not None
    if not (device.enabled and user.enabled):
        return await refuse(
            FetchOutcome.device_disabled,
            ProvisioningFileNotFound(Code.provisioning_device_disabled),
        )
    account = await phone_account(
        session, cipher, settings, current=TenantDevice(device=device, tenant=tenant), user=user
    )
    await _record(
        session,
        request,
        tenant_id=tenant_id,
        filename=filename,
        outcome=FetchOutcome.served,
        status_code=200,
        mac=asked.mac,
        device_id=device.id,
    )
    return FetchAnswer(file=files.render_phone_file(device.model, account))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_link(
    session: AsyncSession,
    cipher: PasswordCipher,
    settings: Settings,
    *,
    token: str,
    request: FetchRequest,
) -> FetchAnswer:
    """A softphone's one-time link: its file the first time, 410 after that or once expired."""
    token_hash = _token_hash(token)
    used = await repository.use_link(session, token_hash=token_hash, now=utcnow())
    if used is None:
        link = await repository.find_link(session, token_hash=token_hash)
        if link is None:
            return FetchAnswer(refusal=ProvisioningFileNotFound(Code.provisioning_link_unknown))
        outcome = FetchOutcome.link_used if link.used_at else FetchOutcome.link_expired
        await _record(
            session,
            request,
            tenant_id=link.tenant_id,
            device_id=link.device_id,
            filename=LINK_FILENAME,
            outcome=outcome,
            status_code=410,
        )
        return FetchAnswer(refusal=LinkGone())
    tenant_id, device_id = used
    current = await devices.require_device(session, tenant_id=tenant_id, device_id=device_id)
    user = await repository.get_user(session, tenant_id=tenant_id, user_id=current.device.user_id)
    if not (current.device.enabled and user.enabled):
        await _record(
            session,
            request,
            tenant_id=tenant_id,
            device_id=device_id,
            filename=LINK_FILENAME,
            outcome=FetchOutcome.device_disabled,
            status_code=404,
        )
        return FetchAnswer(refusal=ProvisioningFileNotFound(Code.provisioning_device_disabled))
    account = await phone_account(session, cipher, settings, current=current, user=user)
    await _record(
        session,
        request,
        tenant_id=tenant_id,
        device_id=device_id,
        filename=LINK_FILENAME,
        outcome=FetchOutcome.served,
        status_code=200,
    )
    return FetchAnswer(file=files.render_linphone(account))


def _qr_data_uris(payload: str) -> tuple[str, str]:
    code = segno.make(payload, error="m", micro=False)
    png, svg = io.BytesIO(), io.BytesIO()
    code.save(png, kind="png", scale=8, border=4)
    code.save(svg, kind="svg", scale=8, border=4, xmldecl=False)
    return (
        "data:image/png;base64," + base64.b64encode(png.getvalue()).decode(),
        "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode(),
    )


async def create_code(
    session: AsyncSession,
    cipher: PasswordCipher,
    settings: Settings,
    *,
    current: TenantDevice,
    app: SoftphoneApp,
    base_url: str,
) -> ProvisioningCode:
    """What a softphone scans to set itself up with this device's account."""
    device, tenant = current.device, current.tenant
    expires_at = None
    if app == SoftphoneApp.linphone:
        token = secrets.token_urlsafe(32)
        expires_at = utcnow() + timedelta(minutes=settings.provisioning_link_minutes)
        session.add(
            ProvisioningLink(
                tenant_id=tenant.id,
                device_id=device.id,
                token_hash=_token_hash(token),
                expires_at=expires_at,
            )
        )
        await session.flush()
        payload = f"{base_url}/provision/links/{token}"
    elif app == SoftphoneApp.acrobits:
        cloud_id = settings.provisioning_acrobits_cloud_id
        if cloud_id is None:
            raise InvalidInput("body.app", Code.acrobits_cloud_id_missing)
        # One Cloud ID serves every tenant: the user name carries the tenant's domain.
        username = quote(f"{device.name}@{tenant.sip_domain}", safe="")
        password = quote(cipher.decrypt(device.password_encrypted), safe="")
        payload = f"csc:{username}:{password}@{cloud_id}"
    else:
        config = await devices.device_config(
            session, cipher, settings, current=current, with_password=True
        )
        payload = config.web.model_dump_json()
    await outbox.record_change(
        session,
        device_change(
            "device.provisioning_code_created",
            tenant_id=tenant.id,
            device_id=device.id,
            user_id=device.user_id,
            name=device.name,
            data={"app": app.value, "expires_at": expires_at.isoformat() if expires_at else None},
        ),
    )
    png, svg = _qr_data_uris(payload)
    return ProvisioningCode(app=app, payload=payload, expires_at=expires_at, png=png, svg=svg)


def _present(
    access: ProvisioningAccess | None, *, base_url: str, tenant_id: uuid.UUID
) -> ProvisioningOut:
    return ProvisioningOut(
        enabled=access is not None,
        username=access.username if access else None,
        allowed_networks=access.allowed_networks if access else [],
        files_url=files_url(base_url, tenant_id),
        secret_rotated_at=access.secret_rotated_at if access else None,
    )


async def get_provisioning(
    session: AsyncSession, *, tenant_id: uuid.UUID, base_url: str
) -> ProvisioningOut:
    access = await repository.get_access(session, tenant_id=tenant_id)
    return _present(access, base_url=base_url, tenant_id=tenant_id)


async def _record_access(
    session: AsyncSession,
    type: str,
    *,
    tenant_id: uuid.UUID,
    data: dict[str, object] | None = None,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> None:
    await outbox.record(
        session,
        type=type,
        tenant_id=tenant_id,
        resource_type="provisioning",
        resource_id=tenant_id,
        data=data,
        before=before,
        after=after,
    )


async def rotate_credentials(
    session: AsyncSession, cipher: PasswordCipher, *, tenant_id: uuid.UUID
) -> tuple[ProvisioningAccess, str]:
    """New provisioning credentials (the first ones enable provisioning); the secret is
    returned here once. Phones with the old secret are refused from now on."""
    access = await repository.get_access(session, tenant_id=tenant_id, for_update=True)
    secret = generate_password(24)
    now = utcnow()
    if access is None:
        access = ProvisioningAccess(
            tenant_id=tenant_id,
            username=f"prov-{secrets.token_hex(4)}",
            secret_encrypted=cipher.encrypt(secret),
            allowed_networks=[],
            secret_rotated_at=now,
        )
        session.add(access)
        await flush_or_conflict(
            session,
            {"uq_provisioning_access_tenant_id": Conflict(Code.provisioning_enabled_concurrently)},
        )
        await _record_access(
            session, "provisioning.enabled", tenant_id=tenant_id, data={"username": access.username}
        )
        return access, secret
    access.secret_encrypted = cipher.encrypt(secret)
    access.secret_rotated_at = now
    await session.flush()
    await _record_access(
        session,
        "provisioning.credentials_rotated",
        tenant_id=tenant_id,
        data={"username": access.username},
    )
    return access, secret


async def update_provisioning(
    session: AsyncSession, *, tenant_id: uuid.UUID, data: ProvisioningUpdate, base_url: str
) -> ProvisioningOut:
    access = await repository.get_access(session, tenant_id=tenant_id, for_update=True)
    if access is None:
        raise ProvisioningNotEnabled(Code.provisioning_credentials_first)
    before = outbox.snapshot(access, ("allowed_networks",))
    data.apply_to(access)
    await session.flush()
    old, new = outbox.changes(before, outbox.snapshot(access, ("allowed_networks",)))
    await _record_access(
        session, "provisioning.updated", tenant_id=tenant_id, before=old, after=new
    )
    return _present(access, base_url=base_url, tenant_id=tenant_id)


async def disable_provisioning(session: AsyncSession, *, tenant_id: uuid.UUID) -> None:
    access = await repository.get_access(session, tenant_id=tenant_id, for_update=True)
    if access is None:
        raise ProvisioningNotEnabled(Code.provisioning_not_enabled)
    await session.delete(access)
    await session.flush()
    await _record_access(session, "provisioning.disabled", tenant_id=tenant_id)


def file_url(base_url: str, device: Device) -> str | None:
    if device.mac is None or device.model is None:
        return None
    return files_url(base_url, device.tenant_id) + files.filename_for(device.model, device.mac)


async def device_provisioning(
    session: AsyncSession, *, current: TenantDevice, base_url: str
) -> DeviceProvisioningOut:
    device = current.device
    fetches, _ = await repository.list_fetches(
        session, tenant_id=device.tenant_id, device_id=device.id, limit=LAST_FETCHES
    )
    return DeviceProvisioningOut(
        device_id=device.id,
        mac=device.mac,
        model=device.model,
        file_url=file_url(base_url, device),
        last_fetches=[FetchOut.model_validate(f) for f in fetches],
    )


async def list_fetches(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[ProvisioningFetch], int]:
    return await repository.list_fetches(session, tenant_id=tenant_id, limit=limit, offset=offset)
