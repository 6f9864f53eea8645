"""Taking a burst of items from an ``asyncio.Queue``, on its public API only.

The bridge's consumer maps enriched steps in bursts rather than one by one between
network callbacks (see :mod:`letta_otel.pipeline.batches`): after the first item it waits for up to
``count`` more, for the end-of-stream ``None``, or until ``timeout`` has passed,
whichever comes first. ``asyncio.timeout`` gives the wait one timer; items are taken
out as they come, so the producer never blocks on a full queue meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

T = TypeVar("T")


def drain(queue: asyncio.Queue[T]) -> list[T]:
    """Everything queued now, without waiting."""
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def take_burst(queue: asyncio.Queue[T], count: int, timeout: float) -> list[T]:
    """Items taken from ``queue`` until ``count`` have come, a ``None`` (its users'
    end-of-stream mark) has come or ``timeout`` has passed; then whatever else is
    queued. An item is never lost to the timeout: ``Queue.get`` takes one only when it
    returns."""
    items: list[T] = []
    try:
        async with asyncio.timeout(timeout):
            while len(items) < count:
                item = await queue.get()
                items.append(item)
                if item is None:
                    break
    except TimeoutError:
        pass
    items.extend(drain(queue))
    return items
