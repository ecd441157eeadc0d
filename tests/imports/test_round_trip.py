import io
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.db.session import Database
from app.main import create_app
from bench.imports import agents_csv
from tests.helpers.api import TenantKeys
from tests.helpers.imports import finished_job, post_import, stored_counts
from tests.helpers.settings import make_settings

AGENTS = 10_000


@pytest.fixture
async def served(migrated_url: str, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app as it is served: keys trusted for a few seconds, so that polls of a running
    import do not wait on SQLite's one writer (the import) to authenticate."""
    app: FastAPI = create_app(make_settings(migrated_url, api_key_cache_seconds=60))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            yield c


async def test_ten_thousand_agents_import_and_export_back_to_the_same_file(
    served: httpx.AsyncClient, tenant: TenantKeys, db: Database
) -> None:
    out = io.BytesIO()
    agents_csv(AGENTS, out)
    body = out.getvalue()
    before = await stored_counts(db)

    response = await post_import(served, tenant.admin, body)

    assert response.status_code == 202, response.text
    job = await finished_job(served, tenant.admin, response.headers["location"])
    assert (job["status"], job["rows_done"], job["report"]["created"]) == (
        "succeeded",
        AGENTS,
        AGENTS,
    )
    assert len(job["report"]["new_devices"]) == AGENTS
    counts = await stored_counts(db)
    assert (counts["user_account"], counts["device"], counts["extension"]) == (AGENTS,) * 3
    # user.created, device.created and extension.added for each, with their audit entries.
    written = (counts["event"] - before["event"], counts["audit_entry"] - before["audit_entry"])
    assert written == (3 * AGENTS, 3 * AGENTS)

    exported = await served.get("/v1/users/export", headers=tenant.admin)

    assert exported.status_code == 200
    assert exported.content == body
