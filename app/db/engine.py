"""The SQLAlchemy engine for each backend: SQLite tuned for concurrent writers, PostgreSQL with a
fixed pool."""

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.settings import Settings


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int) -> None:
    # pysqlite's implicit BEGIN is deferred: two writers that both read first deadlock and one
    # fails with "database is locked". BEGIN IMMEDIATE takes the write lock up front instead.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's own lower() folds only ASCII; agents' names are Vietnamese ("Đặng" ~ "đặng").
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def postgres_server_settings(settings: Settings) -> dict[str, str]:
    """The server's own bounds for every session (milliseconds)."""
    return {
        "statement_timeout": str(int(settings.database_statement_timeout_seconds * 1000)),
        "lock_timeout": str(int(settings.database_lock_timeout_seconds * 1000)),
    }


def create_engine(settings: Settings, *, bounded: bool = True) -> AsyncEngine:
    """The engine; `bounded=False` (migrations, bulk tools) lifts the statement bounds that
    protect requests."""
    url = settings.database_url
    if url.startswith("sqlite"):
        lock_wait = settings.database_lock_timeout_seconds if bounded else 600.0
        # hide_parameters: an error's text never carries a statement's values (hashes, secrets).
        engine = create_async_engine(
            url,
            connect_args={"timeout": lock_wait},
            hide_parameters=True,
            pool_timeout=settings.database_pool_timeout_seconds,
        )
        _configure_sqlite(engine, busy_timeout_ms=int(lock_wait * 1000))
        return engine
    connect_args: dict[str, object] = {"timeout": settings.database_connect_timeout_seconds}
    if bounded:
        # The client's bound holds when the server cannot even say that its own ran out.
        connect_args["command_timeout"] = settings.database_statement_timeout_seconds
        connect_args["server_settings"] = postgres_server_settings(settings)
    return create_async_engine(
        url,
        hide_parameters=True,
        connect_args=connect_args,
        pool_size=settings.database_pool_size,
        pool_timeout=settings.database_pool_timeout_seconds,
        # No overflow: connections opened for a burst and closed after it cost more than waiting.
        max_overflow=0,
    )
