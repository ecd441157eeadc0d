"""Liveness and readiness probes (no key needed)."""

from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.deps import DatabaseDep
from app.routing import api_router

router = api_router(prefix="/health", tags=["health"])


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
