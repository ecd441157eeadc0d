"""Reads of one kind that arrive together, answered by one statement: a burst of registrar
lookups (phones registering again after an outage) costs the database one query per batch."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """Calls `load(keys)`, which returns one value per key in order, for the keys asked for
    while earlier batches were running. At most `concurrency` batches run at once, and a key
    asked for when fewer run starts one at once: a lone request never waits for others."""

    def __init__(
        self,
        load: Callable[[list[K]], Awaitable[Sequence[V]]],
        *,
        concurrency: int,
        max_size: int = 200,
    ) -> None:
        self._load = load
        self._concurrency = concurrency
        self._max_size = max_size
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, future))
        if len(self._running) < self._concurrency:
            self._start()
        return await future

    def _start(self) -> None:
        batch = self._waiting[: self._max_size]
        del self._waiting[: self._max_size]
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._waiting and len(self._running) < self._concurrency:
            self._start()

    async def _run(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        # Keys whose requests were cancelled while waiting are not looked up.
        batch = [(key, future) for key, future in batch if not future.done()]
        if not batch:
            return
        try:
            values = await self._load_exactly([key for key, _ in batch])
        except BaseException as error:
            if isinstance(error, Exception) and len(batch) > 1:
                # One bad key must not fail the others: each is tried again on its own, and
                # only the keys that fail alone get the error.
                for one in batch:
                    await self._run([one])
                return
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(error, Exception):
                    future.set_exception(error)
                else:
                    future.cancel()
            if not isinstance(error, Exception):
                raise
            return
        for (_, future), value in zip(batch, values, strict=True):
            if not future.done():
                future.set_result(value)

    async def _load_exactly(self, keys: list[K]) -> Sequence[V]:
        values = await self._load(keys)
        if len(values) != len(keys):
            raise RuntimeError(f"{len(values)} values loaded for {len(keys)} keys")
        return values
