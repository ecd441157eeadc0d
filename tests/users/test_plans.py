"""On a tenant of 100,000 agents (PostgreSQL), every statement the Users table runs reads an
index, never the whole of a table: its first page in each order, a page read on by cursor, and
searches for a rare word, an extension, a common word spread through the order (read along the
order's index, not from the trigram index) and a common word whose agents lie together at the
end of the order (from the trigram index). The statements are the service's own, caught as a
request runs them, and explained with the values they were sent with."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.session import Database
from app.users.repository import WALKED_ROWS
from tests.helpers.api import TenantKeys, create_user

AGENTS = 100_000
# Tables a scan of which would grow with the tenant.
LARGE = {"user_account", "device", "extension"}
# Nodes that read all their input before they give a row.
_READ_WHOLE = {"Sort", "Hash", "SetOp"}


async def _seed(db: Database, tenant_id: uuid.UUID) -> None:
    """100,000 agents with two devices each and 8,999 extensions, in three statements (on an
    engine of its own: the service's stops a statement after a few seconds). Their names sort
    in the order they are numbered; the last 30,000 are Phạm, the others Nguyễn, Trần or Lê by
    turns."""
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
                    LATERAL (SELECT CASE WHEN i > :agents - 30000 THEN 4 ELSE i % 3 + 1 END
                        AS n) k,
                    LATERAL (SELECT (ARRAY['Nguyễn', 'Trần', 'Lê', 'Phạm'])[n] AS family) f,
                    LATERAL (SELECT ' ' || (ARRAY['nguyen', 'tran', 'le', 'pham'])[n]
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


def _nodes(plan: dict[str, Any], limit: float | None = None) -> Iterator[dict[str, Any]]:
    """The plan's nodes, each marked `Limited` when a Limit above it stops it early, with the
    rows the nearest such Limit lets through (`Limit Rows`). A Limit over a node that reads all
    of its input first (a sort, a hash, an aggregate) stops nothing below that node."""
    if plan["Node Type"] == "Limit":
        limit = plan["Plan Rows"]
    elif plan["Node Type"] in _READ_WHOLE or plan.get("Strategy") in ("Plain", "Hashed"):
        limit = None
    yield {**plan, "Limited": limit is not None, "Limit Rows": limit}
    for child in plan.get("Plans", []):
        yield from _nodes(child, limit)


async def _plans(
    client: httpx.AsyncClient, db: Database, headers: dict[str, str], **params: Any
) -> list[list[dict[str, Any]]]:
    """The plan of each statement the request runs on the large tables, as nodes, under the
    settings the request gave its transaction before it (set_config)."""
    statements: list[tuple[str, Any]] = []

    def caught(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "set_config(" in statement or (
            any(f" {table}" in statement for table in LARGE) and statement.startswith("SELECT")
        ):
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
            if "set_config(" in statement:
                await conn.exec_driver_sql(statement, parameters)
                continue
            explained = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plans.append(list(_nodes(explained.scalar_one()[0]["Plan"])))
    assert plans, "the request ran no statement on the large tables"
    return plans


def _indexes(plans: list[list[dict[str, Any]]]) -> set[str]:
    return {node["Index Name"] for plan in plans for node in plan if "Index Name" in node}


def _walks_at_most(plan: list[dict[str, Any]], rows: int) -> bool:
    """Each read of an order's index in the plan stops within `rows` of it (a Limit)."""
    return all(
        node["Limited"] and node["Limit Rows"] <= rows
        for node in plan
        if node.get("Index Name", "").startswith("ix_user_account_tenant_id_")
    )


def _scanned_whole(plans: list[list[dict[str, Any]]]) -> set[str]:
    """The large tables read from start to end, or the tenant's agents read whole along an
    index of the tenant's. A scan under a Limit stops once it has the rows it needs: the count,
    which stops at 10,001 of a tenant's rows, may read them so."""
    return {
        node.get("Relation Name") or node["Index Name"]
        for plan in plans
        for node in plan
        if not node["Limited"]
        and (
            (node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE)
            or node.get("Index Name", "").startswith("ix_user_account_tenant_id")
        )
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

    by_name, trigrams = "ix_user_account_tenant_id_name_sort", "ix_user_account_search_text_trgm"
    reads = {
        "first page": ({"limit": 50}, by_name),
        "by given name": ({"sort": "-given_name"}, "ix_user_account_tenant_id_given_name_sort"),
        "newest first": ({"sort": "-created_at"}, "ix_user_account_tenant_id_created_at"),
        "read on by cursor": ({"cursor": first.json()["next"]}, by_name),
        "a rare word": ({"search": "agent 99999"}, trigrams),
        "an e-mail": ({"search": "agent4242@acme.vn"}, trigrams),
        "an extension": ({"search": "1234"}, trigrams),
        # A word of a quarter of the tenant, through the whole order: the page is read along
        # the order's index, a few hundred agents, not the 23,000 the trigram index would give.
        "a common word": ({"search": "nguyen"}, by_name),
        # A word of 30,000 agents, all at the end of the order: a walk from its start finds
        # none of them, the trigram index finds them all.
        "a common word far into the order": ({"search": "pham"}, trigrams),
    }
    for read, (params, index) in reads.items():
        plans = await _plans(client, db, headers, **params)
        assert not _scanned_whole(plans), (read, plans)
        assert index in _indexes(plans), (read, plans)
        if read == "a common word":
            assert trigrams not in _indexes(plans), plans
            assert all(_walks_at_most(plan, WALKED_ROWS) for plan in plans), plans
