"""The service over real HTTP on 127.0.0.1 (a stream never ends: ASGITransport would wait for
its whole body), and a reader of its event streams."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from httpx_sse import ServerSentEvent, aconnect_sse

from app.db.session import Database

STREAM = "/v1/events/stream"


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """`app` over HTTP on 127.0.0.1 until the block ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1)
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    host, port = listener.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await serving
        listener.close()


@pytest.fixture
async def live_url(app: FastAPI, db: Database) -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url


@dataclass
class Stream:
    """An open stream, read in the background: its events as they come."""

    events: list[ServerSentEvent] = field(default_factory=list)
    status: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.events if e.event not in ("reset", "dropped")]

    async def wait_for(self, check: Any, timeout: float) -> ServerSentEvent:  # noqa: ASYNC109
        """The first event `check` accepts, within `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if check(event):
                        return event
                self.arrived.clear()
                await self.arrived.wait()


@contextlib.asynccontextmanager
async def open_stream(
    url: str, headers: dict[str, str], *, params: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    """A stream of the service at `url`, open (its first byte read) until the block ends."""
    stream = Stream()
    opened = asyncio.Event()

    async def read() -> None:
        try:
            async with (
                httpx.AsyncClient(base_url=url, timeout=30) as client,
                aconnect_sse(client, "GET", STREAM, headers=headers, params=params) as source,
            ):
                stream.status = source.response.status_code
                opened.set()
                if stream.status != 200:
                    return
                async for event in source.aiter_sse():
                    stream.events.append(event)
                    stream.arrived.set()
        finally:
            opened.set()
            stream.ended.set()
            stream.arrived.set()

    reading = asyncio.create_task(read())
    await opened.wait()
    # Subscribed once the answer's headers came: the stream starts with what commits next.
    try:
        yield stream
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
