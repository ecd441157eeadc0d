"""Engine, sessions and the declarative base shared by every domain."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias, cast

from fastapi import Depends, Request
from sqlalchemy import ClauseElement, DateTime, Executable, MetaData, Row, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

from app.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Any result row, whatever its columns (SQLAlchemy 2.1 types rows by their column types).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's implicit BEGIN is deferred: two writers that both read first deadlock and one
    # fails with "database is locked". BEGIN IMMEDIATE takes the write lock up front instead.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's own lower() folds only ASCII; agents' names are Vietnamese ("Đặng" ~ "đặng").
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings, *, autocommit: bool = False) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        # No overflow: connections opened for a burst and closed after it cost more than waiting.
        max_overflow=0,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )


class Database:
    """The engines and the session factory, owned by the app (or a CLI command)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        # PostgreSQL reads of one statement use a pool of autocommit connections: no BEGIN and
        # ROLLBACK round trips, and no isolation switch at each checkout.
        self.read_engine = (
            self.engine
            if self.engine.dialect.name == "sqlite"
            else create_engine(settings, autocommit=True)
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Waiting for a pooled connection is not first-come first-served (a woken waiter can
        # find the connection taken and queue again), which under load gives a few requests
        # very long waits. The hot paths queue here instead, in order, for a connection that is
        # then always free; the transaction pool keeps two for the ORM routes and key checks.
        size = settings.database_pool_size
        self.read_slots = asyncio.Semaphore(size)
        self.write_slots = asyncio.Semaphore(max(size - 2, 1))

    @asynccontextmanager
    async def session_scope(self) -> AsyncIterator[AsyncSession]:
        """A transaction for work outside a request: commits on success, rolls back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_database(request).session_scope() as session:
        yield session


# scope="function": commit and give the connection back before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


@asynccontextmanager
async def connection_scope(db: "Database") -> AsyncIterator[AsyncConnection]:
    """A Core connection that commits when the block ends and rolls back on error; it begins on
    first use, and is for the hot paths that need no ORM unit of work."""
    async with db.write_slots, db.engine.connect() as conn:
        yield conn
        if conn.in_transaction():
            await conn.commit()


@asynccontextmanager
async def read_connection_scope(db: "Database") -> AsyncIterator[AsyncConnection]:
    """A Core connection for one read: on PostgreSQL no BEGIN/ROLLBACK round trips around it."""
    async with db.read_slots, db.read_engine.connect() as conn:
        yield conn


async def _driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a checked-out SQLAlchemy one."""
    try:
        # Plain attribute reads while the connection is live; no greenlet hop needed.
        return conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    except Exception:
        return (await conn.get_raw_connection()).driver_connection


class PreparedQuery:
    """A statement for a hot path. On PostgreSQL it runs straight on the asyncpg connection:
    compiled once, and prepared once per connection by asyncpg, which skips SQLAlchemy's
    per-execution work (it costs more CPU than the query). Elsewhere `portable` (by default the
    same statement) runs through SQLAlchemy. Rows are mappings; use it only for values that need
    no processing beyond the driver's own (UUID, text, numbers, booleans, JSON, aware datetimes).
    Outside a transaction begun through SQLAlchemy, a statement commits by itself on PostgreSQL.
    """

    def __init__(
        self,
        statement: Executable,
        *,
        portable: Executable | None = None,
        column_keys: list[str] | None = None,
    ) -> None:
        self.statement = statement
        self.portable = portable if portable is not None else statement
        self.column_keys = column_keys
        self._postgres: tuple[str, list[str]] | None = None

    async def _fetch(self, conn: AsyncConnection, params: dict[str, Any]) -> list[Any]:
        if self._postgres is None:
            compiled = cast(
                SQLCompiler,
                cast(ClauseElement, self.statement).compile(
                    dialect=conn.dialect, column_keys=self.column_keys
                ),
            )
            self._postgres = (str(compiled), list(compiled.positiontup or []))
        sql, names = self._postgres
        driver = await _driver_connection(conn)
        records: list[Any] = await driver.fetch(sql, *(params[name] for name in names))
        return records

    async def all(self, conn: AsyncConnection, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        if conn.dialect.name == "postgresql":
            return await self._fetch(conn, params)
        rows = (await conn.execute(self.portable, params)).mappings().all()
        return [dict(row) for row in rows]

    async def first(
        self, conn: AsyncConnection, params: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        rows = await self.all(conn, params)
        return rows[0] if rows else None


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
