"""The outbox reaches the platform's bus (the machine's RabbitMQ): each event once, in order, routed
by its type, marked published only when the broker confirmed it."""

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import DeliveryError
from sqlalchemy import select

from app.db.session import Database
from app.main import create_app
from app.outbox.models import Event
from app.webhooks.bus import EventBus
from tests.helpers.api import TenantKeys, create_user
from tests.helpers.receiver import Receiver
from tests.helpers.settings import make_settings

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture
async def broker() -> AsyncIterator[AbstractChannel]:
    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=5)
    except Exception as error:
        reason = f"RabbitMQ at {AMQP_URL} cannot be reached ({error!r}): set TEST_AMQP_URL"
        # In CI a broker that is not there is a broken setup, not a reason to skip.
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    async with connection:
        yield await connection.channel()


@pytest.fixture
async def exchange(broker: AbstractChannel) -> AsyncIterator[str]:
    name = f"antring.test.{uuid.uuid4().hex}"
    await broker.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
    yield name
    await broker.exchange_delete(name)


@pytest.fixture
async def new_bus(db: Database, exchange: str) -> AsyncIterator[Callable[..., EventBus]]:
    made: list[EventBus] = []

    def make(url: str = AMQP_URL, **options: float) -> EventBus:
        made.append(EventBus(db, url=url, exchange=exchange, **options))
        return made[-1]

    yield make
    for bus in made:
        await bus.close()


async def listen(
    broker: AbstractChannel,
    exchange: str,
    routing_key: str,
    arguments: dict[str, Any] | None = None,
) -> AbstractQueue:
    queue = await broker.declare_queue(exclusive=True, arguments=arguments)
    await queue.bind(exchange, routing_key)
    return queue


