"""What an on-call engineer reads: request ids on answers, problems and log lines; one JSON
access line per request; Prometheus metrics; traces with the database's spans; and never a
secret in any of them."""

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_correlation_id import CorrelationIdFilter
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pythonjsonlogger.json import JsonFormatter

from app.db.session import Database
from app.main import create_app
from app.observability import logs
from app.observability.logs import configure_logging, quiet_noisy_loggers
from tests.helpers.api import TenantKeys, add_device, assert_problem, create_user, new_platform_key
from tests.helpers.callcontrol import authorize, new_agent, report
from tests.helpers.settings import make_settings


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log line of the service, as `ANTRING_LOG_FORMAT=json` writes it."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(CorrelationIdFilter(uuid_length=None, default_value="-"))
    handler.setFormatter(
        JsonFormatter(
            "%(levelname)s %(name)s %(message)s %(correlation_id)s",
            rename_fields={"correlation_id": "request_id"},
        )
    )
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet_noisy_loggers()
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


async def test_a_request_id_is_kept_echoed_and_carried_by_problems_and_log_lines(
    client: httpx.AsyncClient, tenant: TenantKeys, json_log: io.StringIO
) -> None:
    mine = {**tenant.admin, "X-Request-ID": "a84b4c76e66710@pc33"}
    missing = await client.get("/v1/users/00000000-0000-0000-0000-000000000000", headers=mine)

    assert missing.headers["x-request-id"] == "a84b4c76e66710@pc33"
    assert assert_problem(missing, 404)["request_id"] == "a84b4c76e66710@pc33"
    [access] = [
        line
        for line in _lines(json_log)
        if line["name"] == "antring.access" and line["request_id"] == "a84b4c76e66710@pc33"
    ]
    assert access["method"] == "GET"
    assert access["route"] == "/v1/users/{user_id}"
    assert access["status"] == 404
    assert isinstance(access["duration_ms"], float)
    assert access["tenant_id"] == str(tenant.id)
    assert access["key_id"]

    made = await client.get("/v1/users", headers=tenant.admin)
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    bad = await client.get("/v1/users", headers={**tenant.admin, "X-Request-ID": "a b" * 200})
    assert bad.headers["x-request-id"] != "a b" * 200


async def test_a_request_id_may_come_in_the_query_from_clients_that_cannot_set_headers(
    client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    """Kamailio's kept connections send no headers of their own: the SIP Call-ID comes as
    `request_id`, percent-encoded."""
    answered = await client.get(
        "/v1/users", params={"request_id": "1-42@10.0.0.7", "limit": 1}, headers=tenant.admin
    )
    assert answered.headers["x-request-id"] == "1-42@10.0.0.7"
    both = await client.get(
        "/v1/users?request_id=q1",
        headers={**tenant.admin, "X-Request-ID": "from-the-header"},
    )
    assert both.headers["x-request-id"] == "from-the-header"
    bad = await client.get("/v1/users?request_id=a%20b", headers=tenant.admin)
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])


async def test_no_secret_reaches_any_log_line(
    client: httpx.AsyncClient, db: Database, platform: dict[str, str], json_log: io.StringIO
) -> None:
    """A day of operations at DEBUG: keys, passwords and HA1s are in the answers, never in the
    logs."""
    created = await client.post(
        "/v1/tenants", json={"name": "Logs", "sip_domain": "logs.sip.test"}, headers=platform
    )
    tenant_id = created.json()["id"]
    key = await client.post(
        f"/v1/tenants/{tenant_id}/api-keys",
        json={"name": "ops", "role": "admin"},
        headers=platform,
    )
    admin = {"Authorization": f"Bearer {key.json()['key']}"}
    user = await create_user(client, admin)
    device = await add_device(
        client, admin, user["id"], name="logs.desk", password="Blue7Harbor42x"
    )
    rotated = await client.post(f"/v1/devices/{device['id']}/password", json={}, headers=admin)
    config = await client.get(f"/v1/devices/{device['id']}/config?reveal=password", headers=admin)
    cc = await client.post(
        f"/v1/tenants/{tenant_id}/api-keys",
        json={"name": "edge", "role": "call_control"},
        headers=platform,
    )
    edge = {"Authorization": f"Bearer {cc.json()['key']}"}
    lookup = await client.get(
        "/v1/call-control/sip-accounts/logs.desk", params={"domain": "logs.sip.test"}, headers=edge
    )
    await client.get("/v1/users", headers={"Authorization": "Bearer ark_guessed-wrong"})

    secrets = [
        key.json()["key"],
        cc.json()["key"],
        user["default_device_password"],
        "Blue7Harbor42x",
        rotated.json()["password"],
        config.json()["web"]["password"],
        lookup.json()["ha1"],
        lookup.json()["ha1_sha256"],
        "ark_guessed-wrong",
    ]
    logged = json_log.getvalue()
    assert "antring.access" in logged
    for secret in secrets:
        assert secret not in logged


