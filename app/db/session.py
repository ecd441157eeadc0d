"""The database a process owns (engine, ORM sessions, the hot path's driver pool), and the
session scope that commits a unit of work at its boundary."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.driver import DriverPool
from app.db.engine import create_engine, postgres_server_settings
from app.settings import Settings


class Database:
    """The engine, the session factory and, on PostgreSQL, the hot paths' driver pool; owned by
    the app (or a CLI command) and disposed with it."""

    def __init__(self, settings: Settings, *, session_info: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        # `session_info`: what every session of this database carries in its `info` (a copy
        # each), such as the app's pusher to the SIP edges.
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, info=session_info or {}
        )
        self.driver_pool = (
            DriverPool(
                self.engine,
                size=settings.database_pool_size,
                connect_timeout=settings.database_connect_timeout_seconds,
                checkout_timeout=settings.database_pool_timeout_seconds,
                statement_timeout=settings.database_statement_timeout_seconds,
                server_settings=postgres_server_settings(settings),
            )
            if self.dialect == "postgresql"
            else None
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session_scope(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block ends, rolls back on an error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        if self.driver_pool is not None:
            await self.driver_pool.close()
        await self.engine.dispose()
