"""The `antring` command: migrations, tenants, API keys, users' import and export, jobs and the
server."""

import argparse
import asyncio
import gc
import logging
import os
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, ValidationError
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Role
from app.db.errors import database_unavailable
from app.db.session import Database
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    from alembic.config import Config

# Each command imports the domains, the importer, uvicorn or tqdm it needs inside its function:
# imported here, every `antring` run (`--help`, `tenant list`) would load them all first,
# about 2.9 s instead of about 1.3 s on a small machine. Alembic too: `antring serve` runs in
# this process, and a server that never migrates would hold its 10 MB for nothing.


def _alembic_ini() -> Path:
    # Next to the package in a checkout; the working directory for an installed package.
    beside = Path(__file__).resolve().parent.parent / "alembic.ini"
    return beside if beside.exists() else Path.cwd() / "alembic.ini"


def alembic_config(database_url: str | None = None) -> "Config":
    from alembic.config import Config

    config = Config(str(_alembic_ini()))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def migrate(settings: Settings, revision: str = "head") -> None:
    """Upgrades the database. Alembic's progress goes to stdout, so that a failure is the one
    line on stderr."""
    from alembic import command

    config = alembic_config(settings.database_url)
    config.attributes["configure_logging"] = False
    progress = logging.StreamHandler(sys.stdout)
    progress.setFormatter(logging.Formatter("%(levelname)-5.5s [%(name)s] %(message)s"))
    alembic_log = logging.getLogger("alembic")
    alembic_log.setLevel(logging.INFO)
    alembic_log.addHandler(progress)
    try:
        command.upgrade(config, revision)
    finally:
        alembic_log.removeHandler(progress)


async def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[str]]) -> str:
    """Runs `work` in one unit of work on the configured database; returns what it says."""
    db = Database(settings)
    try:
        async with db.session_scope() as session:
            return await work(session)
    finally:
        await db.dispose()


def _line(*fields: object) -> str:
    return "\t".join(str(field) for field in fields)


async def _create_tenant(settings: Settings, args: argparse.Namespace) -> str:
    from app.tenants.schemas import TenantCreate
    from app.tenants.service import create_tenant

    data = TenantCreate(name=args.name, sip_domain=args.sip_domain, timezone=args.timezone)

    async def work(session: AsyncSession) -> str:
        return str((await create_tenant(session, data=data)).id)

    return await _with_session(settings, work)


async def _list_tenants(settings: Settings, _args: argparse.Namespace) -> str:
    from app.tenants.service import list_tenants

    async def work(session: AsyncSession) -> str:
        lines: list[str] = []
        while True:
            page, total = await list_tenants(session, limit=500, offset=len(lines))
            lines += [_line(t.id, t.sip_domain, t.name, t.timezone) for t in page]
            if not page or len(lines) >= total:
                return "\n".join(lines)

    return await _with_session(settings, work)


async def _create_key(settings: Settings, args: argparse.Namespace) -> str:
    from app.auth.schemas import ApiKeyCreate
    from app.auth.service import create_api_key

    data = ApiKeyCreate(name=args.name, role=Role(args.role))

    async def work(session: AsyncSession) -> str:
        _, secret = await create_api_key(
            session, tenant_id=args.tenant, role=data.role, name=data.name
        )
        return secret

    return await _with_session(settings, work)


async def _list_keys(settings: Settings, args: argparse.Namespace) -> str:
    from app.auth.service import list_api_keys

    async def work(session: AsyncSession) -> str:
        keys = await list_api_keys(session, tenant_id=args.tenant)
        return "\n".join(
            _line(
                k.id, k.tenant_id or "platform", k.role, k.name, k.prefix, k.created_at.isoformat()
            )
            for k in keys
        )

    return await _with_session(settings, work)


async def _revoke_key(settings: Settings, args: argparse.Namespace) -> str:
    from app.auth.service import revoke_api_key

    async def work(session: AsyncSession) -> str:
        await revoke_api_key(session, None, tenant_id=args.tenant, key_id=args.key_id)
        return f"revoked {args.key_id}"

    return await _with_session(settings, work)


async def _list_jobs(_settings: Settings, _args: argparse.Namespace) -> str:
    from app.jobs.registry import JOBS

    return "\n".join(_line(name, job.description) for name, job in JOBS.items())


async def _run_job(settings: Settings, args: argparse.Namespace) -> str:
    from app.jobs.registry import run_job

    db = Database(settings)
    try:
        return f"{args.name}: {await run_job(db, args.name)}"
    finally:
        await db.dispose()


