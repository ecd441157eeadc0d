"""Change events reach a tenant's webhooks, signed (checked with the `standardwebhooks`
verifier), in order, once each, retried on schedule; the audit trail says who changed what."""

import asyncio
import json
import socket
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from standardwebhooks import Webhook, WebhookVerificationError

from app.clock import utcnow
from app.db.session import Database
from app.main import create_app
from app.outbox.models import Event
from app.webhooks.dispatcher import SENDS_PER_ENDPOINT, Dispatcher
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.helpers.api import TenantKeys, assert_problem, create_user, db_rows
from tests.helpers.callcontrol import new_agent, report
from tests.helpers.receiver import Receiver
from tests.helpers.settings import make_settings


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hooked = Receiver()
    await hooked.start()
    yield hooked
    await hooked.close()


def dispatcher(app: FastAPI) -> Dispatcher:
    found: Dispatcher = app.state.dispatcher
    return found


async def subscribe(
    client: httpx.AsyncClient, tenant: TenantKeys, receiver: Receiver, *types: str
) -> dict[str, str]:
    response = await client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "event_types": list(types)},
        headers=tenant.admin,
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    assert created["secret"].startswith("whsec_")
    return created


async def deliver(app: FastAPI, now: datetime | None = None) -> None:
    """Rounds of the delivery worker, each with the sends it started, until one has nothing to
    do."""
    worker = dispatcher(app)
    for _ in range(100):
        if not await worker.step(now):
            return
        await worker.idle()
    raise AssertionError("the worker never ran out of work")


async def test_changes_are_delivered_signed_and_the_signature_checks_out(
    client: httpx.AsyncClient, app: FastAPI, tenant: TenantKeys, receiver: Receiver
) -> None:
    hook = await subscribe(client, tenant, receiver)
    user = await create_user(client, tenant.admin, display_name="Lan")
    await client.patch(
        f"/v1/users/{user['id']}/toggles", json={"outbound_allowed": False}, headers=tenant.admin
    )

    await deliver(app)

    verifier = Webhook(hook["secret"])
    types = []
    for got in receiver.received:
        body = verifier.verify(got.body, got.headers)
        types.append(body["type"])
        assert "password" not in got.body and "ha1" not in got.body
    assert sorted(types) == [
        "device.created",
        "user.created",
        "user.updated",
        "webhook_endpoint.created",
    ]
    [toggled] = [json.loads(g.body) for g in receiver.received if '"user.updated"' in g.body]
    assert toggled["data"]["changed"] == {"outbound_allowed": False}
    assert toggled["data"]["resource"] == {"type": "user", "id": user["id"]}
    assert len({got.headers["webhook-id"] for got in receiver.received}) == len(receiver.received)

    [first] = [g for g in receiver.received if '"user.created"' in g.body]
    with pytest.raises(WebhookVerificationError):
        verifier.verify(first.body.replace("Lan", "Mai"), first.headers)
    old = {**first.headers, "webhook-timestamp": str(int(utcnow().timestamp()) - 3600)}
    with pytest.raises(WebhookVerificationError):
        verifier.verify(first.body, old)


async def test_a_failed_request_emits_nothing(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys
) -> None:
    await create_user(client, tenant.admin, external_ref="hr-1")
    before = await db_rows(db, select(func.count()).select_from(Event))
    taken = await client.post(
        "/v1/users", json={"display_name": "X", "external_ref": "hr-1"}, headers=tenant.admin
    )
    assert_problem(taken, 409)
    assert await db_rows(db, select(func.count()).select_from(Event)) == before


