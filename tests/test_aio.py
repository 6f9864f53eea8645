"""Slots: asyncio.Semaphore semantics (plus try_acquire); GatherQueue; on both loops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from letta_otel._aio import GatherQueue, Slots
from letta_otel._loop import loop_factory

_LOOP: list[Callable[[], asyncio.AbstractEventLoop] | None] = [None]


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[None]:
    _LOOP[0] = loop_factory() if request.param == "uvloop" else None
    yield
    _LOOP[0] = None


def run(main: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=_LOOP[0]) as runner:
        return runner.run(main)


def test_slots_bound_concurrency_and_serve_waiters_in_order() -> None:
    async def go() -> tuple[int, list[int]]:
        slots, busy, most, order = Slots(3), [0], [0], []

        async def worker(i: int) -> None:
            async with slots:
                order.append(i)
                busy[0] += 1
                most[0] = max(most[0], busy[0])
                await asyncio.sleep(0.001 * (i % 4))
                busy[0] -= 1

        await asyncio.gather(*(worker(i) for i in range(40)))
        assert slots.free == 3
        return most[0], order

    most, order = run(go())
    assert most == 3
    assert order == list(range(40))  # first come, first served


def test_a_cancelled_waiter_gives_its_slot_on_and_leaves_the_queue() -> None:
    async def go() -> list[str]:
        slots, got = Slots(1), []
        await slots.acquire()

        async def waiter(name: str) -> None:
            await slots.acquire()
            got.append(name)
            slots.release()

        first = asyncio.create_task(waiter("first"))
        second = asyncio.create_task(waiter("second"))
        third = asyncio.create_task(waiter("third"))
        await asyncio.sleep(0)
        third.cancel()  # cancelled while waiting
        slots.release()  # handed to "first" ...
        first.cancel()  # ... which is cancelled before it runs: "second" gets it
        await asyncio.gather(first, second, third, return_exceptions=True)
        assert slots.free == 1
        return got

    assert run(go()) == ["second"]


def test_slots_need_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Slots(0)


# GatherQueue.gather: the waits are long (30 s) where the test expects no wait, so a
# wait that should have ended early shows as the test's own timeout, not as a slow pass.


def test_gather_returns_at_once_when_enough_items_are_queued() -> None:
    async def go() -> int:
        queue: GatherQueue[int | None] = GatherQueue()
        for n in range(3):
            queue.put_nowait(n)
        await asyncio.wait_for(queue.gather(3, timeout=30), 5)
        return queue.qsize()

    assert run(go()) == 3


def test_gather_ends_when_the_count_is_reached_or_a_none_arrives() -> None:
    async def go(last: int | None) -> list[int | None]:
        queue: GatherQueue[int | None] = GatherQueue(maxsize=10)

        async def producer() -> None:
            for item in (1, 2, last):
                await asyncio.sleep(0)
                await queue.put(item)

        await asyncio.wait_for(asyncio.gather(queue.gather(3, timeout=30), producer()), 5)
        return [queue.get_nowait() for _ in range(queue.qsize())]

    assert run(go(3)) == [1, 2, 3]
    assert run(go(None)) == [1, 2, None]


def test_gather_gives_up_after_its_timeout_and_leaves_no_timer() -> None:
    async def go() -> tuple[float, int, list[asyncio.Handle]]:
        loop = asyncio.get_running_loop()
        queue: GatherQueue[int | None] = GatherQueue()
        queue.put_nowait(1)
        start = loop.time()
        await queue.gather(5, timeout=0.05)
        waited = loop.time() - start
        queue.put_nowait(2)  # no wait in progress: nothing to wake
        return waited, queue.qsize(), list(getattr(loop, "_scheduled", []))

    waited, size, scheduled = run(go())
    assert waited >= 0.04 and size == 2
    assert not [h for h in scheduled if not h.cancelled()]


def test_a_cancelled_gather_leaves_the_queue_usable() -> None:
    async def go() -> int:
        queue: GatherQueue[int | None] = GatherQueue()
        task = asyncio.ensure_future(queue.gather(2, timeout=30))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        queue.put_nowait(1)
        queue.put_nowait(2)
        await asyncio.wait_for(queue.gather(2, timeout=30), 5)
        return queue.qsize()

    assert run(go()) == 2
