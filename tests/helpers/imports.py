"""Files as operators send them to the import, and what the database holds after one."""

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy import func, select

from app.db.session import Database
from app.devices.models import Device
from app.extensions.models import Extension
from app.outbox.models import AuditEntry, Event
from app.user_record.models import User

HEADER = (
    "display_name,email,external_ref,extensions,devices,limit_minutes,outbound_allowed,auto_answer"
)


def csv_file(*rows: str, header: str = HEADER, newline: str = "\r\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode()


def jsonl_file(*rows: dict[str, Any]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


async def post_import(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: bytes,
    *,
    dry_run: bool = False,
    content_type: str = "text/csv",
) -> httpx.Response:
    return await client.post(
        "/v1/users/import",
        content=body,
        params={"dry_run": "true"} if dry_run else None,
        headers={**headers, "Content-Type": content_type},
    )


async def stored_counts(db: Database) -> dict[str, int]:
    """How many users, devices, extensions, events and audit entries are committed."""
    counts = {}
    async with db.engine.connect() as conn:
        for model in (User, Device, Extension, Event, AuditEntry):
            counts[model.__tablename__] = (
                await conn.execute(select(func.count()).select_from(model))
            ).scalar_one()
    return counts


async def db_objects(db: Database, statement: Any) -> list[Any]:
    """The ORM objects a select of one entity finds, as now committed."""
    async with db.sessionmaker() as session:
        return list((await session.scalars(statement)).all())


async def finished_job(
    client: httpx.AsyncClient, headers: dict[str, str], location: str
) -> dict[str, Any]:
    """The import job at `location` once it has ended (polled as an SPA would)."""
    for _ in range(600):
        response = await client.get(location, headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"the import {location} did not end: {job}")