async def drain(queue: AbstractQueue) -> list[AbstractIncomingMessage]:
    """Everything the queue holds now: a confirmed message is already in it."""
    got = []
    while (found := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
        got.append(found)
    return got


async def events(db: Database) -> list[Event]:
    async with db.sessionmaker() as session:
        return list(await session.scalars(select(Event).order_by(Event.seq)))


async def test_each_event_is_published_once_in_order_routed_by_its_type(
    client: httpx.AsyncClient,
    db: Database,
    tenant: TenantKeys,
    broker: AbstractChannel,
    exchange: str,
    new_bus: Callable[..., EventBus],
) -> None:
    users = await listen(broker, exchange, "user.*")
    everything = await listen(broker, exchange, "#")
    first = await create_user(client, tenant.admin, display_name="Lan")
    second = await create_user(client, tenant.admin, display_name="Mai")
    bus = new_bus()

    published = await bus.publish_pending()

    pending = await events(db)
    assert published == len(pending)
    got = await drain(everything)
    assert [m.message_id for m in got] == [f"msg_{e.id.hex}" for e in pending]
    for message, event in zip(got, pending, strict=True):
        assert message.routing_key == event.type
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers == {
            "tenant_id": str(event.tenant_id) if event.tenant_id else "",
            "event_type": event.type,
        }
        body = json.loads(message.body)
        assert body["type"] == event.type
        assert body["data"]["resource"] == {"type": event.resource_type, "id": event.resource_id}
        assert event.published_at is not None

    for_users = await drain(users)
    assert [m.routing_key for m in for_users] == ["user.created", "user.created"]
    assert [json.loads(m.body)["data"]["resource"]["id"] for m in for_users] == [
        first["id"],
        second["id"],
    ]
    assert {m.headers["tenant_id"] for m in for_users} == {str(tenant.id)}
    assert "device.created" in [m.routing_key for m in got]

    assert await bus.publish_pending() == 0
    assert await drain(everything) == []


async def test_two_publishers_on_one_database_publish_each_event_once(
    client: httpx.AsyncClient,
    db: Database,
    tenant: TenantKeys,
    broker: AbstractChannel,
    exchange: str,
    new_bus: Callable[..., EventBus],
) -> None:
    everything = await listen(broker, exchange, "#")
    for name in ("Lan", "Mai", "Hoa"):
        await create_user(client, tenant.admin, display_name=name)
    one, other = new_bus(), new_bus()

    counts = [
        *await asyncio.gather(one.publish_pending(), other.publish_pending()),
        *await asyncio.gather(one.publish_pending(), other.publish_pending()),
    ]

    pending = await events(db)
    assert sum(counts) == len(pending)
    got = await drain(everything)
    assert sorted(m.message_id or "" for m in got) == sorted(f"msg_{e.id.hex}" for e in pending)
    assert all(e.published_at is not None for e in pending)


async def test_a_message_the_broker_refuses_stays_pending_with_all_after_it(
    client: httpx.AsyncClient,
    db: Database,
    tenant: TenantKeys,
    broker: AbstractChannel,
    exchange: str,
    new_bus: Callable[..., EventBus],
) -> None:
    # A queue for users that holds one message and refuses more: the broker nacks the second
    # user.created, while the device.created after it would go through.
    full = await listen(
        broker, exchange, "user.*", {"x-max-length": 1, "x-overflow": "reject-publish"}
    )
    await create_user(client, tenant.admin, display_name="Lan")
    await create_user(client, tenant.admin, display_name="Mai")
    bus = new_bus()

    with pytest.raises(DeliveryError):
        await bus.publish_pending()

    pending = await events(db)
    refused = [i for i, e in enumerate(pending) if e.type == "user.created"][1]
    assert pending[refused + 1].type == "device.created"
    assert [e.published_at is not None for e in pending] == [True] * refused + [False] * (
        len(pending) - refused
    )
    assert [m.routing_key for m in await drain(full)] == ["user.created"]

    await full.delete(if_unused=False, if_empty=False)
    everything = await listen(broker, exchange, "#")
    assert await bus.publish_pending() == len(pending) - refused
    assert [m.message_id for m in await drain(everything)] == [
        f"msg_{e.id.hex}" for e in pending[refused:]
    ]


async def test_a_broker_that_cannot_be_reached_fails_the_round_and_nothing_is_lost(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys, new_bus: Callable[..., EventBus]
) -> None:
    await create_user(client, tenant.admin)
    down = new_bus("amqp://guest:guest@127.0.0.1:1/", timeout=2.0)

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await down.publish_pending()

    assert all(e.published_at is None for e in await events(db))


async def test_a_running_app_publishes_and_delivers_each_commit_side_by_side(
    client: httpx.AsyncClient,
    db: Database,
    migrated_url: str,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    broker: AbstractChannel,
    exchange: str,
) -> None:
    everything = await listen(broker, exchange, "#")
    receiver = Receiver()
    await receiver.start()
    # A poll far longer than the test: only the commits wake the worker and the bus.
    live = create_app(
        make_settings(
            migrated_url,
            webhooks_enabled=True,
            webhooks_poll_seconds=60,
            amqp_url=AMQP_URL,
            amqp_exchange=exchange,
        )
    )
    async with live.router.lifespan_context(live):
        transport = httpx.ASGITransport(app=live)
        async with httpx.AsyncClient(transport=transport, base_url="http://antring.test") as c:
            hooked = await c.post(
                "/v1/webhooks",
                json={"url": receiver.url, "event_types": ["user.created"]},
                headers=tenant.admin,
            )
            assert hooked.status_code == 201, hooked.text
            ours = await create_user(c, tenant.admin, display_name="Lan")
            await create_user(c, other_tenant.admin, display_name="Theirs")
            for _ in range(100):
                if receiver.received and all(e.published_at for e in await events(db)):
                    break
                await asyncio.sleep(0.1)
    await receiver.close()

    pending = await events(db)
    assert all(e.published_at is not None for e in pending)
    assert [m.message_id for m in await drain(everything)] == [f"msg_{e.id.hex}" for e in pending]
    [got] = receiver.received
    assert json.loads(got.body)["data"]["resource"]["id"] == ours["id"]
