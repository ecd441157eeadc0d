"""Fixtures for the contract tests (marker `contract`): the OpenAPI document as the app builds
it, and the tools that lint it and generate clients from it (npm packages from package.json,
openapi-python-client from requirements-dev.lock)."""

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from app.main import create_app
from tests.helpers.idp import IdentityProvider, require_provider
from tests.helpers.settings import make_settings

from .tools import NODE_BIN, missing_tool


@pytest.fixture(scope="session")
def node_bin() -> Path:
    """node_modules/.bin with every npm package the contract tests run."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing_tool("node and npm are not installed: the contract tests need Node 20.19+")
    missing = [
        tool
        for tool in ("redocly", "spectral", "openapi-typescript", "tsc")
        if not (NODE_BIN / tool).exists()
    ]
    if missing:
        missing_tool(
            f"{', '.join(missing)} not in node_modules: run `npm ci` in the repository root "
            "to enable the contract tests"
        )
    return NODE_BIN


@pytest.fixture(scope="session")
def openapi_document() -> dict[str, Any]:
    # Building the document touches no database: the URL is never opened.
    app = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    return app.openapi()


@pytest.fixture(scope="session")
def openapi_path(
    openapi_document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(json.dumps(openapi_document, indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
async def signed_in_openapi_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document as a service with an identity provider serves it (a real oidc-provider,
    tests/idp): the provider's sign-in beside the key."""
    require_provider()
    workdir = tmp_path_factory.mktemp("signed-in")
    with IdentityProvider(workdir / "idp") as idp:
        settings = make_settings(
            f"sqlite+aiosqlite:///{workdir / 'unused.db'}",
            oidc_issuer=idp.issuer,
            oidc_audience=idp.audience,
            oidc_docs_client_id="api-docs",
        )
        app = create_app(settings)
        # The start reads the provider's discovery document, where the sign-in's URLs are.
        async with app.router.lifespan_context(app):
            document = app.openapi()
    path = workdir / "openapi.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def python_client_generator() -> Path:
    generator = Path(sys.executable).with_name("openapi-python-client")
    if not generator.exists():
        missing_tool(
            "openapi-python-client is not installed: run `make install` "
            "(it is pinned in requirements-dev.lock)"
        )
    return generator
