"""Slots: asyncio.Semaphore semantics (plus try_acquire), on both loops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from letta_otel._aio import Slots
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