async def test_retries_follow_the_schedule_and_410_disables_the_endpoint(
    client: httpx.AsyncClient, app: FastAPI, tenant: TenantKeys, receiver: Receiver
) -> None:
    hook = await subscribe(client, tenant, receiver, "extension.added")
    user = await create_user(client, tenant.admin)
    await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "201"}, headers=tenant.admin
    )
    receiver.statuses = [500, 503, 500]  # then 204
    t0 = utcnow()

    await deliver(app, t0)  # fan out and first attempt: 500
    await deliver(app, t0 + timedelta(seconds=4))  # not due yet
    assert len(receiver.received) == 1
    await deliver(app, t0 + timedelta(seconds=5))  # second: 503
    await deliver(app, t0 + timedelta(seconds=5, minutes=4))  # not due
    await deliver(app, t0 + timedelta(seconds=5, minutes=5))  # third: 500
    await deliver(app, t0 + timedelta(seconds=5, minutes=35))  # fourth: 204
    assert len(receiver.received) == 4

    deliveries = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.admin)
    [delivery] = deliveries.json()["items"]
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 500, 204]

    receiver.statuses = [410]
    await client.post(
        f"/v1/users/{user['id']}/extensions", json={"number": "202"}, headers=tenant.admin
    )
    await deliver(app, utcnow() + timedelta(hours=1))
    shown = await client.get(f"/v1/webhooks/{hook['id']}", headers=tenant.admin)
    assert (shown.json()["enabled"], shown.json()["disabled_reason"]) == (
        False,
        "The receiver answered 410 Gone.",
    )


async def test_two_workers_deliver_each_event_once(
    client: httpx.AsyncClient,
    app: FastAPI,
    migrated_url: str,
    tenant: TenantKeys,
    receiver: Receiver,
) -> None:
    await subscribe(client, tenant, receiver, "user.created", "device.created")
    for i in range(15):
        await create_user(client, tenant.admin, display_name=f"Agent {i}")
    other = create_app(make_settings(migrated_url))
    async with other.router.lifespan_context(other):
        for _ in range(6):
            await asyncio.gather(deliver(app), deliver(other))

    ids = [got.headers["webhook-id"] for got in receiver.received]
    assert len(ids) == 30  # a user and its device each
    assert len(set(ids)) == len(ids)


async def test_200_concurrent_changes_are_all_delivered_in_order_per_resource(
    client: httpx.AsyncClient, app: FastAPI, db: Database, tenant: TenantKeys, receiver: Receiver
) -> None:
    await subscribe(client, tenant, receiver, "user.created", "user.updated")
    users = [await create_user(client, tenant.admin, display_name=f"U{i}") for i in range(20)]

    async def rename(user: dict[str, str], n: int) -> int:
        response = await client.patch(
            f"/v1/users/{user['id']}", json={"display_name": f"U-{n}"}, headers=tenant.admin
        )
        return response.status_code

    statuses = await asyncio.gather(*(rename(users[i % 20], i) for i in range(200)))
    assert statuses.count(200) == 200
    await deliver(app)

    delivered: dict[str, list[str]] = {}
    for got in receiver.received:
        body = json.loads(got.body)
        if body["type"] == "user.updated":
            delivered.setdefault(body["data"]["resource"]["id"], []).append(
                body["data"]["changed"]["display_name"]
            )
    assert sum(len(names) for names in delivered.values()) == 200
    # Each user's changes arrive in the order they were committed.
    committed: dict[str, list[str]] = {}
    for row in await db_rows(
        db,
        select(Event.resource_id, Event.data)
        .where(Event.type == "user.updated")
        .order_by(Event.seq),
    ):
        committed.setdefault(row.resource_id, []).append(row.data["changed"]["display_name"])
    assert delivered == committed


async def test_a_limit_crossing_80_and_100_percent_is_told_once_each_under_racing_reports(
    client: httpx.AsyncClient, app: FastAPI, db: Database, tenant: TenantKeys, receiver: Receiver
) -> None:
    await subscribe(client, tenant, receiver, "quota.threshold_reached", "call.refused_for_quota")
    agent = await new_agent(client, tenant, limit_minutes=20)

    responses = await asyncio.gather(*(report(client, agent, f"r-{i}", 60) for i in range(20)))
    assert [r.status_code for r in responses] == [201] * 20
    refused = await client.post(
        "/v1/call-control/authorizations",
        json=agent.caller(call_id="over", destination="0901234567"),
        headers=tenant.call_control,
    )
    assert refused.json()["reason"] == "quota_exhausted"
    for i in range(3):  # refused again: no new event
        await client.post(
            "/v1/call-control/authorizations",
            json=agent.caller(call_id=f"over-{i}", destination="0901234567"),
            headers=tenant.call_control,
        )
    await deliver(app)

    told = [json.loads(got.body) for got in receiver.received]
    assert sorted((t["type"], t["data"].get("percent")) for t in told) == [
        ("call.refused_for_quota", None),
        ("quota.threshold_reached", 80),
        ("quota.threshold_reached", 100),
    ]


