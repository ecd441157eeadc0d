"""A webhook receiver on 127.0.0.1: records every request and answers with the status its
script says (then 204), at once, after `delay` seconds, or never (`hang`). It also stands in for
the SIP edges' JSON-RPC."""

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from fastapi import FastAPI

# What a Kamailio edge answers a JSON-RPC call it carried out.
RPC_OK = json.dumps({"jsonrpc": "2.0", "result": "Ok. Key deleted.", "id": 1})


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 204
    answer: str | None = None  # after the statuses: 200 with this JSON body instead of 204
    delay: float = 0.0  # seconds before each answer
    hang: bool = False  # reads each request and never answers it
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _serving: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stops listening and closes every connection, unanswered requests' too."""
        self._closing.set()
        if self._server is not None:
            self._server.close()
            for writer in self._serving.values():
                writer.close()
            await asyncio.gather(*self._serving)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        serving = asyncio.current_task()
        assert serving is not None
        self._serving[serving] = writer
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(path, headers, body.decode()))
                if self.hang or self.delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._closing.wait(), None if self.hang else self.delay
                        )
                if self._closing.is_set():
                    return
                status = self.statuses.pop(0) if self.statuses else 204
                reply = ""
                if status == 204 and self.answer is not None:
                    status, reply = 200, self.answer
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(reply)}\r\n\r\n{reply}".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            del self._serving[serving]
            writer.close()


def dropped(*keys: str) -> list[tuple[str, list[str]]]:
    """What an edge is told for accounts that must go: the cached HA1, then the contacts."""
    return [("htable.delete", ["acc", key]) for key in sorted(keys)] + [
        ("ul.rm", ["location", key]) for key in sorted(keys)
    ]


async def edge_calls(app: FastAPI, edge: Receiver) -> list[tuple[str, list[str]]]:
    """The JSON-RPC calls the edge got since the last look, once the app pushed what it had."""
    await app.state.edge_pusher.idle()
    calls = [json.loads(r.body) for r in edge.received]
    assert all(r.headers["authorization"] == "Bearer edge-token" for r in edge.received)
    edge.received.clear()
    return [(call["method"], call["params"]) for call in calls]
