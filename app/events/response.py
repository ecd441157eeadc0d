"""The answer of an event stream: Server-Sent Events written by the request's own task.

A thousand streams stay open in one process, so each costs as little as it can: the request's
task sends what the stream yields (its heartbeats included), and one small task waits for the
client to leave. No task group, no task per heartbeat or per shutdown watch."""

import asyncio
import signal
from collections.abc import AsyncGenerator, Callable

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

MEDIA_TYPE = "text/event-stream"
# How often the process looks whether its server is stopping, to end its streams.
STOP_CHECK_SECONDS = 0.5


class EventStreamResponse(Response):
    """Sends each chunk `chunks` yields, as it comes, until `chunks` ends.

    `on_disconnect` is called when the client leaves: it must make `chunks` end. A chunk the
    client does not take within `send_timeout` seconds ends the stream, the connection closed
    without its last chunk. `on_close` is called once the response is over, however it ended."""

    media_type = MEDIA_TYPE

    def __init__(
        self,
        chunks: AsyncGenerator[bytes, None],
        *,
        send_timeout: float,
        on_disconnect: Callable[[], object],
        on_close: Callable[[], object],
    ) -> None:
        self.status_code = 200
        self.background = None
        self.body_iterator = chunks
        self._send_timeout = send_timeout
        self._on_disconnect = on_disconnect
        self._on_close = on_close
        self.init_headers(
            {
                # Neither a cache nor a buffering proxy (nginx) holds the events back.
                "Cache-Control": "no-store",
                "Connection": "keep-alive",
                "X-Accel-Buffering": "no",
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = asyncio.ensure_future(_disconnected(receive))
        watch.add_done_callback(self._left)
        try:
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            await send(start)
            async for chunk in self.body_iterator:
                try:
                    async with asyncio.timeout(self._send_timeout):
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except TimeoutError:
                    # The server closes a connection whose response did not end.
                    return
            if not watch.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watch.remove_done_callback(self._left)
            watch.cancel()
            await self.body_iterator.aclose()
            self._on_close()

    def _left(self, watch: "asyncio.Future[None]") -> None:
        if not watch.cancelled():
            watch.exception()  # a receive that failed: the client is gone all the same
            self._on_disconnect()


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has left (a GET's body, if any, is read and ignored)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def server_stopping() -> bool:
    """Whether the server that runs this process (uvicorn, whose handler of SIGTERM is its own
    `handle_exit`) has been told to stop: it then waits for every open response to end."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


async def end_on_stop(end: Callable[[], object], stopping: Callable[[], bool]) -> None:
    """Calls `end` once `stopping()` says the server stops (and again while it goes on saying
    so: a stream opened meanwhile ends too)."""
    while True:
        await asyncio.sleep(STOP_CHECK_SECONDS)
        if stopping():
            end()
