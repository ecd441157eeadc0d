"""Statement builders that differ by backend."""

from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def dialect_insert(conn: AsyncConnection | AsyncSession | str, table: Any) -> Any:
    """INSERT with ON CONFLICT support for the backend (PostgreSQL or SQLite) of a connection, a
    session, or a dialect name."""
    if isinstance(conn, str):
        name = conn
    elif isinstance(conn, AsyncSession):
        name = conn.get_bind().dialect.name
    else:
        name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


async def insert_many(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Many rows in one statement executed for each (the driver's executemany: asyncpg
    pipelines them, sqlite3 loops in C). Every row gives the same columns. Faster here than a
    multi-row VALUES list, which SQLAlchemy compiles again for every batch."""
    if rows:
        await session.execute(insert(table), rows)
