"""What a database failure means: unavailable (retry later), or which constraint said no."""

import re

import asyncpg
from sqlalchemy import MetaData, UniqueConstraint
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout

# Failures to reach the database, rather than of a statement: the request may be retried.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # connection refused or reset, timeouts (TimeoutError is one)
    asyncpg.PostgresConnectionError,  # the connection was lost
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting, statement timeout
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout ran out
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.exceptions.TransactionRollbackError,  # deadlock or serialization failure: retry
    OperationalError,  # SQLAlchemy's: the database cannot be opened, or is locked
    SQLAlchemyTimeout,  # no pooled connection came free in time
)


def database_unavailable(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # SQLAlchemy wraps the driver's error (twice on asyncpg): what the driver said is a cause.
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, UNAVAILABLE_ERRORS):
            return True
        seen = seen.__cause__
    return False


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")


def _sqlite_unique_names(metadata: MetaData) -> dict[str, str]:
    """SQLite names the columns of a failed unique constraint (or unique index), not the
    constraint: the constraint's name by its "table.column, table.column" text."""
    names: dict[str, str] = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and isinstance(constraint.name, str):
                columns = ", ".join(f"{table.name}.{c.name}" for c in constraint.columns)
                names[columns] = constraint.name
        for index in table.indexes:
            if index.unique and isinstance(index.name, str):
                columns = ", ".join(f"{table.name}.{c.name}" for c in index.columns)
                names[columns] = index.name
    return names


def violated_constraint(error: IntegrityError, metadata: MetaData) -> str | None:
    """The name of the constraint an integrity error broke, on either backend (names follow
    the metadata's naming convention), or None when the backend does not say."""
    driver_error = error.orig.__cause__ if error.orig is not None else None
    name = getattr(driver_error, "constraint_name", None)
    if isinstance(name, str):
        return name
    found = _SQLITE_UNIQUE.search(str(error.orig))
    if found is None:
        return None
    return _sqlite_unique_names(metadata).get(found.group(1).strip())
