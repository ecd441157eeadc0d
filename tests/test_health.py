from pathlib import Path

import httpx

from app.main import create_app
from tests.helpers.settings import make_settings


async def test_liveness_and_readiness_need_no_key(client: httpx.AsyncClient) -> None:
    live = await client.get("/health/live")
    ready = await client.get("/health/ready")

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ok", "database": "ok"})


async def test_readiness_fails_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    unreachable = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'antring.db'}"
    app = create_app(make_settings(unreachable))

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            live = await c.get("/health/live")
            ready = await c.get("/health/ready")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "unreachable"}
