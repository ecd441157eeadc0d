"""On a tenant of 100,000 agents (PostgreSQL), every statement the Users table runs reads an
index, never the whole of a table: its first page in each order, a page read on by cursor, and
searches for a rare word, a common one and an extension. The statements are the service's own,
caught as a request runs them, and explained with the values they were sent with."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.session import Database
from tests.helpers.api import TenantKeys, create_user

AGENTS = 100_000
# Tables a scan of which would grow with the tenant.
LARGE = {"user_account", "device", "extension"}


async def _seed(db: Database, tenant_id: uuid.UUID) -> None:
    """100,000 agents with two devices each and 8,999 extensions, in three statements (on an
    engine of its own: the service's stops a statement after a few seconds)."""
    engine = create_async_engine(db.engine.url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO user_account (id, tenant_id, display_name, email, enabled,
                    outbound_allowed, auto_answer, created_at, updated_at, search_key,
                    name_sort, given_name_sort, search_text)
                SELECT gen_random_uuid(), :tenant, family || ' Agent ' || i,
                    CASE WHEN i % 2 = 0 THEN 'agent' || i || '@acme.vn' END, true, true, false,
                    now() - i * interval '1 second', now(), words,
                    convert_to(lpad(i::text, 6, '0'), 'UTF8'),
                    convert_to(lpad((:agents - i)::text, 6, '0'), 'UTF8'),
                    words || ' agent-' || i || ' agent-' || i || '-sp'
                        || CASE WHEN i < 9000 THEN ' ' || (1000 + i) ELSE '' END
                FROM generate_series(1, :agents) AS i,
                    LATERAL (SELECT (ARRAY['Nguyễn', 'Trần', 'Lê'])[i % 3 + 1] AS family) f,
                    LATERAL (SELECT ' ' || (ARRAY['nguyen', 'tran', 'le'])[i % 3 + 1]
                        || ' agent ' || i AS words) w
                """
            ),
            {"tenant": tenant_id, "agents": AGENTS},
        )
        await conn.execute(
            text(
                """
                INSERT INTO device (id, tenant_id, user_id, name, name_key, search_key, kind,
                    enabled, password_encrypted, ha1, ha1_sha256, created_at, updated_at)
                SELECT gen_random_uuid(), u.tenant_id, u.id, n.name, n.name, ' ' || n.name,
                    n.kind, true, 'x', md5(n.name), md5(n.name) || md5(n.name), now(), now()
                FROM user_account u,
                    LATERAL (VALUES ('web', u.id::text), ('softphone', u.id::text || '-sp'))
                        AS n(kind, name)
                WHERE u.tenant_id = :tenant
                """
            ),
            {"tenant": tenant_id},
        )
        await conn.execute(
            text(
                """
                INSERT INTO extension (id, tenant_id, user_id, number, created_at)
                SELECT gen_random_uuid(), tenant_id, id, (1000 + n)::text, now()
                FROM (SELECT tenant_id, id, row_number() OVER (ORDER BY created_at DESC) AS n
                      FROM user_account WHERE tenant_id = :tenant) u
                WHERE n < 9000
                """
            ),
            {"tenant": tenant_id},
        )
        await conn.execute(text("ANALYZE user_account, device, extension"))
    await engine.dispose()


def _nodes(plan: dict[str, Any], limited: bool = False) -> Iterator[dict[str, Any]]:
    """The plan's nodes, each marked `Limited` when a Limit above it stops it early."""
    limited = limited or plan["Node Type"] == "Limit"
    yield {**plan, "Limited": limited}
    for child in plan.get("Plans", []):
        yield from _nodes(child, limited)


async def _plans(
    client: httpx.AsyncClient, db: Database, headers: dict[str, str], **params: Any
) -> list[list[dict[str, Any]]]:
    """The plan of each statement the request runs on the large tables, as nodes."""
    statements: list[tuple[str, Any]] = []

    def caught(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if any(f" {table}" in statement for table in LARGE) and statement.startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", caught)
    try:
        response = await client.get("/v1/users", params=params, headers=headers)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", caught)
    assert response.status_code == 200, response.text
    plans = []
    async with db.engine.connect() as conn:
        for statement, parameters in statements:
            explained = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plans.append(list(_nodes(explained.scalar_one()[0]["Plan"])))
    assert plans, "the request ran no statement on the large tables"
    return plans


def _indexes(plans: list[list[dict[str, Any]]]) -> set[str]:
    return {node["Index Name"] for plan in plans for node in plan if "Index Name" in node}


def _scanned_whole(plans: list[list[dict[str, Any]]]) -> set[str]:
    """The large tables read from start to end. A scan under a Limit stops once it has the rows
    it needs: the count, which stops at 10,001 of a tenant's rows, may read them so."""
    return {
        node["Relation Name"]
        for plan in plans
        for node in plan
        if node["Node Type"] == "Seq Scan"
        and node.get("Relation Name") in LARGE
        and not node["Limited"]
    }


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_users_table_reads_indexes_on_a_tenant_of_100000_agents(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    await _seed(db, tenant.id)
    try:
        await _read_indexes(client, db, tenant, other_tenant)
    finally:
        # Faster than the fixture's row by row deletion, which the service's statement
        # timeout would stop.
        engine = create_async_engine(db.engine.url)
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE user_account, device, extension CASCADE"))
        await engine.dispose()


async def _read_indexes(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    for name in ("Nguyễn Văn An", "Trần Thị Bích"):
        await create_user(client, other_tenant.admin, display_name=name)
    headers = tenant.operator
    first = await client.get("/v1/users", params={"limit": 50}, headers=headers)
    assert first.json()["total_is_estimate"] is True

    reads = {
        "first page": ({"limit": 50}, "ix_user_account_tenant_id_name_sort"),
        "by given name": ({"sort": "-given_name"}, "ix_user_account_tenant_id_given_name_sort"),
        "newest first": ({"sort": "-created_at"}, "ix_user_account_tenant_id_created_at"),
        "read on by cursor": (
            {"cursor": first.json()["next"]},
            "ix_user_account_tenant_id_name_sort",
        ),
        "a rare word": ({"search": "agent 99999"}, "ix_user_account_search_text_trgm"),
        "an e-mail": ({"search": "agent4242@acme.vn"}, "ix_user_account_search_text_trgm"),
        "an extension": ({"search": "1234"}, "ix_user_account_search_text_trgm"),
        # A third of the tenant: read in order from the start of an index until a page is
        # full, or from the trigram index; either way not the whole table.
        "a common word": ({"search": "nguyen"}, None),
    }
    for read, (params, index) in reads.items():
        plans = await _plans(client, db, headers, **params)
        assert not _scanned_whole(plans), (read, plans)
        if index is not None:
            assert index in _indexes(plans), (read, plans)
