"""OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (the SDK reads its own
OTEL_* variables): one trace per request, with the database's spans (SQLAlchemy's, and asyncpg's
for the call-control hot path) under it."""

import os
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine


def provider_from_environment() -> TracerProvider | None:
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "antring-accounts"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="health/live,metrics"
    )


def instrument_database(engine: AsyncEngine, provider: TracerProvider) -> list[Any]:
    """Instruments the engine and asyncpg; returns what to uninstrument at shutdown."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    orm = SQLAlchemyInstrumentor()
    # It works with SQLAlchemy 2.1's engine events, though its declared range ends at 2.0.
    orm.instrument(engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True)
    asyncpg = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    asyncpg.instrument(tracer_provider=provider)
    return [orm, asyncpg]
