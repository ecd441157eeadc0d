"""The `antring` command: migrations, tenants, API keys, jobs and the server."""

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Role
from app.db.session import Database
from app.settings import Settings, get_settings


def _alembic_ini() -> Path:
    # Next to the package in a checkout; the working directory for an installed package.
    beside = Path(__file__).resolve().parent.parent / "alembic.ini"
    return beside if beside.exists() else Path.cwd() / "alembic.ini"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(_alembic_ini()))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings.database_url), revision)


async def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[str]]) -> str:
    """Runs `work` in one unit of work on the configured database; returns what it says."""
    db = Database(settings)
    try:
        async with db.session_scope() as session:
            return await work(session)
    finally:
        await db.dispose()


async def _create_tenant(settings: Settings, args: argparse.Namespace) -> str:
    from app.tenants.schemas import TenantCreate
    from app.tenants.service import create_tenant

    data = TenantCreate(name=args.name, sip_domain=args.sip_domain, timezone=args.timezone)

    async def work(session: AsyncSession) -> str:
        return str((await create_tenant(session, data=data)).id)

    return await _with_session(settings, work)


async def _create_key(settings: Settings, args: argparse.Namespace) -> str:
    from app.auth.service import create_api_key

    async def work(session: AsyncSession) -> str:
        _, secret = await create_api_key(
            session, tenant_id=args.tenant, role=Role(args.role), name=args.name
        )
        return secret

    return await _with_session(settings, work)


async def _revoke_key(settings: Settings, args: argparse.Namespace) -> str:
    from app.auth.service import revoke_api_key

    async def work(session: AsyncSession) -> str:
        await revoke_api_key(session, None, tenant_id=args.tenant, key_id=args.key_id)
        return f"revoked {args.key_id}"

    return await _with_session(settings, work)


async def _list_jobs(_settings: Settings, _args: argparse.Namespace) -> str:
    from app.jobs.registry import JOBS

    return "\n".join(f"{name}\t{job.description}" for name, job in JOBS.items())


async def _run_job(settings: Settings, args: argparse.Namespace) -> str:
    from app.jobs.registry import run_job

    db = Database(settings)
    try:
        return f"{args.name}: {await run_job(db, args.name)}"
    finally:
        await db.dispose()


def _migrate(settings: Settings, args: argparse.Namespace) -> str:
    migrate(settings, args.revision)
    return ""


# Every command that works on the database, by (command, action).
# Alembic runs its own event loop: migrate is the one command that is not a coroutine.
Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, str] | str]
COMMANDS: dict[tuple[str, str | None], Command] = {
    ("migrate", None): _migrate,
    ("tenant", "create"): _create_tenant,
    ("api-key", "create"): _create_key,
    ("api-key", "revoke"): _revoke_key,
    ("jobs", "list"): _list_jobs,
    ("jobs", "run"): _run_job,
}


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=get_settings().log_level.lower(),
        access_log=args.access_log,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="antring", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="Apply database migrations (to head by default).")
    p.add_argument("revision", nargs="?", default="head")

    p = sub.add_parser("serve", help="Run the HTTP API.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-access-log", dest="access_log", action="store_false")

    tenant = sub.add_parser("tenant", help="Manage tenants.").add_subparsers(
        dest="action", required=True
    )
    p = tenant.add_parser("create", help="Create a tenant; prints its id.")
    p.add_argument("--name", required=True)
    p.add_argument("--sip-domain", required=True)
    p.add_argument("--timezone", default="Asia/Ho_Chi_Minh")

    key = sub.add_parser("api-key", help="Manage API keys.").add_subparsers(
        dest="action", required=True
    )
    p = key.add_parser("create", help="Create a key; prints only the key, shown this once.")
    owner = p.add_mutually_exclusive_group(required=True)
    owner.add_argument("--tenant", type=uuid.UUID, help="The tenant the key belongs to.")
    owner.add_argument(
        "--platform", action="store_true", help="A platform key (acts on any tenant)."
    )
    p.add_argument("--role", choices=[r.value for r in Role], default=Role.admin.value)
    p.add_argument("--name", required=True)
    p = key.add_parser("revoke", help="Revoke a key by its id.")
    p.add_argument("key_id", type=uuid.UUID)
    p.add_argument("--tenant", type=uuid.UUID, help="The key's tenant (omit for a platform key).")
    jobs = sub.add_parser("jobs", help="Scheduled jobs.").add_subparsers(
        dest="action", required=True
    )
    jobs.add_parser("list", help="List the jobs.")
    p = jobs.add_parser("run", help="Run a job now (jobs are idempotent).")
    p.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        _serve(args)
        return 0
    from app.errors import AppError

    command = COMMANDS[(args.command, getattr(args, "action", None))]
    try:
        said = command(get_settings(), args)
        if not isinstance(said, str):
            said = asyncio.run(said)
    except AppError as exc:
        print(exc.detail or exc.title, file=sys.stderr)
        return 2
    if said:
        print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main())