async def test_the_audit_trail_shows_who_switched_outbound_off_and_only_to_its_tenant(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenant: TenantKeys,
    other_tenant: TenantKeys,
) -> None:
    key = await client.post(
        f"/v1/tenants/{tenant.id}/api-keys",
        json={"name": "ops-console", "role": "admin"},
        headers=platform,
    )
    ops = {"Authorization": f"Bearer {key.json()['key']}", "X-Request-ID": "ticket-4711"}
    user = await create_user(client, tenant.admin)
    await client.patch(
        f"/v1/users/{user['id']}/toggles", json={"outbound_allowed": False}, headers=ops
    )

    trail = await client.get(
        "/v1/audit-events", params={"user_id": user["id"]}, headers=tenant.admin
    )
    newest = trail.json()["items"][0]
    assert newest["action"] == "user.updated"
    assert (newest["actor_key_name"], newest["actor_role"]) == ("ops-console", "admin")
    assert (newest["before"], newest["after"]) == (
        {"outbound_allowed": True},
        {"outbound_allowed": False},
    )
    assert newest["request_id"] == "ticket-4711"
    theirs = await client.get("/v1/audit-events", headers=other_tenant.admin)
    assert all(e["resource_id"] != user["id"] for e in theirs.json()["items"])
    assert_problem(await client.get("/v1/audit-events", headers=tenant.viewer), 403)
    rotated = await client.post(
        f"/v1/devices/{user['devices'][0]['id']}/password", json={}, headers=tenant.admin
    )
    everything = await client.get("/v1/audit-events", headers=tenant.admin)
    assert rotated.json()["password"] not in everything.text


async def test_webhooks_are_a_tenant_s_own_and_private_urls_are_refused(
    client: httpx.AsyncClient,
    migrated_url: str,
    db: Database,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    receiver: Receiver,
) -> None:
    hook = await subscribe(client, tenant, receiver)
    assert_problem(await client.get(f"/v1/webhooks/{hook['id']}", headers=other_tenant.admin), 404)
    listed = await client.get("/v1/webhooks", headers=other_tenant.admin)
    assert listed.json()["items"] == []
    assert "secret" not in (await client.get("/v1/webhooks", headers=tenant.admin)).text

    strict = create_app(make_settings(migrated_url, webhooks_allow_private_urls=False))
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            refused = await c.post("/v1/webhooks", json={"url": receiver.url}, headers=tenant.admin)
    assert_problem(refused, 422, field="body.url", code="webhook-url-refused")


async def test_a_rotated_secret_and_the_old_one_both_sign_for_a_while(
    client: httpx.AsyncClient, app: FastAPI, tenant: TenantKeys, receiver: Receiver
) -> None:
    hook = await subscribe(client, tenant, receiver, "user.created")
    rotated = await client.post(f"/v1/webhooks/{hook['id']}/secret", headers=tenant.admin)
    await create_user(client, tenant.admin)
    await deliver(app)

    [got] = receiver.received
    Webhook(hook["secret"]).verify(got.body, got.headers)
    Webhook(rotated.json()["secret"]).verify(got.body, got.headers)


