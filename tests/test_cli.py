import argparse
import asyncio
import shutil
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth.models import ApiKey, Role
from app.cli import build_parser, main
from app.crypto import hash_api_key
from app.db.session import Database
from app.jobs.registry import JOBS
from app.settings import get_settings
from app.tenants.models import Tenant
from tests.helpers.api import db_rows
from tests.helpers.settings import TEST_SECRET_KEY, make_settings

UNKNOWN = uuid.UUID("0b7a3c3e-3f8e-4d5e-9c43-5e0f4c1d2a77")
SECRET = "hunter2-my-real-secret"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["migrate"],
        ["serve"],
        ["tenant", "create"],
        ["tenant", "list"],
        ["api-key", "create"],
        ["api-key", "list"],
        ["api-key", "revoke"],
        ["jobs", "list"],
        ["jobs", "run"],
        ["users", "import"],
        ["users", "export"],
    ],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args([*command, "--help"])

    assert exit.value.code == 0
    assert "usage: antring" in capsys.readouterr().out


def _actions(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, action


def test_every_option_says_what_it_is_for() -> None:
    missing = [(prog, action.dest) for prog, action in _actions(build_parser()) if not action.help]

    assert missing == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["--version"])

    assert exit.value.code == 0
    assert capsys.readouterr().out == f"antring {version('antring')}\n"


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied by each test that needs one."""
    path = tmp_path_factory.mktemp("cli") / "template.db"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
        env.setenv("ANTRING_SECRET_KEY", TEST_SECRET_KEY)
        get_settings.cache_clear()
        assert main(["migrate"]) == 0
    get_settings.cache_clear()
    return path


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The environment the command reads its settings from (read again by each test)."""
    for name in ("ANTRING_ENVIRONMENT", "ANTRING_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTRING_SECRET_KEY", TEST_SECRET_KEY)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.fixture
