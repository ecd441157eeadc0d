"""The operators' requests on a tenant of 1,000 agents and on one of 100,000, side by side in one
database (PostgreSQL) and through the HTTP API of one worker: the Users table's first page, a
page deep by offset and by cursor, the newest first, searches (a family name with and without
its accents, a full name without them, an e-mail, an extension), the audit trail's first page,
the registrar lookup, and the export of every agent. Each request is timed 15 times (median and
p90) and each figure of the large tenant is given as its growth over the small one's.

The tenants are seeded in bulk with what the API would have made: Vietnamese names, half with
an e-mail, two devices each (web and softphone), one in ten with a minute limit, 9 % with an
extension, and three audit entries per agent. With --before DIR, a server of another checkout
serves the same database beside this one's, the two asked in turn, and each figure is also given
as this checkout's over the other's. With --import N, the server's memory is read before and
after importing N agents through `POST /v1/users/import` and reading the job's report.

    .venv/bin/python -m bench.scale [--small 1000] [--large 100000] [--before DIR] [--import N]
"""

import argparse
import asyncio
import base64
import contextlib
import gc
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from app.clock import utcnow
from app.crypto import PasswordCipher, generate_password, ha1_md5, ha1_sha256
from app.db.engine import create_engine
from app.devices.models import Device, DeviceKind
from app.devices.service import name_columns as device_name_columns
from app.extensions.models import Extension
from app.names import fold, name_columns
from app.outbox.models import AuditEntry
from app.pagination import encode_cursor
from app.settings import Settings
from app.tenants.models import Tenant as TenantRow
from app.user_record.models import User
from bench.run import DEFAULT_DATABASE_URL, bench_settings, progress
from bench.seed import drop_database, extension_numbers, recreate_database, settle_database
from bench.server import Server, run_cli, service_env
from bench.users_table import _FAMILY, _GIVEN, _MIDDLE, _import

THIS = "this checkout"
BEFORE = "before"
REPEAT = 15
EXPORTS = 3
_BATCH = 5_000
LIMITED_EVERY = 10
EXTENSION_EVERY = 11
# The other searches look for the first agent's full name and e-mail, and an extension.
FAMILY = "nguyễn"


@dataclass(frozen=True, slots=True)
class Tenant:
    label: str
    id: str
    domain: str
    agents: int
    admin: str
    call_control: str
    # What the requests look for: a deep cursor, the first agent's name and e-mail, an
    # extension, a device's SIP user name.
    cursor: str
    full_name: str
    email: str
    extension: str
    username: str


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"


