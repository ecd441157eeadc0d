"""Engine, sessions and the declarative base shared by every domain; the call-control hot
paths' own connections and prepared statements; what counts as "the database is unavailable"."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, TypeAlias, TypeVar, cast

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import ClauseElement, DateTime, Executable, MetaData, Row, event
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
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

from app.batching import Batcher
from app.settings import Settings

K = TypeVar("K")
V = TypeVar("V")

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


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        # hide_parameters: an error's text never carries a statement's values (hashes, secrets).
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        hide_parameters=True,
        pool_size=settings.database_pool_size,
        # No overflow: connections opened for a burst and closed after it cost more than waiting.
        max_overflow=0,
    )


APPLICATION_NAME = "antring call control"
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_SECONDS = 10


class DriverPool:
    """asyncpg connections for the call-control hot paths on PostgreSQL, handed out first come,
    first served. A checkout from SQLAlchemy's pool costs more CPU than a registrar lookup's
    query, and its waiters are not served in order (a woken waiter can find the connection
    taken and queue again, which under load gives a few requests very long waits).

    A connection that is closed, still in a transaction, or was interrupted (cancelled) is not
    reused; a checkout that finds no idle one opens a new one.
    """

    def __init__(self, engine: AsyncEngine, size: int) -> None:
        args = dict(engine.dialect.create_connect_args(engine.url)[1])
        # Named in pg_stat_activity, apart from the ORM pool's connections.
        args["server_settings"] = {
            "application_name": APPLICATION_NAME,
            **args.get("server_settings", {}),
        }
        # The SIP platform waits on these answers call by call: a database that does not answer
        # is reported (503) within seconds rather than holding every slot for a minute.
        args.setdefault("timeout", CONNECT_TIMEOUT_SECONDS)
        args.setdefault("command_timeout", STATEMENT_TIMEOUT_SECONDS)
        self._connect_args = args
        self._slots = asyncio.Semaphore(size)
        self._idle: list[asyncpg.Connection] = []

    async def _open(self) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(**self._connect_args)
        await conn.set_type_codec(
            "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        return conn

    async def _checkout(self) -> asyncpg.Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.is_closed():
                return conn
        return await self._open()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._slots:
            conn = await self._checkout()
            try:
                yield conn
            except Exception:
                self._give_back(conn)
                raise
            except BaseException:
                conn.terminate()  # cancelled mid-statement: its state is unknown
                raise
            self._give_back(conn)

    def _give_back(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
        else:
            self._idle.append(conn)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


# Failures to reach the database, rather than of a statement: the request may be retried.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # connection refused or reset, timeouts
    asyncpg.PostgresConnectionError,  # the connection was lost
    asyncpg.exceptions.OperatorInterventionError,  # the server is shutting down or starting
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    OperationalError,  # SQLAlchemy's: the database cannot be opened, or is locked
)


def database_unavailable(error: Exception) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, UNAVAILABLE_ERRORS)


# The connection of a call-control hot path: asyncpg's own on PostgreSQL, SQLAlchemy's on SQLite.
HotConnection: TypeAlias = "asyncpg.Connection | AsyncConnection"


class Database:
    """The engine, the session factory and the hot paths' connections, owned by the app (or a
    CLI command)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.driver_pool = (
            DriverPool(self.engine, settings.database_pool_size)
            if self.engine.dialect.name == "postgresql"
            else None
        )
        self._batchers: dict[str, Batcher[Any, Any]] = {}
        # Batches in flight at once per kind of read: few, so that a burst forms large batches.
        self._batch_concurrency = max(1, min(4, settings.database_pool_size // 2))

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

    @asynccontextmanager
    async def hot_connection(self) -> AsyncIterator[HotConnection]:
        """A connection for a call-control hot path. Its statements commit by themselves, unless
        `begin(conn)` made them one transaction: that one commits when the block ends, or rolls
        back on an error. (SQLite begins one, BEGIN IMMEDIATE, at the first statement.)"""
        if self.driver_pool is None:
            async with self.engine.connect() as conn:
                yield conn
                if conn.in_transaction():
                    await conn.commit()
            return
        async with self.driver_pool.connection() as driver:
            try:
                yield driver
            except Exception:
                if driver.is_in_transaction():
                    await driver.execute("ROLLBACK")
                raise
            if driver.is_in_transaction():
                await driver.execute("COMMIT")

    def batcher(
        self, name: str, load: Callable[["Database", list[K]], Awaitable[Sequence[V]]]
    ) -> Batcher[K, V]:
        """The process's batcher of hot-path reads `name` (see app.batching): PostgreSQL only."""
        batcher = self._batchers.get(name)
        if batcher is None:
            batcher = Batcher(partial(load, self), concurrency=self._batch_concurrency)
            self._batchers[name] = batcher
        return batcher

    async def dispose(self) -> None:
        if self.driver_pool is not None:
            await self.driver_pool.close()
        await self.engine.dispose()


async def begin(conn: HotConnection) -> None:
    """Makes the statements that follow on a hot connection one transaction (for a lock held
    until the end), committed by the block that gave the connection."""
    if isinstance(conn, AsyncConnection):
        if not conn.in_transaction():
            await conn.begin()
    elif not conn.is_in_transaction():
        await conn.execute("BEGIN")


def dialect_name(conn: HotConnection) -> str:
    return conn.dialect.name if isinstance(conn, AsyncConnection) else "postgresql"


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_database(request).session_scope() as session:
        yield session


# scope="function": commit and give the connection back before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


async def _driver_connection(conn: HotConnection) -> Any:
    """The asyncpg connection of a hot path, or under a checked-out SQLAlchemy one."""
    if not isinstance(conn, AsyncConnection):
        return conn
    try:
        # Plain attribute reads while the connection is live; no greenlet hop needed.
        return conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    except Exception:
        return (await conn.get_raw_connection()).driver_connection


_POSTGRES = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


class PreparedQuery:
    """A statement for a hot path. On PostgreSQL it runs straight on the asyncpg connection:
    compiled once, and prepared once per connection by asyncpg, which skips SQLAlchemy's
    per-execution work (it costs more CPU than the query). Elsewhere `portable` (by default the
    same statement) runs through SQLAlchemy. Rows are mappings; use it only for values that need
    no processing beyond the driver's own (UUID, text, numbers, booleans, JSON, aware datetimes).
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
        self._postgres: tuple[str, list[str], dict[str, Any]] | None = None

    def _compiled(self) -> tuple[str, list[str], dict[str, Any]]:
        if self._postgres is None:
            compiled = cast(
                SQLCompiler,
                cast(ClauseElement, self.statement).compile(
                    dialect=_POSTGRES, column_keys=self.column_keys
                ),
            )
            # Literals in the statement (a COALESCE's 0) are parameters with a value of their own.
            self._postgres = (str(compiled), list(compiled.positiontup or []), compiled.params)
        return self._postgres

    async def all(self, conn: HotConnection, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        if dialect_name(conn) != "postgresql":
            rows = (await cast(AsyncConnection, conn).execute(self.portable, params)).mappings()
            return [dict(row) for row in rows.all()]
        sql, names, literals = self._compiled()
        driver = await _driver_connection(conn)
        values = [params[name] if name in params else literals[name] for name in names]
        records: list[Any] = await driver.fetch(sql, *values)
        return records

    async def first(self, conn: HotConnection, params: dict[str, Any]) -> Mapping[str, Any] | None:
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