def cli_database(tmp_path: Path, environment: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    environment.setenv("DATABASE_URL", url)
    return url


@pytest.fixture
def migrated(cli_database: str, migrated_template: Path, tmp_path: Path) -> str:
    shutil.copy(migrated_template, tmp_path / "cli.db")
    return cli_database


def rows(url: str, statement: object) -> list[object]:
    async def read() -> list[object]:
        db = Database(make_settings(url))
        try:
            return await db_rows(db, statement)
        finally:
            await db.dispose()

    return asyncio.run(read())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Runs a command that must succeed; returns what it printed."""
    assert main(list(argv)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def assert_fails(capsys: pytest.CaptureFixture[str], argv: list[str], line: str) -> str:
    """The command fails with exit code 2 and `line` is all it says on stderr; returns what it
    printed on stdout (only migrate's progress)."""
    code = main(argv)
    out, err = capsys.readouterr()

    assert (code, err) == (2, line + "\n")
    if argv[0] != "migrate":
        assert out == ""
    return out


def test_migrate_create_a_tenant_and_manage_its_keys(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "Running upgrade" in run(capsys, "migrate")

    out = run(capsys, "tenant", "create", "--name", "Acme", "--sip-domain", "acme.sip.test")
    tenant_id = uuid.UUID(out.strip())
    out = run(
        capsys, "api-key", "create", "--tenant", str(tenant_id), "--role", "viewer", "--name", "ops"
    )
    secret = out.strip()
    platform_secret = run(capsys, "api-key", "create", "--platform", "--name", "platform").strip()

    [tenant] = rows(cli_database, select(Tenant.id, Tenant.sip_domain, Tenant.timezone))
    assert tuple(tenant) == (tenant_id, "acme.sip.test", "Asia/Ho_Chi_Minh")
    keys = rows(cli_database, select(ApiKey.id, ApiKey.tenant_id, ApiKey.role, ApiKey.key_hash))
    assert {(k.tenant_id, k.role, k.key_hash) for k in keys} == {
        (tenant_id, Role.viewer, hash_api_key(secret)),
        (None, Role.admin, hash_api_key(platform_secret)),
    }

    viewer_key = next(k.id for k in keys if k.tenant_id == tenant_id)
    out = run(capsys, "api-key", "revoke", str(viewer_key), "--tenant", str(tenant_id))
    assert out == f"revoked {viewer_key}\n"
    assert [k.tenant_id for k in rows(cli_database, select(ApiKey.tenant_id))] == [None]


def test_tenant_list(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "tenant", "list") == ""
    acme = run(capsys, "tenant", "create", "--name", "Acme", "--sip-domain", "acme.sip.test")
    globex = run(
        capsys,
        *("tenant", "create", "--name", "Globex Corp", "--sip-domain", "globex.sip.test"),
        *("--timezone", "Europe/Berlin"),
    )

    assert run(capsys, "tenant", "list").splitlines() == [
        f"{acme.strip()}\tacme.sip.test\tAcme\tAsia/Ho_Chi_Minh",
        f"{globex.strip()}\tglobex.sip.test\tGlobex Corp\tEurope/Berlin",
    ]


def test_api_key_list_never_shows_a_key(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    tenant_id = run(capsys, "tenant", "create", "--name", "Acme", "--sip-domain", "a.sip.test")
    tenant_id = tenant_id.strip()
    tenant_secret = run(
        capsys, "api-key", "create", "--tenant", tenant_id, "--role", "viewer", "--name", "wall"
    ).strip()
    platform_secret = run(
        capsys, "api-key", "create", "--platform", "--role", "call_control", "--name", "kamailio"
    ).strip()

    platform_list = run(capsys, "api-key", "list")
    tenant_list = run(capsys, "api-key", "list", "--tenant", tenant_id)

    key = select(ApiKey.id, ApiKey.created_at)
    [platform_key] = rows(migrated, key.where(ApiKey.tenant_id.is_(None)))
    [tenant_key] = rows(migrated, key.where(ApiKey.tenant_id.is_not(None)))
    assert platform_list == (
        f"{platform_key.id}\tplatform\tcall_control\tkamailio\t{platform_secret[:10]}\t"
        f"{platform_key.created_at.isoformat()}\n"
    )
    assert tenant_list == (
        f"{tenant_key.id}\t{tenant_id}\tviewer\twall\t{tenant_secret[:10]}\t"
        f"{tenant_key.created_at.isoformat()}\n"
    )
    for secret in (platform_secret, tenant_secret):
        assert secret not in platform_list + tenant_list


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["migrate", "nope"], "error: CommandError: Can't locate revision identified by 'nope'"),
        (
            ["tenant", "create", "--name", "Again", "--sip-domain", "taken.sip.test"],
            "error: The SIP domain taken.sip.test belongs to another tenant.",
        ),
        (
            [
                "tenant",
                "create",
                "--name",
                "B",
                "--sip-domain",
                "b.test",
                "--timezone",
                "Mars/Base",
            ],
            "error: --timezone: Enter an IANA time zone such as Asia/Ho_Chi_Minh",
        ),
        (
            ["tenant", "create", "--name", " ", "--sip-domain", "Acme.sip.test"],
            "error: --name: The text must not be blank; --sip-domain: Enter a "
            "DNS host name in lower case, such as acme.sip.example.com",
        ),
        (
            ["api-key", "create", "--tenant", str(UNKNOWN), "--name", "ops"],
            f"error: There is no tenant {UNKNOWN}.",
        ),
        (
            ["api-key", "create", "--platform", "--name", "two\nlines"],
            "error: --name: The text must not contain control characters",
        ),
        (["api-key", "list", "--tenant", str(UNKNOWN)], f"error: There is no tenant {UNKNOWN}."),
        (["api-key", "revoke", str(UNKNOWN)], f"error: There is no API key {UNKNOWN}."),
        (
            ["api-key", "revoke", str(UNKNOWN), "--tenant", str(UNKNOWN)],
            f"error: There is no tenant {UNKNOWN}.",
        ),
        (
            ["jobs", "run", "nope"],
            f"error: There is no job nope; the jobs are {', '.join(list(JOBS)[:-1])}, and "
            f"{list(JOBS)[-1]}.",
        ),
    ],
)
def test_a_failure_is_one_line(
    argv: list[str], line: str, migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "tenant", "create", "--name", "Taken", "--sip-domain", "taken.sip.test")

    assert_fails(capsys, argv, line)


def test_a_bad_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["api-key", "create", "--tenant", "acme", "--name", "ops"])

    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        "antring api-key create: error: argument --tenant: invalid UUID value: 'acme'\n"
    )


