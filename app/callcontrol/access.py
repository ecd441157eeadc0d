"""An authenticated call-control request, and the store its route works through."""

from dataclasses import dataclass

from app.auth.principal import Principal
from app.callcontrol.store import CallControlStore
from app.callcontrol.store_postgres import PostgresStore
from app.callcontrol.store_sqlalchemy import SqlAlchemyStore
from app.db.session import Database
from app.quotas.live import MinutesAnnouncer
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class CallControl:
    principal: Principal
    store: CallControlStore
    settings: Settings
    minutes: MinutesAnnouncer


def open_store(db: Database) -> CallControlStore:
    """The process's call-control store: asyncpg's on PostgreSQL, SQLAlchemy's elsewhere."""
    if db.driver_pool is None:
        return SqlAlchemyStore(db.engine)
    # Batches in flight at once: few, so that a burst forms large batches.
    concurrency = max(1, min(4, db.settings.database_pool_size // 2))
    return PostgresStore(db.driver_pool, batch_concurrency=concurrency)