async def test_json_log_lines_as_the_served_app_writes_them(
    migrated_url: str,
    db: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`antring serve` configures logging before its app answers: every line on stderr is
    one JSON object, the access line of each request among them."""
    root, access = logging.getLogger(), logging.getLogger("antring.access")
    saved = root.handlers[:], root.level, access.handlers[:], access.propagate
    monkeypatch.setattr(logs, "_access_lines", None)
    try:
        configure_logging(level="INFO", json_lines=True)
        logging.getLogger("antring.test").info("hello", extra={"route": "/x"})
        application = create_app(make_settings(migrated_url))
        platform = await new_platform_key(db)
        transport = httpx.ASGITransport(app=application)
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c,
        ):
            named = {**platform, "X-Request-ID": 'quote"and\\slash'}
            created = await c.post(
                "/v1/tenants", json={"name": "Lines", "sip_domain": "lines.sip.test"}, headers=named
            )
            assert created.status_code == 201
            await c.get("/health/live")
        gathered = logs.access_lines()
        assert gathered is not None
        gathered.flush()  # the flushing thread does this every tenth of a second
    finally:
        monkeypatch.setattr(logs, "_access_lines", None)  # before capsys closes its stream
        root.handlers[:], level, access.handlers[:], access.propagate = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert all(line["time"] and line["level"] and "request_id" in line for line in lines)
    assert (lines[0]["logger"], lines[0]["message"]) == ("antring.test", "hello")
    assert lines[0]["route"] == "/x"
    [tenant_line] = [x for x in lines if x.get("route") == "/v1/tenants"]
    assert tenant_line["logger"] == "antring.access"
    assert tenant_line["message"].startswith("POST /v1/tenants 201 ")
    assert tenant_line["request_id"] == 'quote"and\\slash'
    assert (tenant_line["method"], tenant_line["status"]) == ("POST", 201)
    assert tenant_line["key_id"] and tenant_line["tenant_id"] is None
    assert isinstance(tenant_line["duration_ms"], float)
    [live] = [x for x in lines if x.get("route") == "/health/live"]
    assert re.fullmatch(r"[0-9a-f]{32}", live["request_id"])
    assert (live["status"], live["key_id"]) == (200, None)


async def test_metrics_count_requests_decisions_and_holds_for_platform_keys(
    client: httpx.AsyncClient, platform: dict[str, str], tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant, limit_minutes=5)
    await authorize(client, agent, "m-1")  # granted: holds 300 s
    assert (await report(client, agent, "m-0", 61)).status_code == 201

    scraped = await client.get("/metrics", headers=platform)

    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert (
        'antring_http_requests_total{method="POST",route="/v1/call-control/authorizations",status="200"}'
        in text
    )
    assert re.search(r'antring_call_authorizations_total\{reason="ok"\} [1-9]', text)
    assert re.search(r"antring_holds_open [1-9]", text)
    assert re.search(r"antring_seconds_held [1-9]", text)
    assert "antring_usage_charged_seconds_total" in text
    assert 'antring_db_pool_connections_in_use{pool="orm"}' in text
    assert_problem(await client.get("/metrics", headers=tenant.admin), 403)
    assert_problem(await client.get("/metrics"), 401)


@pytest.fixture
async def traced(
    migrated_url: str, db: Database
) -> AsyncIterator[tuple[FastAPI, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    application = create_app(make_settings(migrated_url), tracer_provider=provider)
    async with application.router.lifespan_context(application):
        yield application, exporter


async def test_one_trace_per_request_with_the_database_spans_under_it(
    traced: tuple[FastAPI, InMemorySpanExporter], db: Database, backend: str
) -> None:
    application, exporter = traced
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        platform = await new_platform_key(db)
        response = await c.post(
            "/v1/tenants",
            json={"name": "Traced", "sip_domain": "traced.sip.test"},
            headers=platform,
        )
        assert response.status_code == 201
        exporter.clear()
        await c.get(f"/v1/tenants/{response.json()['id']}", headers=platform)

    spans = exporter.get_finished_spans()
    assert len({span.context.trace_id for span in spans}) == 1
    [server] = [s for s in spans if s.parent is None]
    assert server.attributes is not None
    assert server.attributes.get("http.route") == "/v1/tenants/{tenant_id}"
    database = [s for s in spans if s.attributes and s.attributes.get("db.system")]
    assert database, [s.name for s in spans]
    assert {s.attributes.get("db.system") for s in database} <= {"sqlite", "postgresql"}
    assert all(s.context.trace_id == server.context.trace_id for s in database)