DATABASE_COMMANDS = [
    ["migrate"],
    ["tenant", "create", "--name", "Acme", "--sip-domain", "acme.sip.test"],
    ["tenant", "list"],
    ["api-key", "create", "--platform", "--name", "ops"],
    ["api-key", "list"],
    ["api-key", "revoke", str(UNKNOWN)],
    ["jobs", "run", "close-finished-months"],
]


@pytest.mark.parametrize("argv", DATABASE_COMMANDS)
def test_a_database_that_cannot_be_opened(
    argv: list[str],
    tmp_path: Path,
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    environment.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}")

    assert_fails(capsys, argv, "error: the database cannot be reached (OperationalError)")


@pytest.mark.parametrize("argv", [["migrate"], ["tenant", "list"]])
def test_a_database_server_that_does_not_answer(
    argv: list[str], environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    url = "postgresql+asyncpg://antring:db-password-123@127.0.0.1:1/antring"
    environment.setenv("DATABASE_URL", url)

    assert_fails(capsys, argv, "error: the database cannot be reached (ConnectionRefusedError)")


@pytest.mark.parametrize(
    "argv", [*DATABASE_COMMANDS, ["serve"], ["jobs", "list"]], ids=lambda argv: " ".join(argv)
)
def test_an_insecure_production_setting_names_the_setting_not_its_value(
    argv: list[str],
    cli_database: str,
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    environment.setenv("ANTRING_ENVIRONMENT", "production")
    environment.setenv("ANTRING_SECRET_KEY", SECRET)

    out = assert_fails(
        capsys,
        argv,
        "error: invalid settings: ANTRING_SECRET_KEY must be set to a random value of at least "
        "32 characters in production",
    )
    assert out == ""


def test_every_bad_setting_is_named(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("ANTRING_ENVIRONMENT", "staging")
    environment.setenv("ANTRING_DATABASE_POOL_SIZE", "lots")

    assert_fails(
        capsys,
        ["migrate"],
        "error: invalid settings: ANTRING_ENVIRONMENT: Input should be 'development' or "
        "'production'; ANTRING_DATABASE_POOL_SIZE: Input should be a valid integer, unable to "
        "parse string as an integer",
    )


def test_a_short_secret_key_is_refused_without_showing_it(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("ANTRING_SECRET_KEY", "hunter2")

    assert_fails(
        capsys,
        ["tenant", "list"],
        "error: invalid settings: ANTRING_SECRET_KEY must be at least 32 characters",
    )


def test_a_refused_statement_shows_no_values(
    migrated: str, environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def refused(*_args: object, **_kwargs: object) -> None:
        raise IntegrityError("INSERT INTO tenant VALUES (?)", (SECRET,), Exception(SECRET))

    environment.setattr("app.tenants.service.list_tenants", refused)

    assert_fails(
        capsys, ["tenant", "list"], "error: the database refused a statement (IntegrityError)"
    )


def test_an_unexpected_error_is_one_line_without_secrets(
    migrated: str, environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"no luck with {TEST_SECRET_KEY} at {migrated}\nand a second line")

    environment.setattr("app.tenants.service.list_tenants", broken)

    assert_fails(capsys, ["tenant", "list"], "error: RuntimeError: no luck with *** at ***")


def test_an_interrupt_exits_quietly(
    migrated: str, environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    environment.setattr("app.tenants.service.list_tenants", interrupted)

    assert main(["tenant", "list"]) == 130
    assert capsys.readouterr() == ("", "")


def test_jobs_list(environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "jobs", "list").splitlines() == [
        f"{name}\t{job.description}" for name, job in JOBS.items()
    ]
