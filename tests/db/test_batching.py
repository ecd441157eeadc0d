"""app.db.batching.Batcher: reads that arrive together go in one batch, each gets its own answer."""

import asyncio

import pytest

from app.db.batching import Batcher


class Loader:
    """Records each batch it is given; answers key * 10 once `release` is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def __call__(self, keys: list[int]) -> list[int]:
        self.batches.append(keys)
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise LookupError("the database said no")
        return [key * 10 for key in keys]


async def test_a_lone_read_starts_at_once_in_a_batch_of_its_own() -> None:
    loader = Loader()
    loader.release.set()
    batcher = Batcher(loader, concurrency=2)

    assert await batcher.get(4) == 40
    assert loader.batches == [[4]]


async def test_reads_that_arrive_while_batches_run_go_together_and_get_their_own_answers() -> None:
    loader = Loader()
    batcher = Batcher(loader, concurrency=1)

    first = asyncio.create_task(batcher.get(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.get(key)) for key in range(2, 8)]
    await asyncio.sleep(0)
    loader.release.set()

    assert await first == 10
    assert await asyncio.gather(*rest) == [20, 30, 40, 50, 60, 70]
    assert loader.batches == [[1], [2, 3, 4, 5, 6, 7]]


async def test_no_more_batches_run_at_once_than_allowed_and_none_larger_than_max() -> None:
    loader = Loader()
    batcher = Batcher(loader, concurrency=2, max_size=3)

    tasks = [asyncio.create_task(batcher.get(key)) for key in range(10)]
    await asyncio.sleep(0.01)
    assert len(loader.batches) == 2  # the others wait for one of these to finish
    loader.release.set()

    assert await asyncio.gather(*tasks) == [key * 10 for key in range(10)]
    assert all(len(batch) <= 3 for batch in loader.batches)
    assert sorted(key for batch in loader.batches for key in batch) == list(range(10))


async def test_a_failed_batch_fails_its_reads_only() -> None:
    loader = Loader()
    loader.fail_next = True
    loader.release.set()
    batcher = Batcher(loader, concurrency=1)

    with pytest.raises(LookupError):
        await batcher.get(1)
    assert await batcher.get(2) == 20


async def test_a_read_cancelled_while_waiting_is_left_out_of_its_batch() -> None:
    loader = Loader()
    batcher = Batcher(loader, concurrency=1)

    first = asyncio.create_task(batcher.get(1))
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(batcher.get(2))
    kept = asyncio.create_task(batcher.get(3))
    await asyncio.sleep(0)
    cancelled.cancel()
    loader.release.set()

    assert (await first, await kept) == (10, 30)
    assert loader.batches == [[1], [3]]


async def test_a_failed_batch_is_tried_again_key_by_key() -> None:
    calls: list[list[str]] = []

    async def load(keys: list[str]) -> list[str]:
        calls.append(keys)
        if "poison" in keys:
            raise ValueError("the database cannot take it")
        return [key.upper() for key in keys]

    batcher: Batcher[str, str] = Batcher(load, concurrency=1)
    first = asyncio.ensure_future(batcher.get("a"))  # starts a batch at once
    rest = [asyncio.ensure_future(batcher.get(key)) for key in ("b", "poison", "c")]
    results = await asyncio.gather(first, *rest, return_exceptions=True)

    assert results[:2] == ["A", "B"]
    assert isinstance(results[2], ValueError)
    assert results[3] == "C"
    assert ["b", "poison", "c"] in calls  # the batch, then each key of it alone
    assert [c for c in calls if len(c) == 1 and c != ["a"]] == [["b"], ["poison"], ["c"]]
