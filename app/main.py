"""The FastAPI application: routers, error handlers and what lives as long as the app."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

from app.auth.router import router as api_keys_router
from app.auth.service import Authenticator
from app.auth.throttle import FailedAuthThrottle
from app.bootstrap import bootstrap_if_empty
from app.callcontrol.access import open_store
from app.callcontrol.router import router as callcontrol_router
from app.crypto import PasswordCipher
from app.db.session import Database
from app.devices.router import router as devices_router
from app.directory.router import router as directory_router
from app.errors import install_error_handlers, problem_openapi
from app.extensions.router import router as extensions_router
from app.health import router as health_router
from app.jobs.registry import start_scheduler
from app.jobs.router import router as jobs_router
from app.quotas.router import router as quotas_router
from app.request_limits import HeaderSizeLimit
from app.settings import Settings, get_settings
from app.tenants.router import router as tenants_router
from app.users.router import router as users_router

logger = logging.getLogger(__name__)

__version__ = version("antring")

DESCRIPTION = """
Configure the agents of a cloud call center: their SIP accounts (devices), internal extensions,
monthly outbound-minute quota, and the switches "outbound calls allowed" and "auto-answer".

Every `/v1` route needs an API key: press **Authorize** and paste it. A platform key acts on the
tenant named in the `X-Tenant-ID` header. Errors are `application/problem+json` (RFC 9457).
"""


# The order an operator meets them in: /docs shows the sections so.
OPENAPI_TAGS = [
    {
        "name": "users",
        "description": "The Users table: agents with their devices, extensions and minutes.",
    },
    {"name": "devices", "description": "SIP accounts, one per phone, softphone or browser."},
    {"name": "extensions", "description": "Internal numbers of 2 to 4 digits."},
    {"name": "quota", "description": "Monthly outbound minutes: used and allowed."},
    {"name": "toggles", "description": "Outbound calls allowed; auto-answer."},
    {"name": "calls", "description": "The ledger of outbound calls."},
    {"name": "tenants", "description": "Companies (platform keys)."},
    {"name": "api keys", "description": "Keys of a tenant (platform keys)."},
    {"name": "call control", "description": "What the SIP platform asks call by call."},
    {"name": "jobs", "description": "Scheduled jobs (platform admin keys)."},
    {"name": "health", "description": "Probes, without a key."},
]

CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-Tenant-ID",
    "If-Match",
    "Idempotency-Key",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", "X-Request-ID"]


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings)
        app.state.db = db
        app.state.callcontrol_store = open_store(db)
        app.state.authenticator = Authenticator(db.engine, ttl=settings.api_key_cache_seconds)
        if settings.uses_development_key:
            logger.warning(
                "Using the built-in development secret key: set ANTRING_SECRET_KEY and "
                "ANTRING_ENVIRONMENT=production for real data."
            )
        if settings.bootstrap:
            await bootstrap_if_empty(db)
        scheduler = start_scheduler(db, settings) if settings.scheduler_enabled else None
        # What start-up built lives as long as the process: keep the garbage collector from
        # walking it again and again under load.
        gc.freeze()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            await db.dispose()

    # /docs and /redoc from assets a pinned package ships: they work without internet.
    app = FastAPIOffline(
        title="AntRing accounts service",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        # Relative: the origin that served the document, whatever the deployment calls it.
        servers=[{"url": "/", "description": "The origin that served this document"}],
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        max_body_size=settings.max_body_bytes,
        # `/v1/users/` is not `/v1/users`: a redirect would name this host as the app sees it.
        redirect_slashes=False,
    )
    app.add_middleware(HeaderSizeLimit, max_bytes=settings.max_header_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.state.settings = settings
    app.state.cipher = PasswordCipher(settings.secret_key.get_secret_value())
    app.state.auth_throttle = FailedAuthThrottle(settings.auth_failure_limit)
    install_error_handlers(app)
    problem_openapi(app)
    # The call-control routes come first: they take most of the traffic and routes match in order.
    for router in (
        callcontrol_router,
        health_router,
        tenants_router,
        api_keys_router,
        directory_router,
        users_router,
        devices_router,
        extensions_router,
        quotas_router,
        jobs_router,
    ):
        app.include_router(router)
    return app


def app_factory() -> FastAPI:
    """The served app (`antring serve`), with the service's own log lines on stderr."""
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    # The scheduler logs each run of each job at INFO: once a minute, forever.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return create_app(settings)