class _Refused(Exception):
    """A command that cannot do what it was asked: its message is the one line shown."""


async def _tenant_of(session: AsyncSession, tenant_id: uuid.UUID | None) -> Any:
    """The tenant named, or the only one there is."""
    from app.tenants.service import get_tenant, list_tenants

    if tenant_id is not None:
        return await get_tenant(session, tenant_id=tenant_id)
    tenants, total = await list_tenants(session, limit=2, offset=0)
    if total != 1:
        raise _Refused(f"--tenant: there are {total} tenants; name one (see tenant list)")
    return tenants[0]


def _file_format(path: Path, given: str | None) -> Any:
    from app.imports.formats import FileFormat

    if given is not None:
        return FileFormat(given)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return FileFormat.jsonl
    return FileFormat.csv


def _opened(path: Path, mode: str) -> IO[Any]:
    """The file, open; a file that cannot be opened is the command's one line."""
    try:
        if "b" in mode:
            return path.open(mode)
        return path.open(mode, encoding="utf-8", newline="")
    except OSError as error:
        doing = "read" if "r" in mode else "written"
        raise _Refused(f"{path}: cannot be {doing} ({error.strerror})") from None


def _import_users(settings: Settings, args: argparse.Namespace) -> str:
    path = Path(args.file)
    with _opened(path, "rb") as source:
        return asyncio.run(_import_file(settings, args, source, _file_format(path, args.format)))


async def _import_file(
    settings: Settings, args: argparse.Namespace, source: IO[bytes], file_format: Any
) -> str:
    from tqdm import tqdm

    from app.crypto import PasswordCipher
    from app.imports.exceptions import ImportRejected
    from app.imports.importer import count_rows, import_users

    cipher = PasswordCipher(settings.secret_key.get_secret_value())
    total = count_rows(source, file_format)
    # As the served app does once started: the modules loaded stay out of the garbage
    # collector's full passes, which thousands of rows make frequent.
    gc.freeze()
    db = Database(settings)
    try:
        # On stderr, and only on a terminal: stdout is the report, and a failure one line.
        with tqdm(total=total, unit="rows", file=sys.stderr, disable=None, leave=False) as bar:

            async def progress(rows_done: int) -> None:
                bar.update(rows_done - bar.n)

            try:
                async with db.session_scope() as session:
                    tenant = await _tenant_of(session, args.tenant)
                    report = await import_users(
                        session,
                        cipher,
                        tenant=tenant,
                        source=source,
                        file_format=file_format,
                        dry_run=args.dry_run,
                        progress=progress,
                    )
            except ImportRejected as rejected:
                print(_problem_lines(rejected.report.problems))
                raise
    finally:
        await db.dispose()
    counts = f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}"
    if args.dry_run:
        if report.problems_total:
            print(_problem_lines(report.problems))
            problems = report.problems_total
            raise _Refused(
                f"{problems} problem{'s' if problems != 1 else ''} in the file; "
                "the dry run changed nothing"
            )
        return f"dry run: would have {counts}; nothing was changed"
    devices = [
        _line(d.row, d.external_ref or "", d.user_id, d.name, d.kind.value, d.password)
        for d in report.new_devices or []
    ]
    return "\n".join([counts, *devices])


def _problem_lines(problems: list[Any]) -> str:
    return "\n".join(_line(p.row, p.column or "", p.message) for p in problems)


def _export_users(settings: Settings, args: argparse.Namespace) -> str:
    if args.output is None:
        asyncio.run(_export(settings, args, sys.stdout))
        return ""
    with _opened(Path(args.output), "w") as out:
        asyncio.run(_export(settings, args, out))
    return ""


async def _export(settings: Settings, args: argparse.Namespace, out: IO[str]) -> None:
    from app.imports.export import export_rows
    from app.imports.formats import FileFormat, csv_header, csv_line, json_line

    file_format = FileFormat(args.format)
    db = Database(settings)
    try:
        async with db.session_scope() as session:
            tenant_id = (await _tenant_of(session, args.tenant)).id
        if file_format == FileFormat.csv:
            out.write(csv_header())
        async for row in export_rows(db.session_scope, tenant_id=tenant_id):
            out.write(csv_line(row) if file_format == FileFormat.csv else json_line(row))
        out.flush()
    finally:
        await db.dispose()


