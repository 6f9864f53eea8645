"""take_burst and drain: a burst taken from a plain asyncio.Queue, on both loops.

Where the test expects no wait, the window is 30 s long: a wait that should have ended
early shows as the test's own timeout, not as a slow pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from letta_otel.eventloop import loop_factory
from letta_otel.pipeline.bursts import drain, take_burst

_LOOP: list[Callable[[], asyncio.AbstractEventLoop] | None] = [None]


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[None]:
    _LOOP[0] = loop_factory() if request.param == "uvloop" else None
    yield
    _LOOP[0] = None


def run(main: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=_LOOP[0]) as runner:
        return runner.run(main)


def test_drain_takes_what_is_queued_without_waiting() -> None:
    async def go() -> tuple[list[int], list[int]]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        empty = drain(queue)
        for n in range(3):
            queue.put_nowait(n)
        return empty, drain(queue)

    assert run(go()) == ([], [0, 1, 2])


def test_a_burst_already_queued_is_taken_at_once_with_what_follows_it() -> None:
    async def go() -> tuple[list[int | None], int]:
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        for n in range(5):
            queue.put_nowait(n)
        burst = await asyncio.wait_for(take_burst(queue, 3, timeout=30), 5)
        return burst, queue.qsize()

    assert run(go()) == ([0, 1, 2, 3, 4], 0)


def test_the_wait_ends_when_the_count_is_reached_or_a_none_arrives() -> None:
    async def go(last: int | None) -> list[int | None]:
        queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=10)

        async def producer() -> None:
            for item in (1, 2, last):
                await asyncio.sleep(0)
                await queue.put(item)

        burst, _ = await asyncio.wait_for(
            asyncio.gather(take_burst(queue, 3, timeout=30), producer()), 5
        )
        return burst

    assert run(go(3)) == [1, 2, 3]
    assert run(go(None)) == [1, 2, None]


def test_the_producer_never_blocks_on_a_full_queue_during_the_wait() -> None:
    """Items are taken out as they come: a producer may put more than ``maxsize``."""

    async def go() -> list[int | None]:
        queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=2)

        async def producer() -> None:
            for item in range(6):
                await queue.put(item)

        burst, _ = await asyncio.wait_for(
            asyncio.gather(take_burst(queue, 6, timeout=30), producer()), 5
        )
        return burst

    assert run(go()) == list(range(6))


def test_the_wait_gives_up_after_its_timeout_and_nothing_is_lost() -> None:
    async def go() -> tuple[float, list[int | None], list[int]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        queue.put_nowait(1)
        start = loop.time()
        burst = await take_burst(queue, 5, timeout=0.05)
        waited = loop.time() - start
        queue.put_nowait(2)
        return waited, burst, [n for n in drain(queue) if n is not None]

    waited, burst, left = run(go())
    assert waited >= 0.04
    assert burst == [1] and left == [2]


def test_a_burst_that_ends_early_leaves_no_timeout_behind() -> None:
    """The window's timer must not fire later into the task that waited (it would
    cancel whatever that task awaits next)."""

    async def go() -> str:
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        queue.put_nowait(None)
        await take_burst(queue, 5, timeout=0.02)
        await asyncio.sleep(0.1)  # well past the window
        return "not cancelled"

    assert run(go()) == "not cancelled"


def test_a_cancelled_wait_loses_no_item_and_leaves_the_queue_usable() -> None:
    async def go() -> list[int | None]:
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        task = asyncio.ensure_future(take_burst(queue, 2, timeout=30))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        queue.put_nowait(1)
        queue.put_nowait(2)
        return await asyncio.wait_for(take_burst(queue, 2, timeout=30), 5)

    assert run(go()) == [1, 2]
