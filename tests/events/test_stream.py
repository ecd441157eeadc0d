"""The tenant's event stream over real HTTP: what the webhooks get, as it commits, resumed after
a disconnect with Last-Event-ID, never another tenant's, and a slow reader dropped alone."""

import asyncio
import json
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import uvicorn
from fastapi import FastAPI

from app.db.session import Database
from app.main import create_app
from app.outbox.record import Change, record_many
from app.settings import Settings
from tests.events.conftest import STREAM, open_stream, serve
from tests.helpers.api import TenantKeys, add_device, assert_problem, create_user
from tests.helpers.callcontrol import new_agent, report

REPORT = "/v1/call-control/registrations"


def _registration(keys: TenantKeys, username: str) -> dict[str, object]:
    return {
        "edge": "edge-1",
        "domain": keys.sip_domain,
        "username": username,
        "at": time.time(),
        "contacts": [
            {"contact": f"sip:{username}@10.0.0.7:5070", "expires_at": int(time.time()) + 3600}
        ],
    }


def _of(type: str, resource_id: str) -> object:
    return lambda e: e.event == type and json.loads(e.data)["data"]["resource"]["id"] == resource_id


async def test_a_registration_reaches_a_subscribed_stream_within_a_second(
    live_url: str, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="Lan")
    device = user["devices"][0]

    async with open_stream(live_url, tenant.viewer) as stream:
        began = time.monotonic()
        answer = await client.post(
            REPORT, json=_registration(tenant, device["name"]), headers=tenant.call_control
        )
        assert answer.status_code == 200, answer.text
        event = await stream.wait_for(_of("device.registered", device["id"]), timeout=1.0)
        assert time.monotonic() - began < 1.0

    body = json.loads(event.data)
    assert body["type"] == "device.registered"
    assert body["data"]["tenant_id"] == str(tenant.id)
    assert body["data"]["contact_count"] == 1
    # The SSE id is the event's id: what Last-Event-ID names.
    assert uuid.UUID(event.id)


