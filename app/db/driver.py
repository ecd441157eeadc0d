"""The call-control hot path's own asyncpg connections on PostgreSQL, and statements compiled
once from Core queries and prepared by asyncpg on each connection."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from sqlalchemy import ClauseElement, Executable
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler

APPLICATION_NAME = "antring call control"


class PoolTimeout(TimeoutError):
    """Every connection stayed busy for the whole checkout timeout (the database is slow or
    hung): the request may be retried."""


class ConnectionLost(ConnectionError):
    """The connection broke under a statement (the server ended it, or the driver lost track of
    its state): the request may be retried, on another connection."""


def _broken(conn: asyncpg.Connection, error: Exception) -> bool:
    """Whether `error` left `conn` unusable, besides asyncpg's connection errors: a connection
    the server ended, caught mid-protocol ("cannot switch to state ...; another operation is in
    progress"), or closed under the statement. A misuse of the API on a live connection is a
    bug, not a lost connection, and stays one."""
    if isinstance(error, asyncpg.exceptions.InternalClientError):
        return True
    return isinstance(error, asyncpg.exceptions.InterfaceError) and conn.is_closed()


class DriverPool:
    """asyncpg connections for the call-control hot paths on PostgreSQL, handed out first come,
    first served. A checkout from SQLAlchemy's pool costs more CPU than a registrar lookup's
    query, and its waiters are not served in order (a woken waiter can find the connection
    taken and queue again, which under load gives a few requests very long waits).

    A connection that is closed, still in a transaction, or was interrupted (cancelled) is not
    reused; a checkout that finds no idle one opens a new one.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        size: int,
        connect_timeout: float,
        checkout_timeout: float,
        statement_timeout: float,
        server_settings: dict[str, str],
    ) -> None:
        args = dict(engine.dialect.create_connect_args(engine.url)[1])
        # Named in pg_stat_activity, apart from the ORM pool's connections.
        args["server_settings"] = {
            "application_name": APPLICATION_NAME,
            **server_settings,
            **args.get("server_settings", {}),
        }
        # The SIP platform waits on these answers call by call: a database that does not answer
        # is reported (503) within seconds rather than holding every slot for a minute.
        args["timeout"] = connect_timeout
        args["command_timeout"] = statement_timeout
        self._connect_args = args
        self._checkout_timeout = checkout_timeout
        self._size = size
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
        """A connection whose statements commit by themselves, unless `BEGIN` made them one
        transaction: that one commits when the block ends, or rolls back on an error."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self._checkout_timeout)
        except TimeoutError:
            raise PoolTimeout("no call-control connection came free in time") from None
        try:
            conn = await self._checkout()
            try:
                yield conn
                if conn.is_in_transaction():
                    await conn.execute("COMMIT")
            except Exception as error:
                if _broken(conn, error):
                    conn.terminate()
                    self._drop_idle()
                    raise ConnectionLost(str(error)) from error
                await self._end_failed(conn, error)
                raise
            except BaseException:
                conn.terminate()  # cancelled mid-statement: its state is unknown
                raise
            self._give_back(conn)
        finally:
            self._slots.release()

    async def _end_failed(self, conn: asyncpg.Connection, error: Exception) -> None:
        """After an error: rolled back and reused, or, when the database did not answer (its
        state is then unknown), dropped."""
        if isinstance(error, (OSError, asyncpg.PostgresConnectionError)):
            conn.terminate()
            if not isinstance(error, TimeoutError):
                # The server ended this connection: it has likely ended (or restarted under)
                # the idle ones too.
                self._drop_idle()
            return
        if not conn.is_closed() and conn.is_in_transaction():
            try:
                await conn.execute("ROLLBACK")
            except Exception:
                conn.terminate()
                return
        self._give_back(conn)

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.terminate()

    async def read(self, query: "PreparedQuery", params: dict[str, Any]) -> list[asyncpg.Record]:
        """`query`'s rows, for a statement that changes nothing: asked again once, on a new
        connection, when the first one turns out to have been ended by the server (a
        restarted or failed-over database, an administrator's pg_terminate_backend)."""
        try:
            async with self.connection() as conn:
                return await query.all(conn, params)
        except (ConnectionLost, asyncpg.PostgresConnectionError):
            async with self.connection() as conn:
                return await query.all(conn, params)

    def _give_back(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed() or conn.is_in_transaction():
            conn.terminate()
        else:
            self._idle.append(conn)

    def usage(self) -> tuple[int, int]:
        """Connections handed out, and requests waiting for one."""
        waiting = len(getattr(self._slots, "_waiters", None) or ())
        return self._size - self._slots._value, waiting

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


_POSTGRES = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


class PreparedQuery:
    """A Core statement compiled once for asyncpg, which prepares it once per connection: this
    skips SQLAlchemy's per-execution work (it costs more CPU than the query). Use it only for
    values that need no processing beyond the driver's own (UUID, text, numbers, booleans, JSON,
    aware datetimes)."""

    def __init__(self, statement: Executable, *, column_keys: list[str] | None = None) -> None:
        compiled = cast(
            SQLCompiler,
            cast(ClauseElement, statement).compile(dialect=_POSTGRES, column_keys=column_keys),
        )
        self.sql = str(compiled)
        self._names = list(compiled.positiontup or [])
        # Literals in the statement (a COALESCE's 0) are parameters with a value of their own.
        self._literals = compiled.params

    def _values(self, params: dict[str, Any]) -> list[Any]:
        return [params[n] if n in params else self._literals[n] for n in self._names]

    async def all(self, conn: asyncpg.Connection, params: dict[str, Any]) -> list[asyncpg.Record]:
        records: list[asyncpg.Record] = await conn.fetch(self.sql, *self._values(params))
        return records

    async def first(
        self, conn: asyncpg.Connection, params: dict[str, Any]
    ) -> asyncpg.Record | None:
        rows = await self.all(conn, params)
        return rows[0] if rows else None
