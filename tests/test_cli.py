import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.auth.models import ApiKey, Role
from app.cli import build_parser, main
from app.crypto import hash_api_key
from app.db.session import Database
from app.settings import get_settings
from app.tenants.models import Tenant
from tests.helpers.api import db_rows
from tests.helpers.settings import TEST_SECRET_KEY, make_settings


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["migrate"],
        ["serve"],
        ["tenant", "create"],
        ["api-key", "create"],
        ["api-key", "revoke"],
    ],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args([*command, "--help"])

    assert exit.value.code == 0
    assert "usage: antring" in capsys.readouterr().out


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("ANTRING_SECRET_KEY", TEST_SECRET_KEY)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def rows(url: str, statement: object) -> list[object]:
    async def read() -> list[object]:
        db = Database(make_settings(url))
        try:
            return await db_rows(db, statement)
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_migrate_create_a_tenant_and_manage_its_keys(
    cli_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0

    main(["tenant", "create", "--name", "Acme", "--sip-domain", "acme.sip.test"])
    tenant_id = uuid.UUID(capsys.readouterr().out.strip())
    main(["api-key", "create", "--tenant", str(tenant_id), "--role", "viewer", "--name", "ops"])
    secret = capsys.readouterr().out.strip()
    main(["api-key", "create", "--platform", "--name", "platform"])
    platform_secret = capsys.readouterr().out.strip()

    [tenant] = rows(cli_database, select(Tenant.id, Tenant.sip_domain, Tenant.timezone))
    assert tuple(tenant) == (tenant_id, "acme.sip.test", "Asia/Ho_Chi_Minh")
    keys = rows(cli_database, select(ApiKey.id, ApiKey.tenant_id, ApiKey.role, ApiKey.key_hash))
    assert {(k.tenant_id, k.role, k.key_hash) for k in keys} == {
        (tenant_id, Role.viewer, hash_api_key(secret)),
        (None, Role.admin, hash_api_key(platform_secret)),
    }

    viewer_key = next(k.id for k in keys if k.tenant_id == tenant_id)
    main(["api-key", "revoke", str(viewer_key), "--tenant", str(tenant_id)])
    assert f"revoked {viewer_key}" in capsys.readouterr().out
    assert [k.tenant_id for k in rows(cli_database, select(ApiKey.tenant_id))] == [None]
