"""Liveness and readiness probes (no key needed), and the Prometheus metrics."""

from fastapi import Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.auth.deps import PlatformRead
from app.deps import DatabaseDep
from app.errors import Forbidden, Unauthorized, responses
from app.observability import metrics
from app.quotas.repository import open_holds
from app.routing import api_router

router = api_router(prefix="/health", tags=["health"])
metrics_router = api_router(tags=["health"], responses=responses(Unauthorized, Forbidden))


# The probes need no key: the document says so instead of inheriting the API's security.
@router.get("/live", openapi_extra={"security": []})
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/ready",
    responses={503: {"description": "The database cannot be reached."}},
    openapi_extra={"security": []},
)
async def ready(db: DatabaseDep) -> JSONResponse:
    """The process can reach its database."""
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def prometheus_metrics(db: DatabaseDep, _key: PlatformRead) -> Response:
    """Prometheus metrics of this service (a platform key)."""
    holds, seconds = await open_holds(db)
    metrics.HOLDS_OPEN.set(holds)
    metrics.SECONDS_HELD.set(seconds)
    metrics.POOL_IN_USE.labels("orm").set(db.engine.sync_engine.pool.checkedout())  # type: ignore[attr-defined]
    if db.driver_pool is not None:
        in_use, waiting = db.driver_pool.usage()
        metrics.POOL_IN_USE.labels("call_control").set(in_use)
        metrics.POOL_WAITING.labels("call_control").set(waiting)
    body, media_type = metrics.exposition()
    return Response(body, media_type=media_type)
