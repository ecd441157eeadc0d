"""The FastAPI application: routers, error handlers and what lives as long as the app."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from opentelemetry.sdk.trace import TracerProvider
from starlette.middleware.cors import CORSMiddleware

from app import edgecache
from app.audit.router import router as audit_router
from app.auth.openapi import describe_roles, offer_sign_in, swagger_ui
from app.auth.router import router as api_keys_router
from app.auth.service import Authenticator, token_verifier
from app.auth.throttle import FailedAuthThrottle
from app.bootstrap import bootstrap_if_empty
from app.callcontrol.access import open_store
from app.callcontrol.router import router as callcontrol_router
from app.crypto import PasswordCipher
from app.db.session import Database
from app.devices.router import router as devices_router
from app.errors import problem_openapi
from app.errors.catalogue import load_catalogues
from app.errors.handlers import install_error_handlers
from app.events.response import end_on_stop, server_stopping
from app.events.router import router as events_router
from app.events.service import STOPPING
from app.extensions.router import router as extensions_router
from app.health import metrics_router
from app.health import router as health_router
from app.imports.router import router as imports_router
from app.imports.runner import ImportRunner
from app.jobs.registry import start_scheduler
from app.jobs.router import router as jobs_router
from app.observability import tracing
from app.observability.access import RequestObserver
from app.observability.logs import configure_logging
from app.outbox.follower import OutboxFollower
from app.outbox.readers import OutboxReaders
from app.provisioning.router import files_router as provisioning_files_router
from app.provisioning.router import router as provisioning_router
from app.quotas.live import MinutesAnnouncer
from app.quotas.router import router as quotas_router
from app.registrations.router import call_control_router as registrations_router
from app.registrations.router import device_router as device_registrations_router
from app.request_limits import HeaderSizeLimit
from app.routing import concrete_paths_first
from app.scim.router import body_limit as scim_body_limit
from app.scim.router import router as scim_router
from app.settings import Settings, get_settings
from app.tenancy.outbound_router import router as outbound_policy_router
from app.tenancy.router import router as tenants_router
from app.users.parts_router import router as user_parts_router
from app.users.router import router as users_router
from app.users.router import toggles_router
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.router import router as webhooks_router

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
    {"name": "webhooks", "description": "Where the tenant's events are delivered."},
    {"name": "events", "description": "The tenant's events streamed to a browser as they happen."},
    {
        "name": "provisioning",
        "description": "IP phones fetch their files, softphones scan a QR code.",
    },
    {"name": "audit", "description": "Who changed what, when."},
    {"name": "call control", "description": "What the SIP platform asks call by call."},
    {"name": "jobs", "description": "Scheduled jobs (platform admin keys)."},
    {"name": "health", "description": "Probes, without a key."},
]

_ID = "$response.body#/id"
# Where the ids a route answers with are used (OpenAPI links, for clients and the fuzz's state
# machine): each create links to every route that acts on what it made.
LINKS = {
    ("create_tenant", "201"): {"tenant_id": _ID},
    ("create_api_key", "201"): {"tenant_id": "$request.path.tenant_id", "key_id": _ID},
    ("create_user", "201"): {"user_id": _ID},
    ("create_device", "201"): {"device_id": _ID},
    ("add_user_extension", "201"): {
        "user_id": "$request.path.user_id",
        "number": "$response.body#/number",
    },
    ("import_users", "202"): {"job_id": _ID},
    ("create_webhook", "201"): {"webhook_id": _ID},
    ("list_webhook_deliveries", "200"): {
        "webhook_id": "$request.path.webhook_id",
        "delivery_id": "$response.body#/items/0/id",
    },
}

CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-Tenant-ID",
    "If-Match",
    "Idempotency-Key",
    "X-Request-ID",
    "Prefer",
    "If-None-Match",
    "Last-Event-ID",
]
CORS_EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "Idempotent-Replayed",
    "Preference-Applied",
]

# Net allocations between two collections of the garbage collector's youngest generation
# while the app serves (Python's default is 700).
YOUNG_COLLECTION_THRESHOLD = 10_000


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The app; traced when `tracer_provider` is given or OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    settings = settings or get_settings()
    tracer_provider = tracer_provider or tracing.provider_from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        edges = None
        if settings.edge_rpc_urls:
            token = settings.edge_rpc_token
            edges = edgecache.EdgePusher(
                settings.edge_rpc_urls, token=token.get_secret_value() if token else None
            )
            edges.start()
        app.state.edge_pusher = edges
        # Every session of the app's database can name accounts the edges must drop.
        db = Database(settings, session_info={edgecache.PUSHER: edges} if edges else None)
        app.state.db = db
        app.state.callcontrol_store = open_store(db)
        app.state.authenticator = Authenticator(db.engine, ttl=settings.api_key_cache_seconds)
        app.state.token_verifier = token_verifier(settings, db.engine)
        if app.state.token_verifier is not None:
            # The keys for the first tokens, and where /docs sends people to sign in.
            await app.state.token_verifier.keys.read()
        instrumented = (
            tracing.instrument_database(db.engine, tracer_provider) if tracer_provider else []
        )
        if settings.uses_development_key:
            logger.warning(
                "Using the built-in development secret key: set ANTRING_SECRET_KEY and "
                "ANTRING_ENVIRONMENT=production for real data."
            )
        if settings.bootstrap:
            await bootstrap_if_empty(db)
        scheduler = start_scheduler(db, settings) if settings.scheduler_enabled else None
        # The outbox's readers, side by side: the webhook worker and the bus, both woken by
        # each commit (`dispatcher.wake`).
        readers = OutboxReaders()
        dispatcher = Dispatcher(
            db,
            app.state.cipher,
            allow_private=settings.webhooks_allow_private_urls,
            poll_seconds=settings.webhooks_poll_seconds,
            readers=readers,
        )
        app.state.dispatcher = dispatcher
        bus = None
        if settings.amqp_url:
            # The AMQP client (about 3 MB) is loaded by a process that publishes, only.
            from app.webhooks.bus import EventBus

            bus = EventBus(
                db,
                url=settings.amqp_url.get_secret_value(),
                exchange=settings.amqp_exchange,
                readers=readers,
            )
        imports = ImportRunner(
            db,
            app.state.cipher,
            sync_max_rows=settings.import_sync_max_rows,
            on_written=readers.written,
        )
        app.state.imports = imports
        # The event streams' one reader of the outbox, woken by the same commits.
        follower = OutboxFollower(
            db,
            readers,
            poll_seconds=settings.stream_poll_seconds,
            queue_events=settings.stream_queue_events,
            per_owner=settings.streams_per_key,
            per_tenant=settings.streams_per_tenant,
            per_process=settings.streams_per_process,
        )
        app.state.follower = follower
        # Calls charged here are announced (`quota.used_changed`) a few seconds later, together.
        minutes = MinutesAnnouncer(
            db, every_seconds=settings.minutes_flush_seconds, on_written=readers.written
        )
        app.state.minutes = minutes
        loop = asyncio.get_running_loop()
        reading: list[asyncio.Task[None]] = [
            loop.create_task(follower.run()),
            loop.create_task(minutes.run()),
            # The server waits for every open response before it stops: the streams end then.
            loop.create_task(end_on_stop(lambda: follower.end_all(STOPPING), server_stopping)),
        ]
        if settings.webhooks_enabled:
            reading.append(asyncio.get_running_loop().create_task(dispatcher.run()))
            if bus is not None:
                poll = settings.webhooks_poll_seconds
                reading.append(asyncio.get_running_loop().create_task(bus.run(poll_seconds=poll)))
        # What start-up built lives as long as the process: keep the garbage collector from
        # walking it again and again under load.
        gc.freeze()
        # And collect the young generation less often: each request allocates hundreds of
        # objects, so at Python's 700 it ran every few requests and took 6 % of a lookup,
        # walking the requests in flight each time. Their garbage is freed by reference
        # counting all the same; cycles wait a few requests longer.
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            await imports.close()
            for task in reading:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # What was charged and not announced yet.
            with contextlib.suppress(Exception):
                await minutes.flush()
            await dispatcher.close()
            await follower.close()
            if bus is not None:
                await bus.close()
            if edges is not None:
                await edges.close()
            for instrumentor in instrumented:
                instrumentor.uninstrument()
            if app.state.token_verifier is not None:
                await app.state.token_verifier.close()
            await db.dispose()

    # /docs and /redoc from assets a pinned package ships: they work without internet.
    app = FastAPIOffline(
        # /docs is app/auth/openapi.py's: it can sign in with the identity provider.
        docs_url=None,
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
    # Middleware is pure ASGI; the last added is the outermost.
    cors: dict[str, Any] | None = (
        {
            "allow_origins": settings.cors_origins,
            "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
            "allow_headers": CORS_REQUEST_HEADERS,
            "expose_headers": CORS_EXPOSED_HEADERS,
            "max_age": 600,
        }
        if settings.cors_origins
        else None
    )
    if cors is not None:
        app.add_middleware(CORSMiddleware, **cors)
    app.add_middleware(
        RequestObserver,
        header_limit=HeaderSizeLimit(settings.max_header_bytes, cors=cors),
        request_ids=settings.request_ids,
        log=settings.access_log,
        metrics=settings.metrics_enabled,
    )
    if tracer_provider is not None:
        tracing.instrument_app(app, tracer_provider)
    app.state.settings = settings
    app.state.cipher = PasswordCipher(settings.secret_key.get_secret_value())
    app.state.auth_throttle = FailedAuthThrottle(settings.auth_failure_limit)
    app.state.token_verifier = None
    install_error_handlers(app)
    # A missing compiled catalogue stops the service here, not at its first error.
    load_catalogues()
    problem_openapi(app, links=LINKS)
    # The call-control routes come first: they take most of the traffic and routes match in order.
    for router in (
        callcontrol_router,
        registrations_router,
        health_router,
        tenants_router,
        outbound_policy_router,
        api_keys_router,
        imports_router,
        users_router,
        toggles_router,
        user_parts_router,
        devices_router,
        device_registrations_router,
        extensions_router,
        quotas_router,
        webhooks_router,
        events_router,
        provisioning_router,
        provisioning_files_router,
        audit_router,
        jobs_router,
        scim_router,
    ):
        # An import's file may be larger than any other body; /scim/v2 answers a body over
        # the limit itself, in SCIM's shape.
        limit = (
            settings.import_max_bytes
            if router is imports_router
            else scim_body_limit(settings)
            if router is scim_router
            else None
        )
        app.include_router(router, max_body_size=limit)
    if settings.metrics_enabled and settings.metrics_port is None:
        app.include_router(metrics_router)
    describe_roles(app)
    offer_sign_in(app, settings)
    swagger_ui(app, settings)
    concrete_paths_first(app.routes)
    return app


def app_factory() -> FastAPI:
    """The served app (`antring serve`), with the service's own log lines on stderr."""
    settings = get_settings()
    configure_logging(level=settings.log_level, json_lines=settings.log_format == "json")
    return create_app(settings)
