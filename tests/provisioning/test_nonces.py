"""A digest response works once: its nonce was made for the client that asked, and a count (`nc`)
used with a nonce is never taken again, whichever replica sees it. A client that knows the
password carries on (the next count, or a new nonce after `stale=true`); a copy of its header
gets nothing."""

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select, update

from app.clock import utcnow
from app.db.session import Database
from app.jobs.registry import run_job
from app.main import create_app
from app.provisioning.models import ProvisioningNonce
from app.settings import Settings
from tests.helpers.api import TenantKeys, assert_problem, db_rows
from tests.helpers.provisioning import (
    PHONE_PASSWORD,
    Provisioning,
    add_phone,
    digest_authorization,
    digest_challenge,
    enable_provisioning,
    fetches,
    file_path,
    key_values,
)

OUTSIDE = "198.51.100.7"


@pytest.fixture
async def outside_client(app: FastAPI, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a network of its own."""
    transport = httpx.ASGITransport(app=app, client=(OUTSIDE, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
        yield c


@pytest.fixture
async def replica(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """A second process of the service, on the same database."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            yield c


@pytest.fixture
async def phone_file(client: httpx.AsyncClient, tenant: TenantKeys) -> tuple[Provisioning, str]:
    await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)
    return access, file_path(access.files_url, "001565aabbcc.cfg")


def refused_as_stale(response: httpx.Response) -> None:
    assert_problem(response, 401)
    assert PHONE_PASSWORD not in response.text
    assert digest_challenge(response).get("stale") == "true"


async def test_a_replayed_digest_header_is_refused(
    client: httpx.AsyncClient,
    outside_client: httpx.AsyncClient,
    tenant: TenantKeys,
    phone_file: tuple[Provisioning, str],
) -> None:
    access, path = phone_file
    phone = httpx.DigestAuth(*access.auth)

    first = await client.get(path, auth=phone)
    captured = first.request.headers["authorization"]
    replayed = await client.get(path, headers={"Authorization": captured})
    from_elsewhere = await outside_client.get(path, headers={"Authorization": captured})
    second = await client.get(path, auth=phone)

    assert first.status_code == 200 and [r.status_code for r in first.history] == [401]
    refused_as_stale(replayed)
    refused_as_stale(from_elsewhere)
    # The phone goes on with its nonce and the next count, without a new challenge.
    assert second.status_code == 200, second.text
    assert second.history == []
    assert "nc=00000002" in second.request.headers["authorization"]
    assert key_values(second.text)["account.1.password"] == PHONE_PASSWORD
    recorded = await fetches(client, tenant)
    assert sum(f["count"] for f in recorded if f["outcome"] == "served") == 2
    refused = [(f["client_address"], f["count"]) for f in recorded if f["outcome"] != "served"]
    # The phone's first request (no credentials yet) and the replays, from either address.
    assert sum(count for address, count in refused if address == "127.0.0.1") == 2
    assert sum(count for address, count in refused if address == OUTSIDE) == 1


async def test_a_header_used_at_one_replica_is_refused_at_another(
    client: httpx.AsyncClient, replica: httpx.AsyncClient, phone_file: tuple[Provisioning, str]
) -> None:
    access, path = phone_file
    phone = httpx.DigestAuth(*access.auth)

    first = await client.get(path, auth=phone)
    replayed_at_replica = await replica.get(
        path, headers={"Authorization": first.request.headers["authorization"]}
    )
    second = await replica.get(path, auth=phone)
    replayed_back = await client.get(
        path, headers={"Authorization": second.request.headers["authorization"]}
    )

    assert first.status_code == 200
    refused_as_stale(replayed_at_replica)
    # A nonce one replica made is good at the other.
    assert second.status_code == 200 and second.history == []
    refused_as_stale(replayed_back)


async def test_a_count_is_taken_once_and_never_a_lower_one(
    client: httpx.AsyncClient, phone_file: tuple[Provisioning, str]
) -> None:
    access, path = phone_file
    challenge = digest_challenge(await client.get(path))

    async def fetch(nc: int) -> httpx.Response:
        header = digest_authorization(challenge, access.auth, uri=path, nc=nc)
        return await client.get(path, headers={"Authorization": header})

    fifth = await fetch(5)
    third = await fetch(3)
    sixth = await fetch(6)
    copies = await asyncio.gather(*(fetch(7) for _ in range(8)))

    assert fifth.status_code == 200, fifth.text
    refused_as_stale(third)
    assert sixth.status_code == 200
    # Sent at once, the copies of one header get one file between them.
    assert sorted(c.status_code for c in copies) == [200] + [401] * 7