def _migrate(settings: Settings, args: argparse.Namespace) -> str:
    migrate(settings, args.revision)
    return ""


def _serve(settings: Settings, args: argparse.Namespace) -> str:
    import tempfile

    import uvicorn

    from app.observability.logs import configure_logging

    if not args.access_log:
        os.environ["ANTRING_ACCESS_LOG"] = "false"  # read by every worker's settings
        # One worker runs in this process, whose settings were read before the flag.
        get_settings.cache_clear()
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here and a scrape adds them up.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="antring-metrics-")
    configure_logging(level=settings.log_level, json_lines=settings.log_format == "json")
    if settings.metrics_port is not None:
        from app.observability.metrics import serve_metrics

        serve_metrics(settings.metrics_port, host=args.host)
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        # The service configures logging itself and writes its own access line.
        log_config=None,
        access_log=False,
        # SIP edges keep their connections between lookups: do not close them after 5 s.
        timeout_keep_alive=75,
        # Left to itself uvicorn believes X-Forwarded-For from 127.0.0.1 (or FORWARDED_ALLOW_IPS):
        # any process on the host could then pick the address the limits see.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    return ""


# Every command, by (command, action). Alembic and uvicorn run their own event loops: migrate
# and serve are the commands that are not coroutines.
Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, str] | str]
COMMANDS: dict[tuple[str, str | None], Command] = {
    ("migrate", None): _migrate,
    ("serve", None): _serve,
    ("tenant", "create"): _create_tenant,
    ("tenant", "list"): _list_tenants,
    ("api-key", "create"): _create_key,
    ("api-key", "list"): _list_keys,
    ("api-key", "revoke"): _revoke_key,
    ("jobs", "list"): _list_jobs,
    ("jobs", "run"): _run_job,
    ("users", "import"): _import_users,
    ("users", "export"): _export_users,
}


def _setting_name(field: str) -> str:
    """The environment variable a setting is read from."""
    alias = getattr(Settings.model_fields.get(field), "validation_alias", None)
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _invalid(exc: ValidationError) -> str:
    """Each bad field and what is wrong with it, never its value: a setting may be a secret."""
    in_settings = exc.title == Settings.__name__
    problems = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        # A rule of ours is a sentence; in a list of them, each ends at its semicolon.
        message = error["msg"].removeprefix("Value error, ").removesuffix(".")
        field = ".".join(str(part) for part in error["loc"])
        if field:
            name = _setting_name(field) if in_settings else "--" + field.replace("_", "-")
            message = f"{name}: {message}"
        problems.append(message)
    return ("invalid settings: " if in_settings else "") + "; ".join(problems)


def _secrets() -> list[str]:
    """What an error message must never show: the secret key, the database URL and password."""
    found = []
    for name in ("ANTRING_SECRET_KEY", "DATABASE_URL", "ANTRING_DATABASE_URL"):
        value = os.environ.get(name, "")
        found.append(value)
        if name.endswith("_URL"):
            password = urlsplit(value).password or ""
            found += [password, unquote(password)]
    return sorted({value for value in found if value}, key=len, reverse=True)


def _root_cause(exc: BaseException) -> str:
    # SQLAlchemy wraps the driver's error (twice on asyncpg): its type says what happened.
    for _ in range(5):
        if exc.__cause__ is None:
            break
        exc = exc.__cause__
    return type(exc).__name__


def _failure(exc: Exception) -> str:
    """What went wrong, in words that never carry a secret or a statement's values."""
    from app.errors import AppError

    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, AppError):
        return exc.text()
    if isinstance(exc, ValidationError):
        return _invalid(exc)
    if database_unavailable(exc):
        return f"the database cannot be reached ({_root_cause(exc)})"
    if isinstance(exc, StatementError):
        # Its text holds the statement and its parameters.
        return f"the database refused a statement ({_root_cause(exc)})"
    message = str(exc)
    for secret in _secrets():
        message = message.replace(secret, "***")
    first_line = message.strip().partition("\n")[0][:200]
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    # aiosqlite stops a connection it could not open on that connection's own thread, which may
    # then call back into an event loop that has closed meanwhile (omnilib/aiosqlite#389).
    # Nothing is lost, but its traceback would follow the command's one line.
    late_callback = (
        isinstance(args.exc_value, RuntimeError)
        and str(args.exc_value) == "Event loop is closed"
        and args.thread is not None
        and args.thread.name.endswith("(_connection_worker_thread)")
    )
    if not late_callback:
        threading.__excepthook__(args)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other failure; --help shows the usage.
        self.exit(2, f"{self.prog}: error: {message}\n")