async def test_a_usage_report_moves_the_users_minutes_within_five_seconds(
    live_url: str, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    agent = await new_agent(client, tenant)

    async with open_stream(live_url, tenant.viewer, params={"types": "quota.used_changed"}) as s:
        for n in range(3):
            charged = await report(client, agent, f"call-{n}", duration=60)
            assert charged.status_code == 201, charged.text
        event = await s.wait_for(
            lambda e: json.loads(e.data)["data"]["used_seconds"] == 180, timeout=5.0
        )
        await asyncio.sleep(0.5)

    body = json.loads(event.data)
    assert body["data"]["user_id"] == agent.id
    assert body["data"]["used_minutes"] == 3
    # Coalesced: not one event per call.
    assert len(s.events) < 3
    assert {e.event for e in s.events} == {"quota.used_changed"}


async def test_last_event_id_replays_exactly_the_missed_events(
    live_url: str, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="An")
    async with open_stream(live_url, tenant.admin) as first:
        await client.patch(
            f"/v1/users/{user['id']}", json={"email": "a@x.vn"}, headers=tenant.admin
        )
        seen = await first.wait_for(_of("user.updated", user["id"]), timeout=2)

    missed = [
        await add_device(client, tenant.admin, user["id"], name=f"an.desk{n}") for n in range(3)
    ]
    async with open_stream(live_url, {**tenant.admin, "Last-Event-ID": seen.id}) as resumed:
        await client.patch(
            f"/v1/users/{user['id']}", json={"email": "b@x.vn"}, headers=tenant.admin
        )
        await resumed.wait_for(lambda e: e.event == "user.updated" and e.id != seen.id, timeout=2)
        await asyncio.sleep(0.3)

    types = [(e.event, json.loads(e.data)["data"]["resource"]["id"]) for e in resumed.events]
    assert types == [
        *[("device.created", device["id"]) for device in missed],
        ("user.updated", user["id"]),
    ]
    assert len({e.id for e in resumed.events}) == len(resumed.events)


async def test_an_id_no_longer_kept_gets_a_reset(
    live_url: str, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    headers = {**tenant.admin, "Last-Event-ID": str(uuid.uuid4())}
    async with open_stream(live_url, headers) as stream:
        reset = await stream.wait_for(lambda e: True, timeout=2)
    assert reset.event == "reset"

    async with httpx.AsyncClient(base_url=live_url) as plain:
        refused = await plain.get(STREAM, headers={**tenant.admin, "Last-Event-ID": "yesterday"})
    assert_problem(refused, 422, field="header.Last-Event-ID")


async def test_two_tenants_streams_never_cross(
    live_url: str, client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    async with (
        open_stream(live_url, tenant.viewer) as ours,
        open_stream(live_url, other_tenant.viewer) as theirs,
    ):
        mine = await create_user(client, tenant.admin, display_name="Acme's")
        others = await create_user(client, other_tenant.admin, display_name="Globex's")
        await ours.wait_for(_of("user.created", mine["id"]), timeout=2)
        await theirs.wait_for(_of("user.created", others["id"]), timeout=2)
        await asyncio.sleep(0.3)

    assert {b["data"]["tenant_id"] for b in ours.bodies} == {str(tenant.id)}
    assert {b["data"]["tenant_id"] for b in theirs.bodies} == {str(other_tenant.id)}


async def test_types_choose_the_events_sent(
    live_url: str, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    params = {"types": "user.updated,device.created"}
    async with open_stream(live_url, tenant.viewer, params=params) as stream:
        user = await create_user(client, tenant.admin, display_name="An")
        desk = await add_device(client, tenant.admin, user["id"], name="an.desk")
        await stream.wait_for(_of("device.created", desk["id"]), timeout=2)
    # The user's default device, then the one added: no user.created.
    assert [e.event for e in stream.events] == ["device.created", "device.created"]

    async with httpx.AsyncClient(base_url=live_url) as plain:
        refused = await plain.get(STREAM, params={"types": "user.eaten"}, headers=tenant.viewer)
        assert_problem(refused, 422, code="validation-error")
        nobody = await plain.get(STREAM)
        assert nobody.status_code == 401


async def _stalled(url: str, headers: dict[str, str]) -> socket.socket:
    """A client that asks for a stream and then reads nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    lines = [f"GET {STREAM} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
    # Its answer's head: it is subscribed. Nothing more is read.
    head = await loop.sock_recv(sock, 512)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


async def _read_all(sock: socket.socket, within: float) -> bytes:
    loop, chunks = asyncio.get_running_loop(), []
    async with asyncio.timeout(within):
        while chunk := await loop.sock_recv(sock, 65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_a_stalled_reader_is_dropped_while_another_keeps_receiving(
    migrated_url: str, settings: Settings, db: Database, client: httpx.AsyncClient,
    tenant: TenantKeys,
) -> None:  # fmt: skip
    app = create_app(settings.model_copy(update={"stream_queue_events": 64}))
    count = 2000
    async with app.router.lifespan_context(app), serve(app) as url:
        stalled = await _stalled(url, tenant.viewer)
        async with open_stream(url, tenant.viewer) as reader:
            assert app.state.follower.subscriptions == 2
            async with db.session_scope() as session:
                await record_many(
                    session,
                    [
                        Change(
                            type="user.updated",
                            tenant_id=tenant.id,
                            resource_type="user",
                            resource_id=uuid.uuid4(),
                            data={"padding": "x" * 2000, "n": n},
                        )
                        for n in range(count)
                    ],
                )
            app.state.dispatcher.wake()
            await reader.wait_for(lambda e: json.loads(e.data)["data"].get("n") == count - 1, 20)
            assert [b["data"]["n"] for b in reader.bodies] == list(range(count))
            # The stalled one reads at last: what fitted in the buffers, then the last word.
            received = await _read_all(stalled, within=20)
            stalled.close()
            # Its last event says it was dropped, and the stream ended (chunked: the last chunk).
            last = received.rstrip(b"\r\n0").rsplit(b"event: ", 1)[1]
            assert last.startswith(b"dropped\r\n"), received[-300:]
            assert received.endswith(b"\r\n0\r\n\r\n")
            assert received.count(b"event: user.updated") < count
            assert app.state.follower.subscriptions == 1


async def test_a_stream_resumes_on_another_replica(
    settings: Settings, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    user = await create_user(client, tenant.admin, display_name="An")
    first = create_app(settings)
    async with (
        first.router.lifespan_context(first),
        serve(first) as url,
        open_stream(url, tenant.viewer) as stream,
    ):
        await client.patch(
            f"/v1/users/{user['id']}", json={"email": "a@x.vn"}, headers=tenant.admin
        )
        last = await stream.wait_for(_of("user.updated", user["id"]), timeout=2)
    # The replica is gone; changes go on through another.
    await client.patch(f"/v1/users/{user['id']}", json={"email": "b@x.vn"}, headers=tenant.admin)
    second = create_app(settings)
    async with second.router.lifespan_context(second), serve(second) as url:
        resumed_headers = {**tenant.viewer, "Last-Event-ID": last.id}
        async with open_stream(url, resumed_headers) as resumed:
            event = await resumed.wait_for(lambda e: True, timeout=2)
    assert json.loads(event.data)["data"]["changed"] == {"email": "b@x.vn"}


async def test_streams_per_key_are_bounded(
    settings: Settings, db: Database, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    app: FastAPI = create_app(
        settings.model_copy(update={"streams_per_key": 2, "streams_per_process": 3})
    )
    async with (
        app.router.lifespan_context(app),
        serve(app) as url,
        open_stream(url, tenant.viewer),
        open_stream(url, tenant.viewer),
        httpx.AsyncClient(base_url=url) as plain,
    ):
        refused = await plain.get(STREAM, headers={**tenant.viewer, "Accept-Language": "vi"})
        async with open_stream(url, tenant.admin) as allowed:
            assert allowed.status == 200
            full = await plain.get(STREAM, headers=tenant.operator)

    body = assert_problem(refused, 429, code="too-many-streams")
    assert (body["code"], body["params"]["limit"]) == ("too-many-streams-for-key", 2)
    assert body["detail"].startswith("Khóa")
    assert refused.headers["retry-after"] == "30"
    body = assert_problem(full, 429, code="too-many-streams")
    assert (body["code"], body["params"]["limit"]) == ("too-many-streams", 3)


async def test_one_tenants_streams_leave_room_for_every_other_tenant(
    settings: Settings,
    db: Database,
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
) -> None:
    app: FastAPI = create_app(
        settings.model_copy(
            update={"streams_per_key": 5, "streams_per_tenant": 2, "streams_per_process": 10}
        )
    )
    async with (
        app.router.lifespan_context(app),
        serve(app) as url,
        open_stream(url, tenant.viewer),
        open_stream(url, tenant.operator),
        httpx.AsyncClient(base_url=url) as plain,
    ):
        # A third screen of the same tenant, with a key that has none open yet, is refused...
        refused = await plain.get(STREAM, headers={**tenant.admin, "Accept-Language": "vi"})
        # ...while the other tenant still opens its streams and receives its events.
        async with open_stream(url, other_tenant.viewer) as theirs:
            assert theirs.status == 200
            await create_user(client, other_tenant.admin, display_name="Globex's")
            event = await theirs.wait_for(lambda e: e.event == "user.created", timeout=5)

    body = assert_problem(refused, 429, code="too-many-streams")
    assert (body["code"], body["params"]["limit"]) == ("too-many-streams-for-tenant", 2)
    assert body["detail"].startswith("Doanh nghiệp")
    assert refused.headers["retry-after"] == "30"
    assert json.loads(event.data)["data"]["tenant_id"] == str(other_tenant.id)


async def test_a_stream_ends_when_its_key_expires(
    live_url: str, client: httpx.AsyncClient, tenant: TenantKeys
) -> None:
    expires_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    created = await client.post(
        f"/v1/tenants/{tenant.id}/api-keys",
        json={"name": "console for a while", "role": "viewer", "expires_at": expires_at},
        headers=tenant.admin,
    )
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}

    async with open_stream(live_url, key) as stream:
        async with asyncio.timeout(5):
            await stream.ended.wait()
    assert [e.event for e in stream.events] == ["expired"]


async def test_one_tenants_stalled_reader_holds_up_no_other_tenant(
    migrated_url: str, settings: Settings, db: Database, client: httpx.AsyncClient,
    tenant: TenantKeys, other_tenant: TenantKeys,
) -> None:  # fmt: skip
    """The follower serves every tenant: a flood of one tenant's events to its reader that reads
    nothing neither delays nor leaks into another tenant's stream."""
    app = create_app(settings.model_copy(update={"stream_queue_events": 64}))
    count = 2000
    async with app.router.lifespan_context(app), serve(app) as url:
        stalled = await _stalled(url, tenant.viewer)
        async with open_stream(url, other_tenant.viewer) as theirs:
            async with db.session_scope() as session:
                await record_many(
                    session,
                    [
                        Change(
                            type="user.updated",
                            tenant_id=tenant.id,
                            resource_type="user",
                            resource_id=uuid.uuid4(),
                            data={"padding": "x" * 2000, "n": n},
                        )
                        for n in range(count)
                    ]
                    + [
                        Change(
                            type="user.updated",
                            tenant_id=other_tenant.id,
                            resource_type="user",
                            resource_id=uuid.uuid4(),
                            data={"n": "theirs"},
                        )
                    ],
                )
            app.state.dispatcher.wake()
            await theirs.wait_for(lambda e: json.loads(e.data)["data"].get("n") == "theirs", 5)
            assert [b["data"]["n"] for b in theirs.bodies] == ["theirs"]
            received = await _read_all(stalled, within=20)
            stalled.close()
            assert b"theirs" not in received
            assert app.state.follower.subscriptions == 1


async def test_a_quiet_stream_sends_heartbeats(settings: Settings, tenant: TenantKeys) -> None:
    app = create_app(settings.model_copy(update={"stream_heartbeat_seconds": 0.2}))
    async with (
        app.router.lifespan_context(app),
        serve(app) as url,
        httpx.AsyncClient(base_url=url, timeout=5) as plain,
        plain.stream("GET", STREAM, headers=tenant.viewer) as response,
    ):
        received = ""
        async with asyncio.timeout(3):
            async for text in response.aiter_text():
                received += text
                if received.count("\r\n\r\n") >= 2:
                    break
    # Two comment lines, nothing else: no event happened.
    assert [block[: len(": ping - ")] for block in received.split("\r\n\r\n")[:2]] == [
        ": ping - ",
        ": ping - ",
    ]


async def test_a_client_that_leaves_gives_its_place_back_at_once(
    settings: Settings, tenant: TenantKeys
) -> None:
    app = create_app(settings.model_copy(update={"streams_per_key": 1}))
    async with app.router.lifespan_context(app), serve(app) as url:
        async with open_stream(url, tenant.viewer):
            assert app.state.follower.subscriptions == 1
        # No event and no heartbeat (every 15 s) came since: the disconnect alone frees it.
        for _ in range(40):
            if not app.state.follower.subscriptions:
                break
            await asyncio.sleep(0.05)
        assert app.state.follower.subscriptions == 0
        async with open_stream(url, tenant.viewer) as again:
            assert again.status == 200


async def test_open_streams_end_when_their_server_stops(
    settings: Settings, tenant: TenantKeys
) -> None:
    """A stopping server waits for every response to end: its streams end within a second,
    with their last chunk, and their clients connect again elsewhere with Last-Event-ID."""
    app = create_app(settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    host, port = listener.getsockname()
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=30)
    )
    async with app.router.lifespan_context(app):
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        async with (
            httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as plain,
            plain.stream("GET", STREAM, headers=tenant.viewer) as response,
        ):
            assert response.status_code == 200
            began = time.monotonic()
            server.should_exit = True
            # A stream cut off without its last chunk would raise here.
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            ended_after = time.monotonic() - began
        await serving
    listener.close()
    assert body == b""
    assert ended_after < 2
