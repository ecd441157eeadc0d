"""Uniqueness is the database's job: a flush whose constraint says no becomes that constraint's
domain error (a 409), told apart by the constraint's name."""

from collections.abc import Mapping

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import Base
from app.db.errors import violated_constraint
from app.errors.types import AppError


async def flush_or_conflict(session: AsyncSession, conflicts: Mapping[str, AppError]) -> None:
    """Flushes; an integrity error of a constraint named in `conflicts` raises its error, any
    other integrity error is raised as it is. (The errors are made before the flush: a failed
    one expires the session's objects.)"""
    try:
        await session.flush()
    except IntegrityError as error:
        conflict = conflicts.get(violated_constraint(error, Base.metadata) or "")
        if conflict is None:
            raise
        raise conflict from None