def _version() -> str:
    try:
        return version("antring")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="antring", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"antring {_version()}", help="Print the version."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="Apply database migrations (to head by default).")
    p.add_argument("revision", nargs="?", default="head", help="The revision to upgrade to.")

    p = sub.add_parser("serve", help="Run the HTTP API.")
    p.add_argument("--host", default="127.0.0.1", help="The address to listen on.")
    p.add_argument("--port", type=int, default=8000, help="The port to listen on.")
    p.add_argument("--workers", type=int, default=1, help="How many worker processes to run.")
    p.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="Do not log every request.",
    )

    tenant = sub.add_parser("tenant", help="Manage tenants.").add_subparsers(
        dest="action", required=True
    )
    p = tenant.add_parser("create", help="Create a tenant; prints its id.")
    p.add_argument("--name", required=True, help="The company's name.")
    p.add_argument(
        "--sip-domain", required=True, help="Its SIP domain, in lower case (the digest realm)."
    )
    p.add_argument(
        "--timezone",
        default="Asia/Ho_Chi_Minh",
        help="IANA time zone in which its months start (default: %(default)s).",
    )
    tenant.add_parser(
        "list", help="List the tenants: id, SIP domain, name and time zone, tab-separated."
    )

    key = sub.add_parser("api-key", help="Manage API keys.").add_subparsers(
        dest="action", required=True
    )
    p = key.add_parser("create", help="Create a key; prints only the key, shown this once.")
    owner = p.add_mutually_exclusive_group(required=True)
    owner.add_argument("--tenant", type=uuid.UUID, help="The tenant the key belongs to.")
    owner.add_argument(
        "--platform", action="store_true", help="A platform key (acts on any tenant)."
    )
    p.add_argument(
        "--role",
        choices=[r.value for r in Role],
        default=Role.admin.value,
        help="What the key may do (default: %(default)s).",
    )
    p.add_argument("--name", required=True, help="What the key is for, to recognise it.")
    p = key.add_parser(
        "list",
        help="List keys (never the keys themselves): id, tenant, role, name, prefix, created.",
    )
    p.add_argument("--tenant", type=uuid.UUID, help="The tenant's keys (omit for platform keys).")
    p = key.add_parser("revoke", help="Revoke a key by its id.")
    p.add_argument("key_id", type=uuid.UUID, help="The key's id (see api-key list).")
    p.add_argument("--tenant", type=uuid.UUID, help="The key's tenant (omit for a platform key).")

    users = sub.add_parser("users", help="Import and export a tenant's users.").add_subparsers(
        dest="action", required=True
    )
    p = users.add_parser(
        "import",
        help="Import users, devices, extensions, limits and switches from a CSV or JSON-lines "
        "file, all or nothing; prints what it did and each new device's password (once).",
    )
    p.add_argument("file", help="The file (UTF-8 CSV, comma or semicolon; or JSON lines).")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="Check every row and change nothing; prints each problem (row, column, message).",
    )
    p.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        help="The file's format (default: jsonl for .jsonl and .ndjson files, else csv).",
    )
    p.add_argument(
        "--tenant", type=uuid.UUID, help="The tenant to import into (omit when there is one)."
    )
    p = users.add_parser(
        "export", help="Write the users in the import's columns (no passwords) to stdout."
    )
    p.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        default="csv",
        help="csv or jsonl (default: %(default)s).",
    )
    p.add_argument("--output", help="Write to this file instead of stdout.")
    p.add_argument(
        "--tenant", type=uuid.UUID, help="The tenant to export (omit when there is one)."
    )

    jobs = sub.add_parser("jobs", help="Scheduled jobs.").add_subparsers(
        dest="action", required=True
    )
    jobs.add_parser("list", help="List the jobs.")
    p = jobs.add_parser("run", help="Run a job now (jobs are idempotent).")
    p.add_argument("name", help="The job's name (see jobs list).")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs a command; every failure is one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    threading.excepthook = _thread_excepthook
    run = COMMANDS[(args.command, getattr(args, "action", None))]
    try:
        said = run(get_settings(), args)
        if not isinstance(said, str):
            said = asyncio.run(said)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print("error: " + " ".join(_failure(exc).split()), file=sys.stderr)
        return 2
    if said:
        print(said)
    return 0


if __name__ == "__main__":
    sys.exit(main())
