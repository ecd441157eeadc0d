"""Fixtures for the real-SIP tests (marker `sip`): one service and one Kamailio per session."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import (
    EdgePlan,
    Kamailio,
    MakeTenant,
    Rtpengine,
    Service,
    Sipp,
    Tenant,
    find_tool,
    new_edge_plan,
    start_kamailio,
    start_rtpengine,
    start_service,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sip: end-to-end tests with real Kamailio and sipp (deploy/kamailio)"
    )
    config.addinivalue_line(
        "markers", "browser: the reference web phone in headless Chromium (deploy/webphone)"
    )


@pytest.fixture(scope="session")
def sip_tools() -> None:
    tools = ("kamailio", "sipp", "rtpengine", "rtpengine-ctl", "linphonec")
    missing = [tool for tool in tools if find_tool(tool) is None]
    if not missing:
        return
    message = (
        f"{' and '.join(missing)} not installed; run deploy/kamailio/install-deps.sh "
        "to enable the SIP tests"
    )
    # In CI a missing tool is a broken setup, not a reason to skip.
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def edge_plan() -> EdgePlan:
    """The session Kamailio's JSON-RPC address, which the service pushes cache removals to."""
    return new_edge_plan()


@pytest.fixture(scope="session")
def service(
    sip_tools: None, edge_plan: EdgePlan, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    svc = start_service(tmp_path_factory.mktemp("antring"), edge_plan)
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def rtpengine(sip_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rtpengine]:
    engine = start_rtpengine(tmp_path_factory.mktemp("rtpengine"))
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def kamailio(
    service: Service,
    edge_plan: EdgePlan,
    rtpengine: Rtpengine,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Kamailio]:
    # A platform key with the call_control role serves every tenant, found by SIP domain; every
    # call's media goes through rtpengine, as in production.
    kam = start_kamailio(
        tmp_path_factory.mktemp("kamailio"),
        service.url,
        service.call_control_key,
        plan=edge_plan,
        rtpengine=rtpengine,
    )
    try:
        yield kam
    finally:
        kam.stop()


@pytest.fixture
def sipp(kamailio: Kamailio, tmp_path: Path) -> Iterator[Sipp]:
    runner = Sipp(kamailio, tmp_path)
    try:
        yield runner
    finally:
        runner.stop_all()


@pytest.fixture
def make_tenant(service: Service) -> Iterator[MakeTenant]:
    """Creates tenants with a unique SIP domain; returns them with an admin API client."""
    tenants: list[Tenant] = []

    def factory(name: str = "Acme", *, billing_increment_seconds: int | None = None) -> Tenant:
        domain = f"{re.sub(r'[^a-z0-9]+', '', name.lower())}-{uuid.uuid4().hex[:8]}.test"
        tenant = service.create_tenant(name, domain)
        if billing_increment_seconds is not None:
            resp = tenant.api.patch(
                f"/v1/tenants/{tenant.id}",
                json={"billing_increment_seconds": billing_increment_seconds},
            )
            assert resp.status_code == 200, resp.text
        tenants.append(tenant)
        return tenant

    try:
        yield factory
    finally:
        for tenant in tenants:
            tenant.api.close()
