"""`antring serve` believes X-Forwarded-For only from the proxies ANTRING_FORWARDED_ALLOW_IPS
lists: a process that forges the header from anywhere else changes nothing the
failed-authentication limit sees (nor provisioning's allowed networks: the same address)."""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bench.server import Server, run_cli
from tests.helpers.settings import TEST_SECRET_KEY

LIMIT = 3
PROXY = "127.0.0.1"
# Another address of the loopback network, for a client that is not the listed proxy.
STRANGER = "127.0.0.2"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a served SQLite database, migrated once for the module."""
    path = tmp_path_factory.mktemp("forwarded") / "antring.db"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("ANTRING_") and name not in ("DATABASE_URL", "FORWARDED_ALLOW_IPS")
    }
    env |= {
        "DATABASE_URL": f"sqlite+aiosqlite:///{path}",
        "ANTRING_SECRET_KEY": TEST_SECRET_KEY,
        "ANTRING_BOOTSTRAP": "false",
        "ANTRING_SCHEDULER_ENABLED": "false",
        "ANTRING_WEBHOOKS_ENABLED": "false",
        "ANTRING_AUTH_FAILURE_LIMIT": f"{LIMIT}/minute",
    }
    run_cli(env, "migrate")
    return env


@contextmanager
def serving(env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    with Server(env=env, workers=1, log_path=tmp_path / "serve.log") as server:
        yield server


def unauthenticated(client: httpx.Client, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.get("/v1/users", headers=headers).status_code


def forged_attempts(client: httpx.Client) -> list[int]:
    """One more failed authentication than the limit allows, each claiming another address."""
    return [unauthenticated(client, f"203.0.113.{n}") for n in range(1, LIMIT + 2)]


def test_by_default_a_forged_forwarded_for_from_this_host_is_ignored(
    database: dict[str, str], tmp_path: Path
) -> None:
    with serving(database, tmp_path) as server, httpx.Client(base_url=server.base_url) as local:
        assert forged_attempts(local) == [401] * LIMIT + [429]
        # Every attempt counted against the connection's own address.
        assert unauthenticated(local) == 429


def test_a_listed_proxys_forwarded_address_is_used_and_no_other_clients(
    database: dict[str, str], tmp_path: Path
) -> None:
    env = {**database, "ANTRING_FORWARDED_ALLOW_IPS": json.dumps([PROXY])}
    stranger_transport = httpx.HTTPTransport(local_address=STRANGER)
    with (
        serving(env, tmp_path) as server,
        httpx.Client(base_url=server.base_url) as proxy,
        httpx.Client(base_url=server.base_url, transport=stranger_transport) as stranger,
    ):
        # The proxy forwards one client's failures: that client alone is held back.
        assert [unauthenticated(proxy, "198.51.100.7") for _ in range(LIMIT + 1)] == (
            [401] * LIMIT + [429]
        )
        assert unauthenticated(proxy, "198.51.100.8") == 401
        assert unauthenticated(proxy) == 401

        # A client that is not a listed proxy is counted as itself, whatever it claims.
        assert forged_attempts(stranger) == [401] * LIMIT + [429]
        assert unauthenticated(stranger) == 429
        assert unauthenticated(proxy, "198.51.100.9") == 401