async def test_a_hanging_receiver_delays_no_other_tenant_s_deliveries(
    client: httpx.AsyncClient,
    migrated_url: str,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    receiver: Receiver,
) -> None:
    # The other tenant's receivers: one takes each request and never answers, one answers in 3 s.
    hanging, slow = Receiver(hang=True), Receiver(delay=3)
    await hanging.start()
    await slow.start()
    live = create_app(make_settings(migrated_url, webhooks_enabled=True, webhooks_poll_seconds=0.2))
    async with live.router.lifespan_context(live):
        await subscribe(client, tenant, receiver, "user.created")
        await subscribe(client, other_tenant, hanging)
        await subscribe(client, other_tenant, slow)
        transport = httpx.ASGITransport(app=live)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            committed: dict[str, float] = {}
            for i in range(20):
                await create_user(c, other_tenant.admin, display_name=f"Theirs {i}")
                user = await create_user(c, tenant.admin, display_name=f"Ours {i}")
                committed[user["id"]] = time.monotonic()
                await asyncio.sleep(0.15)
            for _ in range(300):
                if len(receiver.received) >= len(committed):
                    break
                await asyncio.sleep(0.1)
        await hanging.close()
        await slow.close()

    arrived = {json.loads(got.body)["data"]["resource"]["id"]: got.at for got in receiver.received}
    assert arrived.keys() == committed.keys()
    latencies = sorted(arrived[user] - committed[user] for user in committed)
    p50, p99 = (
        statistics.median(latencies),
        statistics.quantiles(latencies, n=100, method="inclusive")[98],
    )
    print(f"our deliveries beside a hanging receiver: p50 {p50:.3f} s, p99 {p99:.3f} s")
    assert p99 < 1.0, latencies
    assert hanging.received and slow.received  # theirs were sent all the while


async def test_a_host_that_is_no_name_is_refused_with_422_when_saved_and_at_delivery(
    client: httpx.AsyncClient,
    app: FastAPI,
    migrated_url: str,
    db: Database,
    tenant: TenantKeys,
    receiver: Receiver,
) -> None:
    no_name = f"https://{'a' * 300}.example.com/hook"
    hook = await subscribe(client, tenant, receiver, "user.created")
    strict = create_app(make_settings(migrated_url, webhooks_allow_private_urls=False))
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            for api in (client, c):
                created = await api.post(
                    "/v1/webhooks", json={"url": no_name}, headers=tenant.admin
                )
                assert_problem(created, 422, field="body.url")
                changed = await api.patch(
                    f"/v1/webhooks/{hook['id']}", json={"url": no_name}, headers=tenant.admin
                )
                assert_problem(changed, 422, field="body.url")
    shown = await client.get(f"/v1/webhooks/{hook['id']}", headers=tenant.admin)
    assert shown.json()["url"] == receiver.url

    # One saved before this was checked: its deliveries are refused, the others go out.
    stale = await subscribe(client, tenant, receiver, "user.created")
    async with db.session_scope() as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(stale["id"]))
            .values(url=no_name)
        )
    user = await create_user(client, tenant.admin)
    await deliver(app)

    [got] = receiver.received
    assert json.loads(got.body)["data"]["resource"]["id"] == user["id"]
    Webhook(hook["secret"]).verify(got.body, got.headers)
    listed = await client.get(f"/v1/webhooks/{stale['id']}/deliveries", headers=tenant.admin)
    [delivery] = listed.json()["items"]
    assert delivery["status"] == "pending"  # and retried on schedule
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("refused: The URL's host")
    assert "is not a valid name" in attempt["error"]


