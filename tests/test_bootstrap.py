import asyncio
import re
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from app.auth.models import ApiKey, Role
from app.bootstrap import bootstrap_if_empty
from app.cli import alembic_config
from app.crypto import hash_api_key
from app.db.session import Database
from app.tenants.models import Tenant
from tests.helpers.api import db_rows
from tests.helpers.settings import make_settings


@pytest.fixture
async def empty_database(tmp_path: Path) -> Database:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    config = alembic_config(url)
    config.attributes["configure_logging"] = False
    await asyncio.to_thread(command.upgrade, config, "head")
    return Database(make_settings(url, bootstrap=True))


async def test_first_start_creates_a_default_tenant_and_prints_its_keys_once(
    empty_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    db = empty_database
    try:
        assert await bootstrap_if_empty(db) is True
        printed = capsys.readouterr().out

        keys = re.findall(r"ark_[A-Za-z0-9_-]+", printed)
        assert len(keys) == 2
        assert "Authorize" in printed
        [tenant] = await db_rows(db, select(Tenant.id, Tenant.name, Tenant.sip_domain))
        assert tenant.name == "Default"
        assert str(tenant.id) in printed
        stored = await db_rows(db, select(ApiKey.tenant_id, ApiKey.role, ApiKey.key_hash))
        assert sorted((k.tenant_id is None, k.role, k.key_hash) for k in stored) == sorted(
            [
                (False, Role.admin, hash_api_key(keys[0])),
                (True, Role.admin, hash_api_key(keys[1])),
            ]
        )

        assert await bootstrap_if_empty(db) is False
        assert capsys.readouterr().out == ""
        assert len(await db_rows(db, select(Tenant.id))) == 1
        assert len(await db_rows(db, select(ApiKey.id))) == 2
    finally:
        await db.dispose()


async def test_bootstrap_does_nothing_when_a_tenant_exists(
    empty_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    db = empty_database
    try:
        async with db.session_scope() as session:
            session.add(Tenant(name="Existing", sip_domain="existing.sip.test"))

        assert await bootstrap_if_empty(db) is False

        assert capsys.readouterr().out == ""
        assert await db_rows(db, select(ApiKey.id)) == []
        assert [t.name for t in await db_rows(db, select(Tenant.name))] == ["Existing"]
    finally:
        await db.dispose()
