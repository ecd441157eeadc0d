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
    """Many rows as multi-row INSERTs (`VALUES (...), (...), ...`, a thousand rows a
    statement): SQLAlchemy's insertmanyvalues, which an executemany with RETURNING takes. Faster
    on both backends than the driver's executemany, which runs the statement for each row."""
    if rows:
        await session.execute(insert(table).returning(*table.primary_key.columns), rows)