async def test_a_name_that_resolves_elsewhere_for_the_connection_never_reaches_127_0_0_1(
    migrated_url: str,
    db: Database,
    tenant: TenantKeys,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    resolve = loop.getaddrinfo
    lookups: list[int | None] = []

    async def rebinding(host: str, port: int | None, *args: Any, **kwargs: Any) -> Any:
        """No DNS here: this stands in for an attacker's name with a zero TTL, which answers a
        public address to a lookup that only checks it (no port: nothing is connected to) and
        127.0.0.1 to the one a connection is made from."""
        if host != "rebinding.example":
            return await resolve(host, port, *args, **kwargs)
        lookups.append(port)
        address = "93.184.215.14" if port is None else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    strict = create_app(make_settings(migrated_url, webhooks_allow_private_urls=False))
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            url = f"http://rebinding.example:{receiver.port}/hook"
            hook = await c.post(
                "/v1/webhooks",
                json={"url": url, "event_types": ["user.created"]},
                headers=tenant.admin,
            )
            assert hook.status_code == 201, hook.text  # it looked public
            await create_user(c, tenant.admin)
            await deliver(strict)
            listed = await c.get(
                f"/v1/webhooks/{hook.json()['id']}/deliveries", headers=tenant.admin
            )

    assert receiver.received == []
    assert receiver.port in lookups  # a connection was tried
    [attempt] = listed.json()["items"][0]["attempts"]
    assert attempt["error"].startswith("refused: The URL's host rebinding.example is a private"), (
        attempt
    )


async def test_a_name_is_called_at_the_address_it_resolved_to_with_its_own_host_header(
    client: httpx.AsyncClient,
    app: FastAPI,
    tenant: TenantKeys,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    resolve = loop.getaddrinfo

    async def hosts_file(host: str, port: int | None, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.acme.example":
            return await resolve(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", hosts_file)
    url = f"http://hooks.acme.example:{receiver.port}/hook"
    hook = await client.post(
        "/v1/webhooks", json={"url": url, "event_types": ["user.created"]}, headers=tenant.admin
    )
    assert hook.status_code == 201, hook.text
    await create_user(client, tenant.admin)
    await deliver(app)

    [got] = receiver.received
    assert got.headers["host"] == f"hooks.acme.example:{receiver.port}"
    Webhook(hook.json()["secret"]).verify(got.body, got.headers)


async def test_a_hanging_receiver_is_sent_at_most_its_bound_and_the_rest_stay_unclaimed(
    client: httpx.AsyncClient,
    app: FastAPI,
    db: Database,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    receiver: Receiver,
) -> None:
    hanging = Receiver(hang=True)
    await hanging.start()
    theirs = await subscribe(client, other_tenant, hanging, "user.created")
    for i in range(SENDS_PER_ENDPOINT + 4):
        await create_user(client, other_tenant.admin, display_name=f"Theirs {i}")
    worker = dispatcher(app)

    await worker.step()  # returns with its sends under way
    await arrived(hanging, SENDS_PER_ENDPOINT)
    await subscribe(client, tenant, receiver, "user.created")
    await create_user(client, tenant.admin)
    await worker.step()
    await arrived(receiver, 1)
    await worker.step()
    assert len(hanging.received) == SENDS_PER_ENDPOINT
    leased = await db_rows(
        db,
        select(func.count())
        .select_from(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == uuid.UUID(theirs["id"]),
            WebhookDelivery.leased_until.is_not(None),
        ),
    )
    assert leased == [(SENDS_PER_ENDPOINT,)]  # the others wait, not leased

    await hanging.close()  # its sends end, unanswered
    await worker.idle()
    listed = await client.get(
        f"/v1/webhooks/{theirs['id']}/deliveries", params={"limit": 100}, headers=other_tenant.admin
    )
    tried = sorted(len(d["attempts"]) for d in listed.json()["items"])
    assert tried == [0] * 4 + [1] * SENDS_PER_ENDPOINT
    assert {d["status"] for d in listed.json()["items"]} == {"pending"}


async def test_an_endpoint_deleted_while_a_send_to_it_is_under_way_stops_no_delivery(
    client: httpx.AsyncClient, app: FastAPI, tenant: TenantKeys, receiver: Receiver
) -> None:
    slow = Receiver(delay=0.5)
    await slow.start()
    gone = await subscribe(client, tenant, slow, "user.created")
    await create_user(client, tenant.admin)
    worker = dispatcher(app)
    await worker.step()
    await arrived(slow, 1)
    deleted = await client.delete(f"/v1/webhooks/{gone['id']}", headers=tenant.admin)
    assert deleted.status_code == 204
    await worker.idle()
    await slow.close()

    await subscribe(client, tenant, receiver, "user.created")
    await create_user(client, tenant.admin)
    await deliver(app)
    assert len(receiver.received) == 1


async def arrived(receiver: Receiver, count: int) -> None:
    for _ in range(100):
        if len(receiver.received) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(receiver.received)} requests arrived, not {count}")