async def test_a_response_without_a_count_works_once(
    client: httpx.AsyncClient, phone_file: tuple[Provisioning, str]
) -> None:
    access, path = phone_file
    challenge = digest_challenge(await client.get(path))
    header = digest_authorization(challenge, access.auth, uri=path, qop=False)

    first = await client.get(path, headers={"Authorization": header})
    again = await client.get(path, headers={"Authorization": header})

    assert first.status_code == 200, first.text
    refused_as_stale(again)


async def test_a_nonce_serves_the_tenant_it_was_made_for(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    phone_file: tuple[Provisioning, str],
) -> None:
    access, path = phone_file
    await add_phone(client, other_tenant, model="yealink")
    other_access = await enable_provisioning(client, other_tenant)
    other_path = file_path(other_access.files_url, "001565aabbcc.cfg")
    ours = digest_challenge(await client.get(path))
    theirs = digest_challenge(await client.get(other_path))

    with_our_nonce = await client.get(
        other_path,
        headers={"Authorization": digest_authorization(ours, other_access.auth, uri=other_path)},
    )
    with_their_nonce = await client.get(
        other_path,
        headers={"Authorization": digest_authorization(theirs, other_access.auth, uri=other_path)},
    )
    # The same count of our own nonce is still ours to use.
    with_ours_here = await client.get(
        path, headers={"Authorization": digest_authorization(ours, access.auth, uri=path)}
    )

    refused_as_stale(with_our_nonce)
    assert with_their_nonce.status_code == 200, with_their_nonce.text
    assert with_ours_here.status_code == 200, with_ours_here.text


async def test_used_nonces_are_forgotten_once_expired(
    client: httpx.AsyncClient, db: Database, phone_file: tuple[Provisioning, str]
) -> None:
    access, path = phone_file
    phone = httpx.DigestAuth(*access.auth)
    await client.get(path, auth=phone)
    await client.get(path, auth=phone)
    used = await db_rows(db, select(ProvisioningNonce.highest_count))
    async with db.engine.begin() as conn:
        await conn.execute(
            update(ProvisioningNonce).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    await run_job(db, "prune-provisioning-fetches")

    assert [row.highest_count for row in used] == [2]
    assert await db_rows(db, select(ProvisioningNonce.nonce)) == []


@pytest.fixture
async def live_url(app: FastAPI, db: Database) -> AsyncIterator[str]:
    """The service over real HTTP on 127.0.0.1, as a phone on the network reaches it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    # Listening already: a client that comes before the server is up waits in the backlog.
    listener.listen()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    host, port = listener.getsockname()
    yield f"http://{host}:{port}"
    server.should_exit = True
    await serving
    listener.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_fetches_files_with_digest(
    live_url: str, tenant: TenantKeys, client: httpx.AsyncClient
) -> None:
    # libcurl is what many phones fetch their files with; curl asks each file without
    # credentials first, and answers each challenge with its nonce.
    await add_phone(client, tenant, model="yealink")
    access = await enable_provisioning(client, tenant)
    urls = [live_url + file_path(access.files_url, name) for name in ("y000000000066.cfg",
            "001565aabbcc.cfg", "001565aabbcc.cfg")]  # fmt: skip

    curl = await asyncio.create_subprocess_exec(
        "curl", "--silent", "--digest", "--user", ":".join(access.auth),
        "--write-out", "%{http_code} ", *[arg for url in urls for arg in ("-o", "/dev/null", url)],
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await curl.communicate()

    assert out.decode().split() == ["200", "200", "200"]
    recorded = await fetches(client, tenant)
    assert [f["filename"] for f in reversed(recorded) if f["outcome"] == "served"] == [
        "y000000000066.cfg",
        "001565aabbcc.cfg",
        "001565aabbcc.cfg",
    ]
    assert sum(f["count"] for f in recorded if f["outcome"] == "unauthorized") == 3
