"""Prometheus metrics. With several workers (`antring serve --workers N`) every worker writes
to PROMETHEUS_MULTIPROC_DIR and a scrape adds them up."""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "antring_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "antring_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter(
    "antring_call_authorizations_total", "Outbound call authorizations, by answer.", ["reason"]
)
HOLDS_GRANTED = Counter(
    "antring_holds_granted_total", "Granted calls of limited users that hold minutes."
)
HOLD_SECONDS_GRANTED = Counter(
    "antring_hold_seconds_granted_total", "Seconds held by granted calls of limited users."
)
CHARGED_SECONDS = Counter(
    "antring_usage_charged_seconds_total", "Seconds charged by recorded usage reports."
)
LOOKUP_BATCH = Histogram(
    "antring_registrar_lookup_batch_size",
    "Registrar lookups answered together (by one statement on PostgreSQL).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 200),
)
JOB_RUNS = Counter("antring_job_runs_total", "Runs of scheduled jobs.", ["job", "outcome"])
JOB_LAST_SUCCESS = Gauge(
    "antring_job_last_success_timestamp_seconds",
    "When each job last finished without error (Unix time).",
    ["job"],
    multiprocess_mode="max",
)
POOL_IN_USE = Gauge(
    "antring_db_pool_connections_in_use",
    "Database connections handed out, by pool.",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "antring_db_pool_waiting_requests",
    "Requests waiting for a database connection, by pool.",
    ["pool"],
    multiprocess_mode="livesum",
)
HOLDS_OPEN = Gauge(
    "antring_holds_open",
    "Calls in progress holding minutes of a limited user (read at scrape time).",
    multiprocess_mode="max",
)
SECONDS_HELD = Gauge(
    "antring_seconds_held",
    "Seconds held by calls in progress (read at scrape time).",
    multiprocess_mode="max",
)


def _registry() -> CollectorRegistry:
    """This process's registry, or, with PROMETHEUS_MULTIPROC_DIR, every worker's added up."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format: this process's, or every worker's."""
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def serve_metrics(port: int, *, host: str) -> None:
    """/metrics without a key on a port of its own, from a thread of this process (with
    several workers: the supervisor, adding up every worker's)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=_registry())
