"""Another service builds on the document: openapi-python-client generates a client from it,
and that client, as generated, works against `antring serve` on a fresh SQLite database:
users listed, created and updated, and the errors a client must handle (409, 412, 422) parsed
as the problems they are.

The generated package is imported inside each test, as a client's own code would import it."""

import importlib
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from bench.server import Server, run_cli
from tests.helpers.settings import TEST_SECRET_KEY

from .tools import run_tool

pytestmark = pytest.mark.contract

PACKAGE = "antring_client"


@dataclass(frozen=True)
class Service:
    base_url: str
    admin_key: str


@pytest.fixture(scope="module")
def generated_client(
    python_client_generator: Path, openapi_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    out = tmp_path_factory.mktemp("python-client")
    config = out / "config.yaml"
    # No formatting hooks: the code is imported once and thrown away. An import's file (CSV or
    # JSON lines) is sent as the bytes it is.
    config.write_text(
        f"package_name_override: {PACKAGE}\npost_hooks: []\n"
        "content_type_overrides:\n"
        "  text/csv: application/octet-stream\n"
        "  application/x-ndjson: application/octet-stream\n",
        encoding="utf-8",
    )
    run_tool(
        [
            python_client_generator,
            "generate",
            "--path",
            openapi_path,
            "--meta",
            "none",
            "--config",
            config,
            "--output-path",
            out / PACKAGE,
            # A construct the generator cannot express is a contract failure, not a warning.
            "--fail-on-warning",
        ],
        cwd=out,
    )
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp("service")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'antring.db'}",
        "ANTRING_SECRET_KEY": TEST_SECRET_KEY,
        "ANTRING_BOOTSTRAP": "false",
        "ANTRING_SCHEDULER_ENABLED": "false",
    }
    run_cli(env, "migrate")
    tenant = run_cli(env, "tenant", "create", "--name", "Contract", "--sip-domain", "contract.test")
    key = run_cli(env, "api-key", "create", "--tenant", tenant, "--role", "admin", "--name", "x")
    with Server(env=env, workers=1, log_path=workdir / "server.log") as server:
        yield Service(server.base_url, key)


@pytest.fixture
def client(generated_client: ModuleType, service: Service) -> Iterator[Any]:
    # Any status the document does not list raises: the client must know every answer.
    with generated_client.AuthenticatedClient(
        base_url=service.base_url,
        token=service.admin_key,
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(10.0),
    ) as api:
        yield api


def unique_ref() -> str:
    return f"hr-{uuid.uuid4().hex[:12]}"


def test_list_create_and_update_users(client: Any) -> None:
    from antring_client.api.users import create_user, list_users, update_user
    from antring_client.models import DeviceKind, UserCreate, UserSort, UserUpdate

    ref = unique_ref()
    created = create_user.sync_detailed(
        client=client, body=UserCreate(display_name="Nguyễn Thị Lan", external_ref=ref)
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    user = created.parsed
    assert isinstance(user.id, uuid.UUID)
    assert (user.external_ref, user.outbound_allowed, user.auto_answer) == (ref, True, False)
    assert user.limit_minutes is None
    assert [device.kind for device in user.devices] == [DeviceKind.WEB]

    newest_first = UserSort("-created_at")
    page = list_users.sync_detailed(client=client, search="Nguyễn Thị Lan", sort=newest_first)
    assert page.status_code == HTTPStatus.OK, page.content
    assert user.id in [listed.id for listed in page.parsed.items]
    assert page.parsed.total >= 1
    assert page.parsed.limit == 50

    updated = update_user.sync_detailed(
        client=client,
        user_id=user.id,
        body=UserUpdate(display_name="Lan Nguyễn", limit_minutes=600, outbound_allowed=False),
    )
    assert updated.status_code == HTTPStatus.OK, updated.content
    assert updated.parsed.display_name == "Lan Nguyễn"
    assert updated.parsed.limit_minutes == 600
    assert updated.parsed.minutes.limit_minutes == 600
    assert updated.parsed.outbound_allowed is False
    # Fields the change left out are kept.
    assert updated.parsed.external_ref == ref

    listed = list_users.sync(client=client, search="Lan Nguyễn")
    assert [(u.id, u.display_name) for u in listed.items] == [(user.id, "Lan Nguyễn")]


def test_a_taken_external_ref_is_409(client: Any) -> None:
    from antring_client.api.users import create_user, list_users
    from antring_client.models import Problem, UserCreate

    ref = unique_ref()
    first = create_user.sync_detailed(
        client=client, body=UserCreate(display_name="A", external_ref=ref)
    )
    assert first.status_code == HTTPStatus.CREATED, first.content

    second = create_user.sync_detailed(
        client=client, body=UserCreate(display_name="B", external_ref=ref)
    )
    assert second.status_code == HTTPStatus.CONFLICT, second.content
    assert isinstance(second.parsed, Problem)
    assert second.parsed.status == HTTPStatus.CONFLICT
    assert second.headers["content-type"].startswith("application/problem+json")

    page = list_users.sync(client=client, limit=200)
    assert [u.display_name for u in page.items if u.external_ref == ref] == ["A"]


def test_an_extension_of_five_digits_is_422(client: Any) -> None:
    from antring_client.api.extensions import add_user_extension
    from antring_client.api.users import create_user, get_user
    from antring_client.models import ExtensionCreate, Problem, UserCreate

    user = create_user.sync(client=client, body=UserCreate(display_name="Extension 422"))

    answer = add_user_extension.sync_detailed(
        client=client, user_id=user.id, body=ExtensionCreate(number="12345")
    )
    assert answer.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, answer.content
    problem = answer.parsed
    assert isinstance(problem, Problem)
    assert problem.status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert "body.number" in [error.field for error in problem.errors]

    assert "12345" not in get_user.sync(client=client, user_id=user.id).extensions


def test_a_stale_etag_is_412(client: Any) -> None:
    """Optimistic concurrency: a change sent with the ETag it was based on goes through once;
    sent again with that ETag (or a made-up one) it answers 412 and changes nothing."""
    from antring_client.api.users import create_user, get_user, update_user
    from antring_client.models import PreconditionFailedUserOut, UserCreate, UserUpdate

    user = create_user.sync(client=client, body=UserCreate(display_name="Version 1"))

    read = get_user.sync_detailed(client=client, user_id=user.id)
    assert read.status_code == HTTPStatus.OK, read.content
    etag = read.headers.get("ETag")
    assert etag, "GET /v1/users/{id} sends no ETag"

    changed = update_user.sync_detailed(
        client=client, user_id=user.id, body=UserUpdate(display_name="Version 2"), if_match=etag
    )
    assert changed.status_code == HTTPStatus.OK, changed.content
    new_etag = changed.headers.get("ETag")
    assert new_etag, "PATCH /v1/users/{id} sends no ETag"
    assert new_etag != etag

    for stale in (etag, '"nope"'):
        refused = update_user.sync_detailed(
            client=client,
            user_id=user.id,
            body=UserUpdate(display_name="Version 3"),
            if_match=stale,
        )
        assert refused.status_code == HTTPStatus.PRECONDITION_FAILED, (stale, refused.content)
        # Typed: the user as it is now, and its ETag, to show and to send the change again.
        assert isinstance(refused.parsed, PreconditionFailedUserOut)
        assert refused.parsed.status == HTTPStatus.PRECONDITION_FAILED
        assert refused.parsed.current.display_name == "Version 2"
        assert refused.headers.get("ETag") == new_etag

    after = get_user.sync_detailed(client=client, user_id=user.id)
    assert after.parsed.display_name == "Version 2"
    assert after.headers.get("ETag") == new_etag
