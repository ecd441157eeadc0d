"""The `antring` command: migrations, tenants, API keys, jobs and the server."""

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.auth.models import Role
from app.database import Database
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


async def _create_tenant(settings: Settings, args: argparse.Namespace) -> None:
    from app.tenants.schemas import TenantCreate
    from app.tenants.service import create_tenant

    data = TenantCreate(name=args.name, sip_domain=args.sip_domain, timezone=args.timezone)
    db = Database(settings)
    try:
        async with db.session_scope() as session:
            tenant = await create_tenant(session, data=data)
        print(tenant.id)
    finally:
        await db.dispose()


async def _create_key(settings: Settings, args: argparse.Namespace) -> None:
    from app.auth.service import create_api_key

    db = Database(settings)
    try:
        async with db.session_scope() as session:
            _, secret = await create_api_key(
                session, tenant_id=args.tenant, role=Role(args.role), name=args.name
            )
        print(secret)
    finally:
        await db.dispose()


async def _revoke_key(settings: Settings, args: argparse.Namespace) -> None:
    from app.auth.service import revoke_api_key

    db = Database(settings)
    try:
        async with db.session_scope() as session:
            await revoke_api_key(session, None, tenant_id=args.tenant, key_id=args.key_id)
        print(f"revoked {args.key_id}")
    finally:
        await db.dispose()


async def _run_job(settings: Settings, name: str) -> None:
    from app.jobs.registry import run_job

    db = Database(settings)
    try:
        print(f"{name}: {await run_job(db, name)}")
    finally:
        await db.dispose()


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
    settings = get_settings()
    if args.command == "migrate":
        migrate(settings, args.revision)
    elif args.command == "tenant":
        asyncio.run(_create_tenant(settings, args))
    elif args.command == "api-key" and args.action == "create":
        asyncio.run(_create_key(settings, args))
    elif args.command == "api-key":
        asyncio.run(_revoke_key(settings, args))
    elif args.command == "jobs" and args.action == "list":
        from app.jobs.registry import JOBS

        for name, job in JOBS.items():
            print(f"{name}\t{job.description}")
    elif args.command == "jobs":
        from app.jobs.registry import JobNotFound

        try:
            asyncio.run(_run_job(settings, args.name))
        except JobNotFound as exc:
            print(exc.detail, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
