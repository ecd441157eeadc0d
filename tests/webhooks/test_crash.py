"""A service killed with SIGKILL in the middle of a burst of changes loses no event: every
change it committed is delivered once it runs again (the outbox is written in the change's own
transaction)."""

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.db.session import Database
from app.user_record.models import User
from bench.server import Server
from tests.helpers.api import bearer, db_rows, new_platform_key
from tests.helpers.receiver import Receiver
from tests.helpers.settings import TEST_SECRET_KEY


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooked = Receiver()
    await hooked.start()
    yield hooked
    await hooked.close()


def _service(migrated_url: str, log: Path) -> Server:
    env = {
        **os.environ,
        "DATABASE_URL": migrated_url,
        "ANTRING_SECRET_KEY": TEST_SECRET_KEY,
        "ANTRING_BOOTSTRAP": "false",
        "ANTRING_SCHEDULER_ENABLED": "false",
        "ANTRING_WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
        "ANTRING_WEBHOOKS_POLL_SECONDS": "0.2",
        "ANTRING_API_KEY_CACHE_SECONDS": "0",
    }
    return Server(env=env, workers=1, log_path=log)


async def test_a_killed_service_loses_no_committed_event(
    migrated_url: str, db: Database, receiver: Receiver, tmp_path: Path
) -> None:
    platform = await new_platform_key(db)
    service = _service(migrated_url, tmp_path / "service.log")
    await asyncio.to_thread(service.start)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as client:
        tenant = await client.post(
            "/v1/tenants", json={"name": "Crash", "sip_domain": "crash.sip.test"}, headers=platform
        )
        key = await client.post(
            f"/v1/tenants/{tenant.json()['id']}/api-keys",
            json={"name": "burst", "role": "admin"},
            headers=platform,
        )
        admin = bearer(key.json()["key"])
        hook = await client.post(
            "/v1/webhooks",
            json={"url": receiver.url, "event_types": ["user.created"]},
            headers=admin,
        )
        assert hook.status_code == 201, hook.text

        async def create(i: int) -> int:
            try:
                response = await client.post(
                    "/v1/users", json={"display_name": f"Burst {i}"}, headers=admin
                )
                return response.status_code
            except httpx.HTTPError:
                return 0

        burst = [asyncio.create_task(create(i)) for i in range(200)]
        while sum(task.done() for task in burst) < 40:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        os.killpg(service.pid, signal.SIGKILL)
        statuses = await asyncio.gather(*burst)
    await asyncio.to_thread(service.stop)
    assert 0 in statuses  # the kill cut requests off

    restarted = _service(migrated_url, tmp_path / "restarted.log")
    await asyncio.to_thread(restarted.start)
    try:
        committed = {
            str(row.id)
            for row in await db_rows(
                db, select(User.id).where(User.tenant_id == uuid.UUID(tenant.json()["id"]))
            )
        }
        assert len(committed) >= sum(1 for s in statuses if s == 201)
        # Deliveries the killed process had claimed come back when their lease runs out.
        for _ in range(400):
            delivered = {_resource(got.body) for got in receiver.received}
            if committed <= delivered:
                break
            await asyncio.sleep(0.1)
        assert committed <= delivered
        assert delivered <= committed  # nothing for a change that was not committed
    finally:
        await asyncio.to_thread(restarted.stop)


def _resource(body: str) -> str:
    import json

    resource: str = json.loads(body)["data"]["resource"]["id"]
    return resource