async def _seed(settings: Settings, *, tenant_id: uuid.UUID, domain: str, count: int) -> None:
    """`count` agents as the API would have made them, in bulk."""
    rng = random.Random(count)
    cipher = PasswordCipher(settings.secret_key.get_secret_value())
    password = generate_password()
    encrypted = cipher.encrypt(password)
    engine = create_engine(settings, bounded=False)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            emergency = await conn.scalar(
                select(TenantRow.emergency_numbers).where(TenantRow.id == tenant_id)
            )
            numbers = extension_numbers(emergency or [])
            users: list[dict[str, Any]] = []
            devices: list[dict[str, Any]] = []
            extensions: list[dict[str, Any]] = []
            entries: list[dict[str, Any]] = []
            for index in range(count):
                user_id = uuid.uuid4()
                display_name = _name(rng)
                email = f"agent{index:06d}@{domain}" if index % 2 == 0 else None
                # Most agents come from an HR system's import, with its reference.
                ref = f"emp-{index:06d}" if index % 10 else None
                created = now - timedelta(seconds=count - index)
                names = name_columns(display_name, email)
                # What refresh_search_text makes of the user's words, devices and extension.
                search_text = str(names["search_key"])
                slug = fold(display_name).replace(" ", "-")
                for kind, suffix in ((DeviceKind.web, ""), (DeviceKind.softphone, "-sp")):
                    name = f"{slug}-{index:06d}{suffix}"
                    device_names = device_name_columns(name)
                    search_text += device_names["search_key"]
                    devices.append(
                        {
                            "tenant_id": tenant_id,
                            "user_id": user_id,
                            **device_names,
                            "kind": kind,
                            "password_encrypted": encrypted,
                            "ha1": ha1_md5(name, domain, password),
                            "ha1_sha256": ha1_sha256(name, domain, password),
                        }
                    )
                number = next(numbers, None) if index % EXTENSION_EVERY == 0 else None
                if number is not None:
                    search_text += f" {number}"
                    extensions.append(
                        {"tenant_id": tenant_id, "user_id": user_id, "number": number}
                    )
                users.append(
                    {
                        "id": user_id,
                        "tenant_id": tenant_id,
                        "display_name": display_name,
                        "email": email,
                        "external_ref": ref,
                        **names,
                        "search_text": search_text,
                        "limit_minutes": 600 if index % LIMITED_EVERY == 0 else None,
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                for action in ("user.created", "device.created", "device.created"):
                    entries.append(
                        {
                            "tenant_id": tenant_id,
                            "occurred_at": created,
                            "action": action,
                            "resource_type": action.split(".")[0],
                            "resource_id": str(user_id),
                            "user_id": user_id,
                        }
                    )
                if len(users) == _BATCH or index == count - 1:
                    for model, rows in (
                        (User, users),
                        (Device, devices),
                        (Extension, extensions),
                        (AuditEntry, entries),
                    ):
                        if rows:
                            await conn.execute(insert(model), rows)
                    users, devices, extensions, entries = [], [], [], []
    finally:
        await engine.dispose()


async def _probes(settings: Settings, tenant_id: uuid.UUID, agents: int) -> dict[str, str]:
    """What the requests look for, read back from the seeded rows."""
    engine = create_engine(settings, bounded=False)
    try:
        async with engine.connect() as conn:
            first = (
                await conn.execute(
                    select(User.display_name, User.email)
                    .where(User.tenant_id == tenant_id, User.email.is_not(None))
                    .limit(1)
                )
            ).one()
            # The agent a page 60 from the end starts after, in the table's default order.
            deep = (
                await conn.execute(
                    select(User.name_sort, User.id)
                    .where(User.tenant_id == tenant_id)
                    .order_by(User.name_sort, User.id)
                    .offset(max(agents - 61, 0))
                    .limit(1)
                )
            ).one()
            number = await conn.scalar(
                select(Extension.number).where(Extension.tenant_id == tenant_id).limit(1)
            )
            username = await conn.scalar(
                select(Device.name).where(Device.tenant_id == tenant_id).limit(1)
            )
    finally:
        await engine.dispose()
    cursor = encode_cursor(
        ["display_name", base64.urlsafe_b64encode(deep.name_sort).decode(), str(deep.id)]
    )
    return {
        "cursor": cursor,
        "full_name": fold(first.display_name),
        "email": first.email,
        "extension": number or "",
        "username": username or "",
    }


def _new_tenant(env: dict[str, str], label: str) -> tuple[str, str, dict[str, str]]:
    """A tenant made through the CLI, with an admin's and a call-control key."""
    domain = f"{label}.scale.bench.sip.test"
    tenant_id = run_cli(env, "tenant", "create", "--name", label.title(), "--sip-domain", domain)
    keys = {
        role: run_cli(
            env, "api-key", "create", "--tenant", tenant_id, "--role", role, "--name", role
        )
        for role in ("admin", "call_control")
    }
    return tenant_id, domain, keys


def _tenant(env: dict[str, str], settings: Settings, label: str, agents: int) -> Tenant:
    tenant_id, domain, keys = _new_tenant(env, label)
    started = time.monotonic()
    asyncio.run(_seed(settings, tenant_id=uuid.UUID(tenant_id), domain=domain, count=agents))
    progress(f"{label}: {agents:,} agents seeded in {time.monotonic() - started:.1f} s")
    probes = asyncio.run(_probes(settings, uuid.UUID(tenant_id), agents))
    return Tenant(
        label=label,
        id=tenant_id,
        domain=domain,
        agents=agents,
        admin=keys["admin"],
        call_control=keys["call_control"],
        **probes,
    )


def _requests(tenant: Tenant) -> dict[str, tuple[str, str]]:
    """Each request's path and the key it is made with."""

    def users(**params: object) -> str:
        return "/v1/users?" + urllib.parse.urlencode({"limit": 50, **params})

    admin, cc = tenant.admin, tenant.call_control
    return {
        "Users table, first page of 50": (users(), admin),
        "a page near the end (offset)": (users(offset=max(tenant.agents - 60, 0)), admin),
        "a page near the end (cursor)": (users(cursor=tenant.cursor), admin),
        "sorted by -created_at": (users(sort="-created_at"), admin),
        f"search {FAMILY!r}": (users(search=FAMILY), admin),
        f"search {fold(FAMILY)!r}": (users(search=fold(FAMILY)), admin),
        "search a full name without accents": (users(search=tenant.full_name), admin),
        "search one e-mail": (users(search=tenant.email), admin),
        "search an extension": (users(search=tenant.extension), admin),
        "audit trail, first page": ("/v1/audit-events?limit=50", admin),
        "registrar lookup": (
            f"/v1/call-control/sip-accounts/{tenant.username}?domain={tenant.domain}",
            cc,
        ),
    }


def _timed(base_url: str, path: str, token: str) -> float:
    request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - started


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def _rss_mb(server: Server) -> float:
    with open(f"/proc/{server.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _measure(
    servers: dict[str, Server], tenants: list[Tenant], repeat: int
) -> dict[tuple[str, str, str], list[float]]:
    """Seconds of each request, per checkout and tenant; the checkouts take turns."""
    times: dict[tuple[str, str, str], list[float]] = {}
    for tenant in tenants:
        for name, (path, token) in _requests(tenant).items():
            for server in servers.values():
                for _ in range(2):  # warm: the first reads of a plan or page
                    _timed(server.base_url, path, token)
            for _ in range(repeat):
                for label, server in servers.items():
                    times.setdefault((label, tenant.label, name), []).append(
                        _timed(server.base_url, path, token)
                    )
        for label, server in servers.items():
            for _ in range(EXPORTS):
                seconds = _timed(server.base_url, "/v1/users/export?format=csv", tenant.admin)
                times.setdefault((label, tenant.label, "export (agents a second)"), []).append(
                    tenant.agents / seconds
                )
    return times


def _import_memory(server: Server, env: dict[str, str], count: int) -> tuple[float, float]:
    """The server's memory before and after importing `count` agents into a tenant of their own
    and reading the job's report."""
    from bench.users_table import agents_csv

    _, _, keys = _new_tenant(env, "imported")
    body = agents_csv(count)
    before = _rss_mb(server)
    started = time.monotonic()
    _import(server.base_url, keys["admin"], body)
    progress(f"imported {count:,} agents in {time.monotonic() - started:.1f} s")
    gc.collect()
    time.sleep(2)
    return before, _rss_mb(server)


def _print(
    times: dict[tuple[str, str, str], list[float]],
    tenants: list[Tenant],
    labels: list[str],
    repeat: int,
) -> None:
    small, large = tenants
    names = list(dict.fromkeys(name for (_, _, name) in times))
    for label in labels:
        print(f"\n{label}: medians (p90) of {repeat} requests; export: agents a second")
        print(f"| request | {small.agents:,} agents | {large.agents:,} agents | growth |")
        print("|---|---:|---:|---:|")
        for name in names:
            cells = []
            for tenant in (small, large):
                values = times[(label, tenant.label, name)]
                if "export" in name:
                    cells.append(f"{statistics.median(values):,.0f}")
                else:
                    cells.append(
                        f"{statistics.median(values) * 1000:.1f} ms ({_p90(values) * 1000:.1f})"
                    )
            growth = statistics.median(times[(label, large.label, name)]) / statistics.median(
                times[(label, small.label, name)]
            )
            if "export" in name:
                growth = 1 / growth
            print(f"| {name} | {cells[0]} | {cells[1]} | {growth:.2f}x |")
    if len(labels) == 2:
        print(f"\n{THIS} / {BEFORE} (medians; below 1 is faster; export: time per agent)")
        print("(a checkout without the Users table's cursor answers its first page instead)")
        print(f"| request | {small.agents:,} agents | {large.agents:,} agents |")
        print("|---|---:|---:|")
        for name in names:
            ratios = []
            for tenant in (small, large):
                this = statistics.median(times[(THIS, tenant.label, name)])
                before = statistics.median(times[(BEFORE, tenant.label, name)])
                ratio = this / before
                ratios.append(1 / ratio if "export" in name else ratio)
            print(f"| {name} | {ratios[0]:.2f} | {ratios[1]:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--before", type=Path, help="another checkout, served beside this one")
    parser.add_argument("--import", dest="imported", type=int, default=0, metavar="N")
    parser.add_argument(
        "--database-url",
        default=make_url(DEFAULT_DATABASE_URL)
        .set(database="antring_bench_scale")
        .render_as_string(hide_password=False),
    )
    args = parser.parse_args(argv)
    env = service_env(args.database_url)
    settings = bench_settings(args.database_url)
    asyncio.run(recreate_database(args.database_url))
    logs = Path(tempfile.mkdtemp(prefix="antring-scale-"))
    try:
        run_cli(env, "migrate")
        tenants = [
            _tenant(env, settings, "small", args.small),
            _tenant(env, settings, "large", args.large),
        ]
        asyncio.run(settle_database(args.database_url))
        codes: dict[str, str | None] = {THIS: None}
        if args.before is not None:
            codes = {BEFORE: str(args.before.resolve()), THIS: None}
        with contextlib.ExitStack() as stack:
            servers = {}
            for label, code in codes.items():
                server_env = dict(env)
                if code is not None:
                    server_env["PYTHONPATH"] = code
                servers[label] = stack.enter_context(
                    Server(env=server_env, workers=1, log_path=logs / f"{label}.log")
                )
            times = _measure(servers, tenants, args.repeat)
            memory = {label: _rss_mb(server) for label, server in servers.items()}
            imported = _import_memory(servers[THIS], env, args.imported) if args.imported else None
        _print(times, tenants, list(codes), args.repeat)
        print()
        for label, mb in memory.items():
            print(f"{label}: server memory after the run {mb:.0f} MB")
        if imported is not None:
            before, after = imported
            print(
                f"{THIS}: server memory {before:.0f} MB before importing {args.imported:,} "
                f"agents, {after:.0f} MB after (+{after - before:.0f} MB)"
            )
    finally:
        asyncio.run(drop_database(args.database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
